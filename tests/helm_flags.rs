//! Real helm 3 and helm 4 binaries accept the exact argument vector pgk8s builds, and read the
//! values it sends on stdin. (The simulated cluster's helm checks flags too, but only these
//! binaries are the ground truth.) Install them with `scripts/get-helm.sh`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pgk8s::helm::{HelmMajor, UpgradeRequest, upgrade_args};
use pgk8s::kube::KubeAccess;

/// The real helm binaries, or None (skip) when they are not installed outside CI.
fn helm_binaries() -> Option<Vec<(HelmMajor, PathBuf)>> {
    let dir = std::env::var_os("PGK8S_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var("HOME").unwrap_or_default()).join(".cache/pgk8s-tools")
        });
    let binaries = vec![
        (HelmMajor::V3, dir.join("helm3")),
        (HelmMajor::V4, dir.join("helm4")),
    ];
    let present = binaries.iter().all(|(_, path)| path.exists());
    common::require(
        "real helm 3 and 4 binaries",
        present,
        "bash scripts/get-helm.sh all",
    )
    .then_some(binaries)
}

fn fixture_chart() -> String {
    format!("{}/tests/fixtures/chart", env!("CARGO_MANIFEST_DIR"))
}

/// What pgk8s sends as values for a default deploy.
fn default_values_yaml() -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_pgk8s"))
        .args(["deploy", "--dry-run", "-o", "json", "--memory-limit", "2Gi"])
        .env("PGK8S_HELM", "/nonexistent")
        .output()
        .expect("pgk8s runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("dry-run JSON");
    serde_yaml::to_string(&report["values"]).expect("yaml")
}

fn run_helm(helm: &Path, args: &[String], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(helm)
        .args(args)
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("pgk8s-helm-cache"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("helm runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn real_helm_accepts_the_upgrade_flags_pgk8s_builds() {
    let Some(binaries) = helm_binaries() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: \"https://127.0.0.1:1\"}\n  name: nowhere\n\
         contexts:\n- context: {cluster: nowhere, user: nobody}\n  name: nowhere\ncurrent-context: nowhere\n\
         users:\n- name: nobody\n  user: {token: not-a-token}\n",
    )
    .unwrap();
    let request = UpgradeRequest {
        release: "postgresql".parse().unwrap(),
        namespace: "learnflow".parse().unwrap(),
        chart: fixture_chart(),
        chart_version: "17.1.0".to_string(),
        timeout: Duration::from_secs(60),
        // The operator's install creates its namespace: both helms must accept the flag too.
        create_namespace: true,
    };
    let access = KubeAccess {
        context: Some("nowhere".to_string()),
        kubeconfig: Some(kubeconfig),
    };
    for (major, helm) in binaries {
        let args = upgrade_args(major, &request, &access);
        let (ok, _, stderr) = run_helm(&helm, &args, &default_values_yaml());
        assert!(!ok, "{major:?} cannot have installed anything");
        for rejected in [
            "unknown flag",
            "invalid argument",
            "unknown shorthand",
            "Usage:",
            "deprecated",
        ] {
            assert!(
                !stderr.contains(rejected),
                "{major:?} rejected {args:?}: {stderr}"
            );
        }
        // Parsing succeeded: helm got as far as contacting the (absent) cluster.
        assert!(
            stderr
                .to_lowercase()
                .contains("kubernetes cluster unreachable"),
            "{major:?}: {stderr}"
        );
    }
}

#[test]
fn a_chart_reference_that_looks_like_a_flag_stays_a_chart_reference() {
    let Some(binaries) = helm_binaries() else {
        return;
    };
    let request = UpgradeRequest {
        release: "postgresql".parse().unwrap(),
        namespace: "learnflow".parse().unwrap(),
        chart: "--post-renderer=/bin/sh".to_string(),
        chart_version: "17.1.0".to_string(),
        timeout: Duration::from_secs(60),
        create_namespace: false,
    };
    for (major, helm) in binaries {
        let args = upgrade_args(major, &request, &KubeAccess::default());
        let (ok, _, stderr) = run_helm(&helm, &args, "");
        assert!(!ok);
        // Read as a flag, it would fail as one ("invalid argument … for \"--post-renderer\" flag")
        // or leave one positional short ("requires 2 arguments").
        for symptom in ["flag", "requires 2 arguments", "Usage:"] {
            assert!(
                !stderr.contains(symptom),
                "{major:?} read the chart reference as a flag: {stderr}"
            );
        }
    }
}

#[test]
fn the_other_majors_rollback_flag_is_rejected_which_is_why_pgk8s_detects_the_version() {
    let Some(binaries) = helm_binaries() else {
        return;
    };
    let (_, helm3) = &binaries[0];
    let (ok, _, stderr) = run_helm(
        helm3,
        &[
            "upgrade".into(),
            "--install".into(),
            "r".into(),
            fixture_chart(),
            "--rollback-on-failure".into(),
        ],
        "",
    );
    assert!(
        !ok && stderr.contains("unknown flag: --rollback-on-failure"),
        "{stderr}"
    );
    let (_, helm4) = &binaries[1];
    let (_, _, stderr) = run_helm(
        helm4,
        &[
            "template".into(),
            "r".into(),
            fixture_chart(),
            "--atomic".into(),
        ],
        "",
    );
    assert!(
        stderr.contains("deprecated"),
        "helm 4 warns about --atomic: {stderr}"
    );
}

#[test]
fn real_helm_reads_the_values_pgk8s_sends_on_stdin() {
    let Some(binaries) = helm_binaries() else {
        return;
    };
    for (major, helm) in binaries {
        let args: Vec<String> = [
            "template",
            "postgresql",
            &fixture_chart(),
            "-f",
            "-",
            "--namespace",
            "learnflow",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        let (ok, rendered, stderr) = run_helm(&helm, &args, &default_values_yaml());
        assert!(ok, "{major:?}: {stderr}");
        for expected in [
            "existingSecret: \"postgresql-credentials\"",
            "database: \"learnflow\"",
            "image: \"docker.io/bitnamilegacy/postgresql\"",
            "memoryLimit: \"2Gi\"",
            "size: \"8Gi\"",
        ] {
            assert!(
                rendered.contains(expected),
                "{major:?} rendered without {expected}:\n{rendered}"
            );
        }
    }
}

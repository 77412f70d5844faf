//! `verify`, `backup` and `restore` on the simulated cluster.

mod common;

use common::{Cluster, STANDALONE_VALUES};

const POD: &str = "postgresql-0";

fn sql(cluster: &Cluster, query: &str) -> String {
    cluster.sql("learnflow", POD, "learnflow", query)
}

/// Installs a release straight through the fake helm, without waiting, with `fault` active:
/// the pods stay in the state the fault dictates.
fn install_with_fault(cluster: &Cluster, fault: &str) {
    cluster.create_secret("Superuser-Pass-1", "App-Pass-1");
    cluster
        .helm([
            "upgrade",
            "--install",
            "postgresql",
            "chart",
            "--namespace",
            "learnflow",
            "-f",
            "-",
        ])
        .env("PGK8S_FAKE_FAULTS", fault)
        .stdin(STANDALONE_VALUES)
        .succeeds();
}

#[test]
fn a_healthy_release_verifies_in_one_helm_and_three_kubectl_calls() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[]);
    cluster.clear_calls();
    let report = cluster
        .pgk8s(["verify", "--check-schema", "-o", "json"])
        .succeeds()
        .json();
    for (field, expected) in [
        ("healthy", serde_json::json!(true)),
        ("pods_running", serde_json::json!(1)),
        ("expected_pods", serde_json::json!(1)),
        ("pvc_bound", serde_json::json!(true)),
        ("database_connected", serde_json::json!(true)),
        ("tables_count", serde_json::json!(6)),
        ("migrations_pending", serde_json::json!(0)),
        ("issues", serde_json::json!([])),
    ] {
        assert_eq!(report[field], expected, "{field} in {report}");
    }
    assert_eq!(report["expected_tables"].as_array().unwrap().len(), 6);
    let calls = cluster.calls();
    let kubectl = calls.iter().filter(|call| call.tool == "kubectl").count();
    let helm = calls.iter().filter(|call| call.tool == "helm").count();
    // The objects, the Secret (for an interrupted rotation) and one read-only session.
    assert_eq!(kubectl, 3, "{kubectl} kubectl calls: {calls:?}");
    assert_eq!(helm, 1);
    assert!(
        cluster.mutating_calls().is_empty(),
        "verify is read-only: {:?}",
        cluster.mutating_calls()
    );
    let text = cluster.pgk8s(["verify"]).succeeds();
    assert!(
        text.stdout.contains("healthy") && text.stdout.contains("[ok  ] database"),
        "{}",
        text.stdout
    );
}

#[test]
fn each_unhealthy_condition_has_its_issue_code() {
    for (fault, code) in [
        ("image-pull-backoff", "image_pull_backoff"),
        ("pvc-pending", "pvc_pending"),
        ("unschedulable", "unschedulable"),
        ("oomkilled", "oom_killed"),
        ("crashloop", "crash_loop"),
        ("pod-never-ready", "not_ready"),
    ] {
        let Some(cluster) = Cluster::start() else {
            return;
        };
        install_with_fault(&cluster, fault);
        let report = cluster.pgk8s(["verify", "-o", "json"]).expect(5).json();
        assert_eq!(report["healthy"], false);
        let codes: Vec<&str> = report["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|issue| issue["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&code), "{fault}: {codes:?}");
        assert!(
            report["issues"][0]["hint"]
                .as_str()
                .is_some_and(|hint| !hint.is_empty())
        );
    }
}

#[test]
fn missing_release_pending_migrations_and_unreachable_database() {
    let cluster = cluster_or_skip!();
    let missing = cluster.pgk8s(["verify", "-o", "json"]).expect(5).json();
    assert_eq!(missing["issues"][0]["code"], "release_missing");
    cluster.deploy(&["--skip-migrations"]);
    let pending = cluster
        .pgk8s(["verify", "--check-schema", "-o", "json"])
        .expect(5)
        .json();
    let codes: Vec<&str> = pending["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|issue| issue["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["tables_missing", "migrations_pending"]);
    // Replace the Secret: the pod stays ready, but the database refuses the new password.
    cluster.create_secret("Other-Pass-1", "Other-Pass-2");
    let refused = cluster.pgk8s(["verify", "-o", "json"]).expect(8).json();
    assert_eq!(refused["database_connected"], false);
    assert_eq!(refused["issues"][0]["code"], "database_unreachable");
    let mut down = cluster;
    down.set_env("PGK8S_FAKE_FAULTS", "api-down");
    down.pgk8s(["verify"]).expect(2);
}

#[test]
fn verify_wait_succeeds_once_the_pod_becomes_ready() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[]);
    cluster.sim(["not-ready", "learnflow", POD, "3"]).succeeds();
    cluster.pgk8s(["verify"]).expect(5);
    cluster.clear_calls();
    let report = cluster
        .pgk8s(["verify", "--wait", "30s", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(report["healthy"], true);
    let polls = cluster
        .calls()
        .iter()
        .filter(|call| call.tool == "helm")
        .count();
    assert!(polls > 1, "verify --wait checked {polls} time(s)");
}

#[test]
fn backup_then_restore_brings_the_data_back() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--seed"]);
    let fingerprint = "select md5(string_agg(u::text, ',' order by id)) from users u;";
    let before = sql(&cluster, fingerprint);
    let counts = "select (select count(*) from users) || '/' || (select count(*) from curriculum) || '/' || (select count(*) from exercises);";
    let counts_before = sql(&cluster, counts);
    let file = cluster.path().join("learnflow.dump");
    let backup = cluster
        .pgk8s(["backup", "-f", file.to_str().unwrap(), "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(backup["manifest"]["format"], "pg_dump-custom");
    assert_eq!(backup["manifest"]["migration_version"], 7);
    assert!(std::fs::read(&file).unwrap().starts_with(b"PGDMP"));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file.with_extension("dump.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["sha256"], backup["manifest"]["sha256"]);
    assert_eq!(
        manifest["size_bytes"],
        std::fs::metadata(&file).unwrap().len()
    );

    sql(
        &cluster,
        "drop table submissions; delete from users where username = 'alice';",
    );
    let refused = cluster
        .pgk8s(["restore", "-f", file.to_str().unwrap()])
        .expect(9);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let dry = cluster
        .pgk8s([
            "restore",
            "-f",
            file.to_str().unwrap(),
            "--dry-run",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert!(
        dry["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|table| table == "public.users"),
        "{dry}"
    );
    let restored = cluster
        .pgk8s([
            "restore",
            "-f",
            file.to_str().unwrap(),
            "--yes",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert_eq!(restored["verify"]["healthy"], true);
    assert_eq!(sql(&cluster, fingerprint), before);
    assert_eq!(sql(&cluster, counts), counts_before);
    assert_eq!(
        sql(
            &cluster,
            "select to_regclass('public.submissions') is not null;"
        ),
        "t"
    );
}

#[test]
fn backup_all_dumps_roles_and_every_database_as_sql() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--seed"]);
    let file = cluster.path().join("all.sql");
    let report = cluster
        .pgk8s([
            "backup",
            "--all",
            "-f",
            file.to_str().unwrap(),
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert_eq!(report["manifest"]["format"], "pg_dumpall-sql");
    assert_eq!(report["manifest"]["database"], "*");
    let dump = std::fs::read_to_string(&file).unwrap();
    assert!(dump.contains("CREATE ROLE learnflow"), "roles are included");
    assert!(
        dump.contains("CREATE DATABASE learnflow"),
        "databases are included"
    );
    assert!(dump.contains("alice@example.com"), "data is included");
    let refused = cluster
        .pgk8s(["restore", "-f", file.to_str().unwrap(), "--yes"])
        .expect(64);
    assert!(
        refused.stderr.contains("pg_dumpall-sql"),
        "{}",
        refused.stderr
    );
}

#[test]
fn damaged_backups_are_rejected_before_anything_is_touched() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[]);
    let file = cluster.path().join("good.dump");
    cluster
        .pgk8s(["backup", "-f", file.to_str().unwrap()])
        .succeeds();
    let bytes = std::fs::read(&file).unwrap();
    let manifest = std::fs::read_to_string(cluster.path().join("good.dump.json")).unwrap();
    let truncated = cluster.path().join("truncated.dump");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(cluster.path().join("truncated.dump.json"), &manifest).unwrap();
    let no_manifest = cluster.path().join("bare.dump");
    std::fs::write(&no_manifest, &bytes).unwrap();
    let sql_file = cluster.path().join("other.dump");
    std::fs::write(&sql_file, b"-- a plain SQL file, not an archive\n").unwrap();
    let mut forged: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    forged["size_bytes"] = serde_json::json!(36);
    forged["sha256"] = serde_json::json!(sha256_hex(b"-- a plain SQL file, not an archive\n"));
    std::fs::write(cluster.path().join("other.dump.json"), forged.to_string()).unwrap();
    cluster.clear_calls();
    for (file, message) in [
        (&truncated, "does not match its manifest"),
        (&no_manifest, "cannot read the manifest"),
        (&sql_file, "is not a pg_dump custom-format archive"),
    ] {
        let refused = cluster
            .pgk8s(["restore", "-f", file.to_str().unwrap(), "--yes"])
            .expect(64);
        assert!(refused.stderr.contains(message), "{}", refused.stderr);
    }
    assert!(
        cluster.calls().is_empty(),
        "no call before the file is known good: {:?}",
        cluster.calls()
    );
    let exists = cluster
        .pgk8s(["backup", "-f", file.to_str().unwrap()])
        .expect(64);
    assert!(
        exists.stderr.contains("already exists"),
        "{}",
        exists.stderr
    );
    // A manifest that is not one: not hex, multibyte, unknown format. Refused, never a panic.
    let forged = cluster.path().join("forged.dump");
    std::fs::write(&forged, &bytes).unwrap();
    let bad: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    for (field, value) in [
        ("sha256", serde_json::json!("zzzz")),
        ("sha256", serde_json::json!("é".repeat(40))),
        ("format", serde_json::json!("tarball")),
    ] {
        let mut broken = bad.clone();
        broken[field] = value;
        std::fs::write(cluster.path().join("forged.dump.json"), broken.to_string()).unwrap();
        for extra in ["--dry-run", "--yes"] {
            let refused = cluster
                .pgk8s(["restore", "-f", forged.to_str().unwrap(), extra])
                .expect(64);
            assert!(
                refused.stderr.contains("is not a pgk8s backup manifest"),
                "{field}: {}",
                refused.stderr
            );
        }
    }
    // A missing dump is named as missing, before its manifest is looked at.
    let missing = cluster
        .pgk8s([
            "restore",
            "-f",
            cluster.path().join("missing.dump").to_str().unwrap(),
            "--dry-run",
        ])
        .expect(64);
    assert!(
        missing.stderr.contains("cannot read backup") && !missing.stderr.contains("manifest"),
        "{}",
        missing.stderr
    );
    // A new backup never replaces a manifest that is already there.
    let fresh = cluster.path().join("fresh.dump");
    let old_manifest = cluster.path().join("fresh.dump.json");
    std::fs::write(&old_manifest, "keep me").unwrap();
    let refused = cluster
        .pgk8s(["backup", "-f", fresh.to_str().unwrap()])
        .expect(64);
    assert!(
        refused.stderr.contains("fresh.dump.json already exists"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read_to_string(&old_manifest).unwrap(), "keep me");
    assert!(!fresh.exists());
    assert!(cluster.calls().is_empty(), "{:?}", cluster.calls());
}

#[test]
fn backups_never_contain_passwords_in_their_outputs() {
    let mut cluster = cluster_or_skip!();
    let canary = "BackupCanaryPassw0rd99";
    cluster.set_env("PGK8S_SIM_CANARY", canary);
    cluster.create_secret(canary, canary);
    let deployed = cluster.deploy(&["-vv"]);
    let file = cluster.path().join("b.dump");
    let backup = cluster
        .pgk8s(["backup", "-f", file.to_str().unwrap(), "-vv", "-o", "json"])
        .succeeds();
    let restore = cluster
        .pgk8s(["restore", "-f", file.to_str().unwrap(), "--yes", "-vv"])
        .succeeds();
    cluster.assert_secret_absent(canary, &[&deployed, &backup, &restore]);
    let manifest = std::fs::read_to_string(cluster.path().join("b.dump.json")).unwrap();
    assert!(!manifest.contains(canary));
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

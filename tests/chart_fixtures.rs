//! The values pgk8s generates, and the objects the simulated cluster creates from them, match
//! what the real Bitnami chart 17.1.0 renders (tests/fixtures/bitnami-postgresql-17.1.0).

mod common;

use serde_json::Value;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bitnami-postgresql-17.1.0"
);

fn fixture_values(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{name}.values.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// The rendered manifest's object of `kind` named `name`.
fn rendered(file: &str, kind: &str, name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{file}.yaml")).unwrap();
    text.split("\n---")
        .filter_map(|document| serde_yaml::from_str::<Value>(document).ok())
        .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{file}.yaml has no {kind}/{name}"))
}

/// Every key of `expected` has the same value in `actual` (which may hold more).
fn assert_contains(actual: &Value, expected: &Value, path: &str) {
    match expected {
        Value::Object(fields) => {
            for (key, value) in fields {
                assert_contains(&actual[key], value, &format!("{path}.{key}"));
            }
        }
        _ => assert_eq!(actual, expected, "at {path}"),
    }
}

fn dry_run_values(args: &[&str]) -> Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pgk8s"))
        .args(["deploy", "--dry-run", "-o", "json"])
        .args(args)
        .env("PGK8S_HELM", "/nonexistent")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    report["values"].clone()
}

#[test]
fn default_values_are_exactly_the_fixtures_standalone_values() {
    assert_eq!(dry_run_values(&[]), fixture_values("standalone"));
}

#[test]
fn replica_values_contain_the_fixtures_replication_values() {
    let values = dry_run_values(&[
        "-r",
        "db",
        "--profile",
        "prod",
        "--cpu-request",
        "1",
        "--memory-request",
        "1Gi",
        "--replicas",
        "1",
    ]);
    assert_contains(&values, &fixture_values("replication"), "values");
}

/// Names, labels, container, env and mounts of the simulated StatefulSet's pod template match
/// the real rendering.
fn assert_like_fixture(simulated: &Value, real: &Value) {
    assert_eq!(simulated["metadata"]["labels"], real["metadata"]["labels"]);
    assert_eq!(simulated["spec"]["selector"], real["spec"]["selector"]);
    assert_eq!(
        simulated["spec"]["serviceName"],
        real["spec"]["serviceName"]
    );
    let container = |object: &Value| object["spec"]["template"]["spec"]["containers"][0].clone();
    let (ours, theirs) = (container(simulated), container(real));
    assert_eq!(ours["name"], theirs["name"]);
    let env = |container: &Value, name: &str| {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|var| var["name"] == name)
            .map(|var| var["value"].clone())
    };
    for name in [
        "POSTGRES_USER",
        "POSTGRES_PASSWORD_FILE",
        "POSTGRES_POSTGRES_PASSWORD_FILE",
        "POSTGRES_DATABASE",
        "PGDATA",
    ] {
        assert_eq!(env(&ours, name), env(&theirs, name), "env {name}");
    }
    let mounts = |container: &Value| {
        let mut paths: Vec<String> = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|mount| {
                format!(
                    "{}={}",
                    mount["name"].as_str().unwrap(),
                    mount["mountPath"].as_str().unwrap()
                )
            })
            .collect();
        paths.sort();
        paths
    };
    for mount in mounts(&ours) {
        assert!(
            mounts(&theirs).contains(&mount),
            "mount {mount} is not in the real chart"
        );
    }
    assert_eq!(ours["resources"], theirs["resources"]);
    assert_eq!(
        simulated["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        real["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    );
}

#[test]
fn the_simulated_standalone_release_looks_like_the_real_chart() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    let simulated = cluster
        .kubectl([
            "get",
            "statefulset/postgresql",
            "-n",
            "learnflow",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert_like_fixture(
        &simulated,
        &rendered("standalone", "StatefulSet", "postgresql"),
    );
    let services = cluster
        .kubectl(["get", "svc", "-n", "learnflow", "-o", "json"])
        .succeeds()
        .json();
    let names: Vec<&str> = services["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|svc| svc["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["postgresql", "postgresql-hl"]);
    rendered("standalone", "Service", "postgresql-hl");
    let claims = cluster
        .kubectl([
            "get",
            "pvc/data-postgresql-0",
            "-n",
            "learnflow",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert_eq!(claims["status"]["phase"], "Bound");
}

#[test]
fn the_simulated_replicated_release_looks_like_the_real_chart() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[
        "-r",
        "db",
        "--profile",
        "prod",
        "--cpu-request",
        "250m",
        "--memory-request",
        "256Mi",
        "--memory-limit",
        "1Gi",
        "--replicas",
        "1",
        "--skip-migrations",
    ]);
    for (name, component) in [
        ("db-postgresql-primary", "primary"),
        ("db-postgresql-read", "read"),
    ] {
        let simulated = cluster
            .kubectl([
                "get",
                &format!("statefulset/{name}"),
                "-n",
                "learnflow",
                "-o",
                "json",
            ])
            .succeeds()
            .json();
        let real = rendered("replication", "StatefulSet", name);
        assert_eq!(
            simulated["metadata"]["labels"], real["metadata"]["labels"],
            "{component}"
        );
        assert_eq!(
            simulated["spec"]["selector"], real["spec"]["selector"],
            "{component}"
        );
        for service in [name.to_string(), format!("{name}-hl")] {
            rendered("replication", "Service", &service);
            cluster
                .kubectl([
                    "get",
                    &format!("svc/{service}"),
                    "-n",
                    "learnflow",
                    "-o",
                    "json",
                ])
                .succeeds();
        }
    }
}

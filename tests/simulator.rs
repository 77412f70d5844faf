//! The simulated cluster itself: SQL sent through the fake `kubectl exec` runs on a real
//! PostgreSQL that authenticates with the password from the Secret, and every call is logged.

mod common;

use common::{Cluster, STANDALONE_VALUES};

/// Creates the Secret and installs a release through the fake helm, as pgk8s would.
fn install(cluster: &Cluster, superuser_password: &str) {
    cluster.create_secret(superuser_password, "app-password-1");
    let installed = cluster
        .helm([
            "upgrade",
            "--install",
            "postgresql",
            "oci://registry-1.docker.io/bitnamicharts/postgresql",
            "--version",
            "17.1.0",
            "--wait",
            "--timeout",
            "60s",
            "-f",
            "-",
            "--namespace",
            "learnflow",
        ])
        .stdin(STANDALONE_VALUES)
        .succeeds();
    assert!(
        installed.stdout.contains("STATUS: deployed"),
        "{}",
        installed.stdout
    );
}

#[test]
fn sql_through_kubectl_exec_reaches_a_real_postgresql() {
    let cluster = cluster_or_skip!();
    install(&cluster, "Sim-Superuser-Password-1");
    assert_eq!(
        cluster.sql("learnflow", "postgresql-0", "learnflow", "select 1 + 1;"),
        "2"
    );
    let version = cluster.sql(
        "learnflow",
        "postgresql-0",
        "learnflow",
        "show server_version_num;",
    );
    assert!(version.starts_with("15"), "{version}");
    // The app user owns the application database, as the Bitnami image sets it up.
    let owner = cluster.sql(
        "learnflow",
        "postgresql-0",
        "learnflow",
        "select pg_get_userbyid(datdba) from pg_database where datname = 'learnflow';",
    );
    assert_eq!(owner, "learnflow");
}

#[test]
fn a_wrong_password_is_rejected_because_the_volume_keeps_the_first_one() {
    let cluster = cluster_or_skip!();
    install(&cluster, "First-Password-Kept-In-PVC");
    // Replace the Secret: the data volume still holds the first password, as on a real cluster.
    cluster.create_secret("Second-Password", "x");
    let script = "PGPASSWORD=\"$(cat /opt/bitnami/postgresql/secrets/postgres-password)\" exec psql -X -At -U postgres -d learnflow -c 'select 1'";
    let refused = cluster.pod_shell("postgresql-0", script).run();
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("password authentication failed"),
        "{}",
        refused.stderr
    );
}

#[test]
fn every_call_is_logged_with_argv_and_env_names() {
    let cluster = cluster_or_skip!();
    cluster
        .kubectl(["get", "pods", "-n", "learnflow", "-o", "json"])
        .env("PGK8S_PROBE", "x")
        .succeeds();
    let calls = cluster.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].tool, "kubectl");
    assert_eq!(
        calls[0].argv,
        ["get", "pods", "-n", "learnflow", "-o", "json"]
    );
    assert!(cluster.call_log().contains("\"PGK8S_PROBE\""));
}

#[test]
fn faults_are_injected_by_environment() {
    let mut cluster = cluster_or_skip!();
    cluster.set_env("PGK8S_FAKE_FAULTS", "api-down");
    let down = cluster
        .kubectl(["get", "pods", "-n", "learnflow"])
        .expect(1);
    assert!(down.stderr.contains("was refused"), "{}", down.stderr);
    cluster.set_env("PGK8S_FAKE_HELM_VERSION", "3");
    cluster.unset_env("PGK8S_FAKE_FAULTS");
    let rejected = cluster
        .helm([
            "upgrade",
            "--install",
            "r",
            "chart",
            "--rollback-on-failure",
        ])
        .expect(1);
    assert!(
        rejected
            .stderr
            .contains("unknown flag: --rollback-on-failure"),
        "{}",
        rejected.stderr
    );
}

/// A volume size change is refused the way kube-apiserver v1.34 refuses it (volumeClaimTemplates
/// are immutable), with the text helm 3 prints when it rolls back; seen on the real-control-plane
/// tier (`tests/realcp.rs`).
#[test]
fn changing_a_volume_size_is_refused_like_the_real_api_server() {
    let cluster = cluster_or_skip!();
    install(&cluster, "Sim-Superuser-Password-1");
    let larger = format!("{STANDALONE_VALUES}primary:\n  persistence:\n    size: 16Gi\n");
    let refused = cluster
        .helm([
            "upgrade",
            "--install",
            "postgresql",
            "oci://registry-1.docker.io/bitnamicharts/postgresql",
            "--wait",
            "--atomic",
            "-f",
            "-",
            "--namespace",
            "learnflow",
        ])
        .env("PGK8S_FAKE_HELM_VERSION", "3")
        .stdin(larger)
        .expect(1);
    assert!(
        refused.stderr.contains(
            "Error: UPGRADE FAILED: release postgresql failed, and has been rolled back due to atomic being set: \
             cannot patch \"postgresql\" with kind StatefulSet: StatefulSet.apps \"postgresql\" is invalid: \
             spec: Forbidden: updates to statefulset spec for fields other than 'replicas'"
        ),
        "{}",
        refused.stderr
    );
}

/// A claim whose pod still runs is not deleted: kubernetes.io/pvc-protection keeps it
/// Terminating with its data, and a waiting `kubectl delete` times out, as on the real control
/// plane (`tests/realcp.rs`, two releases in one namespace).
#[test]
fn deleting_a_claim_in_use_leaves_it_terminating_like_the_real_api_server() {
    let cluster = cluster_or_skip!();
    install(&cluster, "Sim-Superuser-Password-1");
    let waited = cluster
        .kubectl([
            "delete",
            "pvc/data-postgresql-0",
            "-n",
            "learnflow",
            "--wait=true",
            "--timeout=1s",
        ])
        .expect(1);
    assert!(
        waited.stderr.contains(
            "timed out waiting for the condition on persistentvolumeclaims/data-postgresql-0"
        ),
        "{}",
        waited.stderr
    );
    let claim = cluster
        .kubectl([
            "get",
            "pvc",
            "data-postgresql-0",
            "-n",
            "learnflow",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert!(
        claim["metadata"]["deletionTimestamp"].is_string(),
        "{claim}"
    );
    assert_eq!(
        cluster.sql("learnflow", "postgresql-0", "learnflow", "select 1;"),
        "1",
        "the server and its data are untouched"
    );
}

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
    // The chart's default image is 17: the pod runs 17 where scripts/get-postgres.sh installed
    // it, else the machine's own major, and says which.
    let major = cluster.pod_major("learnflow", "postgresql-0");
    assert!(
        version.starts_with(&major.to_string()),
        "{version} on {major}"
    );
    let installed: Vec<u32> = cluster.majors().iter().map(|(major, _)| *major).collect();
    assert!(
        major == 17 || !installed.contains(&17),
        "{major} {installed:?}"
    );
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

/// Values of the default release with the image tag and extra YAML appended.
fn values_with(tag: Option<&str>, extra: &str) -> String {
    let image = tag
        .map(|tag| format!("image:\n  tag: {tag}\n"))
        .unwrap_or_default();
    format!("{STANDALONE_VALUES}{image}{extra}")
}

/// The majors a pod can run here, lowest first (the machine's own and those of
/// scripts/get-postgres.sh); None, after saying why (a failure in CI), where there is one only.
fn two_majors(cluster: &Cluster) -> Option<Vec<u32>> {
    let majors: Vec<u32> = cluster.majors().iter().map(|(major, _)| *major).collect();
    common::require(
        "PostgreSQL server binaries of a second major",
        majors.len() >= 2,
        "bash scripts/get-postgres.sh",
    )
    .then_some(majors)
}

fn pod_json(cluster: &Cluster, pod: &str) -> serde_json::Value {
    cluster.object(&format!("pod/{pod}"))
}

fn claim_json(cluster: &Cluster, claim: &str) -> serde_json::Value {
    cluster.object(&format!("pvc/{claim}"))
}

/// When the server of a pod started (unchanged while the same server runs).
fn started_at(cluster: &Cluster, pod: &str) -> String {
    cluster.sql(
        "learnflow",
        pod,
        "learnflow",
        "select pg_postmaster_start_time();",
    )
}

#[test]
fn a_pod_runs_the_postgresql_major_of_its_image_tag() {
    let cluster = cluster_or_skip!();
    let Some(majors) = two_majors(&cluster) else {
        return;
    };
    let (old, new) = (majors[0], majors[majors.len() - 1]);
    cluster.create_secret("Sim-Superuser-Password-1", "app-password-1");
    cluster
        .helm_values(&values_with(Some(&format!("{old}")), ""), "60s")
        .succeeds();
    assert_eq!(cluster.pod_major("learnflow", "postgresql-0"), old);
    let version = cluster.sql(
        "learnflow",
        "postgresql-0",
        "learnflow",
        "show server_version_num;",
    );
    assert!(version.starts_with(&old.to_string()), "{version}");
    // A release of the newer major on a fresh volume runs that major's server, and the pod's
    // client tools include a full newer installation (pg_dump, pg_restore).
    let tag = format!("{new}.1.0-debian-12-r0");
    cluster
        .helm([
            "upgrade",
            "--install",
            "other",
            "chart",
            "--wait",
            "--timeout",
            "60s",
            "-f",
            "-",
            "-n",
            "learnflow",
        ])
        .stdin(values_with(Some(&tag), ""))
        .succeeds();
    assert_eq!(cluster.pod_major("learnflow", "other-postgresql-0"), new);
    let version = cluster.sql(
        "learnflow",
        "other-postgresql-0",
        "learnflow",
        "show server_version_num;",
    );
    assert!(version.starts_with(&new.to_string()), "{version}");
    let tools = cluster
        .kubectl([
            "exec",
            "other-postgresql-0",
            "-n",
            "learnflow",
            "--",
            "sh",
            "-c",
            "pg_dump --version && pg_restore --version",
        ])
        .succeeds();
    assert!(
        tools.stdout.contains("pg_restore (PostgreSQL)"),
        "{}",
        tools.stdout
    );
}

/// A server of one major on a volume of another does what the real image does: PostgreSQL
/// refuses the data directory, the container exits 1 and the pod crash-loops; helm's wait fails.
#[test]
fn a_pod_on_a_volume_of_another_major_crash_loops_with_the_servers_own_fatal() {
    let cluster = cluster_or_skip!();
    let Some(majors) = two_majors(&cluster) else {
        return;
    };
    let (old, new) = (majors[0], majors[majors.len() - 1]);
    cluster.create_secret("Sim-Superuser-Password-1", "app-password-1");
    cluster
        .helm_values(&values_with(Some(&old.to_string()), ""), "60s")
        .succeeds();
    cluster.sql(
        "learnflow",
        "postgresql-0",
        "learnflow",
        "create table kept (x int); insert into kept values (7);",
    );
    let failed = cluster
        .helm_values(&values_with(Some(&format!("{new}.0.0")), ""), "1s")
        .expect(1);
    assert!(
        failed
            .stderr
            .contains("Error: UPGRADE FAILED: context deadline exceeded"),
        "{}",
        failed.stderr
    );
    let pod = pod_json(&cluster, "postgresql-0");
    let container = &pod["status"]["containerStatuses"][0];
    assert_eq!(
        container["state"]["waiting"]["reason"], "CrashLoopBackOff",
        "{pod}"
    );
    assert!(container["restartCount"].as_u64().unwrap() > 0, "{pod}");
    assert_eq!(container["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(container["lastState"]["terminated"]["exitCode"], 1);
    assert_eq!(container["ready"], false);
    for previous in [false, true] {
        let mut args = vec!["logs", "postgresql-0", "-n", "learnflow"];
        if previous {
            args.push("--previous");
        }
        let logs = cluster.kubectl(args).succeeds().stdout;
        assert!(
            logs.contains("FATAL:  database files are incompatible with server"),
            "{logs}"
        );
        assert!(
            logs.contains(&format!(
                "DETAIL:  The data directory was initialized by PostgreSQL version {old}, \
                 which is not compatible with this version {new}."
            )),
            "{logs}"
        );
    }
    let exec = cluster
        .kubectl(["exec", "postgresql-0", "-n", "learnflow", "--", "true"])
        .expect(1);
    assert!(
        exec.stderr.contains("container not found"),
        "{}",
        exec.stderr
    );
    // Back on the volume's major, the server starts with the data it had.
    cluster
        .helm_values(&values_with(Some(&old.to_string()), ""), "60s")
        .succeeds();
    assert_eq!(
        cluster.sql(
            "learnflow",
            "postgresql-0",
            "learnflow",
            "select x from kept;"
        ),
        "7"
    );
}

/// The major upgrade the simulator must let pgk8s do for real: dump from the old major's pod,
/// delete the StatefulSet leaving its pod, create a claim, let helm create the StatefulSet anew
/// on that claim with the new image, restore with the newer client tools. The two newest majors
/// (17 and 18 where scripts/get-postgres.sh ran: 17's server with 18's pg_dump).
#[test]
fn data_moves_between_majors_through_a_new_claim_and_an_orphaning_delete() {
    let cluster = cluster_or_skip!();
    let Some(majors) = two_majors(&cluster) else {
        return;
    };
    let (old, new) = (majors[majors.len() - 2], majors[majors.len() - 1]);
    cluster.create_secret("Sim-Superuser-Password-1", "app-password-1");
    cluster
        .helm_values(&values_with(Some(&old.to_string()), ""), "60s")
        .succeeds();
    cluster.sql(
        "learnflow",
        "postgresql-0",
        "learnflow",
        "create table moved (x int); insert into moved select generate_series(1, 100);",
    );
    let dump = cluster
        .pod_shell(
            "postgresql-0",
            "PGPASSWORD=\"$(cat /opt/bitnami/postgresql/secrets/postgres-password)\" \
             exec pg_dump -U postgres -d learnflow -Fc",
        )
        .succeeds()
        .stdout_bytes;
    assert!(dump.starts_with(b"PGDMP"), "not a custom-format dump");

    let orphaned = cluster
        .kubectl([
            "delete",
            "statefulset/postgresql",
            "-n",
            "learnflow",
            "--cascade=orphan",
        ])
        .succeeds();
    assert!(
        orphaned
            .stdout
            .contains("statefulset.apps \"postgresql\" deleted"),
        "{}",
        orphaned.stdout
    );
    assert_eq!(
        cluster.sql(
            "learnflow",
            "postgresql-0",
            "learnflow",
            "select count(*) from moved;"
        ),
        "100"
    );
    let claim = serde_json::json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": format!("data-postgresql-{new}"), "namespace": "learnflow"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}},
    });
    cluster
        .kubectl(["apply", "-f", "-"])
        .stdin(claim.to_string())
        .succeeds();
    let created = claim_json(&cluster, &format!("data-postgresql-{new}"));
    assert_eq!(created["status"]["phase"], "Bound", "{created}");
    assert_eq!(created["status"]["capacity"]["storage"], "8Gi", "{created}");
    assert_eq!(created["spec"]["storageClassName"], "standard", "{created}");

    let upgrade = values_with(
        Some(&format!("{new}.0.0")),
        &format!("primary:\n  persistence:\n    existingClaim: data-postgresql-{new}\n"),
    );
    cluster.helm_values(&upgrade, "60s").succeeds();
    assert_eq!(cluster.pod_major("learnflow", "postgresql-0"), new);
    let sts = cluster
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
    assert!(sts["spec"]["volumeClaimTemplates"].is_null(), "{sts}");
    let pod = pod_json(&cluster, "postgresql-0");
    let data = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|volume| volume["name"] == "data")
        .unwrap()
        .clone();
    assert_eq!(
        data["persistentVolumeClaim"]["claimName"],
        format!("data-postgresql-{new}")
    );
    let restore = cluster
        .pod_shell(
            "postgresql-0",
            "PGPASSWORD=\"$(cat /opt/bitnami/postgresql/secrets/postgres-password)\" \
             exec pg_restore -U postgres -d learnflow --no-owner",
        )
        .stdin(dump)
        .run();
    assert!(restore.status.success(), "{}", restore.stderr);
    assert_eq!(
        cluster.sql(
            "learnflow",
            "postgresql-0",
            "learnflow",
            "select count(*) from moved;"
        ),
        "100"
    );
    let version = cluster.sql(
        "learnflow",
        "postgresql-0",
        "learnflow",
        "show server_version_num;",
    );
    assert!(version.starts_with(&new.to_string()), "{version}");
    // The old claim is untouched: the rollback path.
    let old_claim = claim_json(&cluster, "data-postgresql-0");
    assert_eq!(old_claim["status"]["phase"], "Bound");
}

#[test]
fn storage_classes_say_which_can_grow_a_claim() {
    let cluster = cluster_or_skip!();
    let table = cluster.kubectl(["get", "storageclass"]).succeeds().stdout;
    assert!(table.contains("ALLOWVOLUMEEXPANSION"), "{table}");
    let row = |name: &str| {
        table
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("standard (default)").contains("false"), "{table}");
    assert!(row("expandable").contains("true"), "{table}");
    let expandable = cluster
        .kubectl(["get", "storageclass/expandable", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(expandable["allowVolumeExpansion"], true);
    let standard = cluster
        .kubectl(["get", "sc/standard", "-o", "json"])
        .succeeds()
        .json();
    assert!(standard["allowVolumeExpansion"].is_null(), "{standard}");
}

fn grow(cluster: &Cluster, claim: &str, size: &str) -> common::Run {
    cluster.kubectl([
        "patch",
        &format!("pvc/{claim}"),
        "-n",
        "learnflow",
        "--type",
        "merge",
        "-p",
        &format!("{{\"spec\":{{\"resources\":{{\"requests\":{{\"storage\":\"{size}\"}}}}}}}}"),
    ])
}

/// The default class (kind's local-path) has no allowVolumeExpansion: the
/// PersistentVolumeClaimResize admission plugin refuses, the claim keeps its size.
#[test]
fn growing_a_claim_of_a_class_without_expansion_is_forbidden() {
    let cluster = cluster_or_skip!();
    install(&cluster, "Sim-Superuser-Password-1");
    let refused = grow(&cluster, "data-postgresql-0", "20Gi").expect(1);
    assert_eq!(
        refused.stderr.trim_end(),
        "Error from server (Forbidden): persistentvolumeclaims \"data-postgresql-0\" is forbidden: \
         only dynamically provisioned pvc can be resized and the storageclass that provisions the \
         pvc must support resize"
    );
    let claim = claim_json(&cluster, "data-postgresql-0");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "8Gi");
    assert_eq!(claim["status"]["capacity"]["storage"], "8Gi");
}

/// kube-apiserver v1.34 (RecoverVolumeExpansionFailure is GA) words a shrink against the
/// volume's capacity, "previous value" being the older servers' text; validation comes before
/// the resize admission plugin, so the default class gets this answer too.
#[test]
fn shrinking_a_claim_is_invalid() {
    let cluster = cluster_or_skip!();
    install(&cluster, "Sim-Superuser-Password-1");
    let refused = grow(&cluster, "data-postgresql-0", "4Gi").expect(1);
    assert_eq!(
        refused.stderr.trim_end(),
        "The PersistentVolumeClaim \"data-postgresql-0\" is invalid: spec.resources.requests.storage: \
         Forbidden: field can not be less than status.capacity"
    );
}

/// A claim of a class with allowVolumeExpansion grows: the request at once, status.capacity when
/// the file system resize is done (FileSystemResizePending meanwhile); the server keeps running.
#[test]
fn a_claim_of_an_expandable_class_grows_and_its_capacity_follows() {
    let cluster = cluster_or_skip!();
    cluster.create_secret("Sim-Superuser-Password-1", "app-password-1");
    cluster
        .helm_values(
            &values_with(
                None,
                "primary:\n  persistence:\n    storageClass: expandable\n",
            ),
            "60s",
        )
        .succeeds();
    let before = started_at(&cluster, "postgresql-0");
    let grown = grow(&cluster, "data-postgresql-0", "20Gi").succeeds();
    assert_eq!(
        grown.stdout.trim(),
        "persistentvolumeclaim/data-postgresql-0 patched"
    );
    let claim = claim_json(&cluster, "data-postgresql-0");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "20Gi");
    assert_eq!(claim["status"]["capacity"]["storage"], "20Gi");
    // The same patch again changes nothing.
    let again = grow(&cluster, "data-postgresql-0", "20Gi").succeeds();
    assert!(
        again.stdout.contains("patched (no change)"),
        "{}",
        again.stdout
    );
    // With a resize that takes a while, capacity lags behind the request.
    let pending = cluster
        .kubectl([
            "patch",
            "pvc",
            "data-postgresql-0",
            "-n",
            "learnflow",
            "--type=merge",
            "--patch",
            r#"{"spec":{"resources":{"requests":{"storage":"30Gi"}}}}"#,
        ])
        .env("PGK8S_FAKE_RESIZE_PENDING_MS", "1500")
        .succeeds();
    assert!(pending.stdout.contains("patched"));
    let claim = claim_json(&cluster, "data-postgresql-0");
    assert_eq!(claim["status"]["capacity"]["storage"], "20Gi", "{claim}");
    assert_eq!(
        claim["status"]["conditions"][0]["type"], "FileSystemResizePending",
        "{claim}"
    );
    std::thread::sleep(std::time::Duration::from_millis(1700));
    let claim = claim_json(&cluster, "data-postgresql-0");
    assert_eq!(claim["status"]["capacity"]["storage"], "30Gi", "{claim}");
    assert!(claim["status"]["conditions"].is_null(), "{claim}");
    assert_eq!(started_at(&cluster, "postgresql-0"), before);
    // helm keeps the grown claim as it is (volumeClaimTemplates make new claims only).
    cluster
        .helm_values(
            &values_with(
                None,
                "primary:\n  persistence:\n    storageClass: expandable\n",
            ),
            "60s",
        )
        .succeeds();
    let claim = claim_json(&cluster, "data-postgresql-0");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "30Gi");
}

/// `--cascade=orphan` removes the StatefulSet object only; a plain delete takes its pods
/// (servers stopped) but leaves the claims, as the StatefulSet controller does.
#[test]
fn deleting_a_statefulset_orphaning_its_pods_leaves_them_running() {
    let cluster = cluster_or_skip!();
    install(&cluster, "Sim-Superuser-Password-1");
    let before = started_at(&cluster, "postgresql-0");
    cluster
        .kubectl([
            "delete",
            "sts/postgresql",
            "-n",
            "learnflow",
            "--cascade=orphan",
        ])
        .succeeds();
    cluster
        .kubectl(["get", "statefulset/postgresql", "-n", "learnflow"])
        .expect(1);
    let pod = pod_json(&cluster, "postgresql-0");
    assert_eq!(pod["status"]["phase"], "Running");
    assert!(
        pod["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{pod}"
    );
    assert_eq!(started_at(&cluster, "postgresql-0"), before);
    claim_json(&cluster, "data-postgresql-0");

    let deleted = cluster
        .kubectl(["delete", "statefulset/postgresql", "-n", "learnflow"])
        .expect(1);
    assert!(deleted.stderr.contains("not found"), "{}", deleted.stderr);
}

#[test]
fn deleting_a_statefulset_takes_its_pods_and_keeps_its_claims() {
    let cluster = cluster_or_skip!();
    install(&cluster, "Sim-Superuser-Password-1");
    cluster.sql(
        "learnflow",
        "postgresql-0",
        "learnflow",
        "create table kept (x int); insert into kept values (1);",
    );
    cluster
        .kubectl(["delete", "statefulset/postgresql", "-n", "learnflow"])
        .succeeds();
    cluster
        .kubectl(["get", "pod/postgresql-0", "-n", "learnflow"])
        .expect(1);
    let claim = claim_json(&cluster, "data-postgresql-0");
    assert_eq!(claim["status"]["phase"], "Bound");
    // helm makes the StatefulSet again; its pod starts on the kept claim.
    install(&cluster, "Sim-Superuser-Password-1");
    assert_eq!(
        cluster.sql(
            "learnflow",
            "postgresql-0",
            "learnflow",
            "select x from kept;"
        ),
        "1"
    );
}

/// The API server compares volumeClaimTemplates with the live StatefulSet: once it is gone
/// (deleted with --cascade=orphan), helm creates it with the new templates, and the running pod,
/// whose template is unchanged, is adopted without a restart. The existing claim keeps its size.
#[test]
fn helm_recreates_an_orphaned_statefulset_and_adopts_its_running_pod() {
    let cluster = cluster_or_skip!();
    install(&cluster, "Sim-Superuser-Password-1");
    let before = started_at(&cluster, "postgresql-0");
    let larger = values_with(None, "primary:\n  persistence:\n    size: 16Gi\n");
    // helm 4 applied the release server-side: the refusal has no "cannot patch" before it.
    let refused = cluster.helm_values(&larger, "60s").expect(1);
    assert!(
        refused.stderr.contains(
            "Error: UPGRADE FAILED: StatefulSet.apps \"postgresql\" is invalid: spec: Forbidden: \
             updates to statefulset spec"
        ),
        "{}",
        refused.stderr
    );
    cluster
        .kubectl([
            "delete",
            "statefulset/postgresql",
            "-n",
            "learnflow",
            "--cascade=orphan",
        ])
        .succeeds();
    cluster.helm_values(&larger, "60s").succeeds();
    let sts = cluster
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
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "16Gi"
    );
    assert_eq!(
        started_at(&cluster, "postgresql-0"),
        before,
        "the server was restarted"
    );
    let pod = pod_json(&cluster, "postgresql-0");
    assert_eq!(
        pod["metadata"]["ownerReferences"][0]["name"], "postgresql",
        "{pod}"
    );
    let claim = claim_json(&cluster, "data-postgresql-0");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "8Gi");
}

/// Only a change of the pod template (image, resources, env) rolls the pod.
#[test]
fn only_a_changed_pod_template_restarts_the_server() {
    let cluster = cluster_or_skip!();
    install(&cluster, "Sim-Superuser-Password-1");
    let before = started_at(&cluster, "postgresql-0");
    // A value outside the pod template.
    cluster
        .helm_values(
            &values_with(None, "primary:\n  service:\n    type: ClusterIP\n"),
            "60s",
        )
        .succeeds();
    assert_eq!(started_at(&cluster, "postgresql-0"), before);
    let resources = "primary:\n  resources:\n    requests:\n      cpu: 250m\n      memory: 256Mi\n";
    cluster
        .helm_values(&values_with(None, resources), "60s")
        .succeeds();
    assert_ne!(started_at(&cluster, "postgresql-0"), before);
}

#[test]
fn an_existing_claim_that_does_not_exist_leaves_the_pod_pending() {
    let cluster = cluster_or_skip!();
    cluster.create_secret("Sim-Superuser-Password-1", "app-password-1");
    let values = values_with(
        None,
        "primary:\n  persistence:\n    existingClaim: data-missing\n",
    );
    cluster.helm_values(&values, "1s").expect(1);
    let pod = pod_json(&cluster, "postgresql-0");
    assert_eq!(pod["status"]["phase"], "Pending");
    let scheduled = &pod["status"]["conditions"][0];
    assert_eq!(scheduled["status"], "False");
    assert!(
        scheduled["message"]
            .as_str()
            .unwrap()
            .contains("persistentvolumeclaim \"data-missing\" not found"),
        "{pod}"
    );
    let events = cluster
        .kubectl(["get", "events", "-n", "learnflow", "-o", "json"])
        .succeeds()
        .json();
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["reason"] == "FailedScheduling"),
        "{events}"
    );
    // Once the claim exists, the pod starts on it.
    let claim = serde_json::json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-missing", "namespace": "learnflow"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    });
    cluster
        .kubectl(["apply", "-f", "-"])
        .stdin(claim.to_string())
        .succeeds();
    cluster.helm_values(&values, "60s").succeeds();
    assert_eq!(
        cluster.sql("learnflow", "postgresql-0", "learnflow", "select 1;"),
        "1"
    );
    assert!(
        cluster
            .path()
            .join("state/volumes/learnflow/data-missing/data/PG_VERSION")
            .exists()
    );
}

/// The API server validates a Secret's type as immutable: an apply that changes it is refused
/// and the Secret keeps its type and data.
#[test]
fn a_secrets_type_never_changes() {
    let cluster = cluster_or_skip!();
    let secret = |kind: &str, value: &str| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "learnflow"}},
                {"apiVersion": "v1", "kind": "Secret", "type": kind,
                 "metadata": {"name": "s", "namespace": "learnflow"},
                 "stringData": {"password": value}}
            ]
        })
        .to_string()
    };
    cluster
        .kubectl(["apply", "-f", "-"])
        .stdin(secret("Opaque", "first"))
        .succeeds();
    let refused = cluster
        .kubectl(["apply", "-f", "-"])
        .stdin(secret("kubernetes.io/basic-auth", "second"))
        .expect(1);
    assert!(
        refused
            .stderr
            .contains("The Secret \"s\" is invalid: type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"),
        "{}",
        refused.stderr
    );
    let kept = cluster.object("secret/s");
    assert_eq!(kept["type"], "Opaque");
}

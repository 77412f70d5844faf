//! The CloudNativePG operator in the simulated cluster (`tests/sim/sim_cnpg.py`): installed with
//! helm, serving `clusters.postgresql.cnpg.io`, and reconciling Clusters on real PostgreSQL
//! (streaming replicas, switchover, hibernation, import from a Bitnami release, deletion), with
//! the calls pgk8s makes.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, Finished, STANDALONE_VALUES};
use serde_json::{Value, json};

const NS: &str = "learnflow";
const IMAGE_17: &str = "ghcr.io/cloudnative-pg/postgresql:17.11-system-trixie";
const CRD: &str = "clusters.postgresql.cnpg.io";

/// The operator's install exactly as pgk8s runs it (helm 4; helm 3 takes `--atomic`).
fn install_operator(cluster: &Cluster, timeout: &str) -> Finished {
    helm_install(cluster, timeout, "--rollback-on-failure").run()
}

fn helm_install(cluster: &Cluster, timeout: &str, rollback: &str) -> common::Run {
    cluster
        .helm([
            "upgrade",
            "--install",
            "--version=0.29.0",
            "--wait",
            &format!("--timeout={timeout}"),
            rollback,
            "--values=-",
            "--namespace=cnpg-system",
            "--create-namespace",
            "--",
            "cnpg",
            "oci://ghcr.io/cloudnative-pg/charts/cloudnative-pg",
        ])
        .stdin("{}\n")
}

fn namespace(cluster: &Cluster) {
    cluster
        .kubectl(["apply", "-f", "-"])
        .stdin(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}).to_string(),
        )
        .succeeds();
}

/// A basic-auth Secret and a Cluster in one List, as pgk8s applies them.
fn manifest(name: &str, instances: u32, username: &str, extra_spec: Value) -> String {
    let mut spec = json!({
        "instances": instances,
        "imageName": IMAGE_17,
        "storage": {"size": "1Gi", "storageClass": "standard"},
        "resources": {"requests": {"memory": "256Mi"}},
        "bootstrap": {"initdb": {"database": "learnflow", "owner": "learnflow",
                                 "secret": {"name": format!("{name}-owner")}}},
        "enableSuperuserAccess": false,
    });
    merge(&mut spec, extra_spec);
    json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
         "metadata": {"name": format!("{name}-owner"), "namespace": NS},
         "stringData": {"username": username, "password": "Owner-Password-1"}},
        {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
         "metadata": {"name": name, "namespace": NS}, "spec": spec},
    ]})
    .to_string()
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(base), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, extra) => *base = extra,
    }
}

fn apply(cluster: &Cluster, manifest: String) -> Finished {
    cluster.kubectl(["apply", "-f", "-"]).stdin(manifest).run()
}

fn get_cluster(cluster: &Cluster, name: &str) -> Value {
    cluster
        .kubectl(["get", &format!("{CRD}/{name}"), "-n", NS, "-o", "json"])
        .succeeds()
        .json()
}

/// Polls the Cluster (each call lets the operator take its next step) until `done` holds;
/// returns it and every phase seen on the way.
fn wait_for(
    cluster: &Cluster,
    name: &str,
    what: &str,
    mut done: impl FnMut(&Value) -> bool,
) -> (Value, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut phases: Vec<String> = Vec::new();
    loop {
        let current = get_cluster(cluster, name);
        let phase = current["status"]["phase"].as_str().unwrap_or_default();
        if phases.last().map(String::as_str) != Some(phase) {
            phases.push(phase.to_string());
        }
        if done(&current) {
            return (current, phases);
        }
        assert!(
            Instant::now() < deadline,
            "{name}: no {what} after 60s; phases {phases:?}\n{:#}\n--- operator errors\n{}\n--- calls\n{}",
            current["status"],
            std::fs::read_to_string(cluster.path().join("state/operator.log")).unwrap_or_default(),
            cluster.call_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn healthy(cluster: &Cluster, name: &str) -> (Value, Vec<String>) {
    wait_for(cluster, name, "healthy phase", |c| {
        c["status"]["phase"] == "Cluster in healthy state"
    })
}

/// SQL in a CNPG pod exactly as pgk8s sends it: the superuser over the socket, no password
/// (fields come back separated by NUL, `-z`; shown here with `|`).
fn pod_sql(cluster: &Cluster, pod: &str, sql: &str) -> String {
    let script =
        "PGAPPNAME=pgk8s exec psql -X -q -A -t -z -v ON_ERROR_STOP=1 -f - -U postgres -d learnflow";
    cluster
        .kubectl([
            "exec", "-i", pod, "-c", "postgres", "-n", NS, "--", "sh", "-c", script,
        ])
        .stdin(sql)
        .succeeds()
        .stdout
        .trim_end()
        .replace('\0', "|")
}

fn pod_shell(cluster: &Cluster, pod: &str, script: &str) -> Finished {
    cluster
        .kubectl([
            "exec", "-i", pod, "-c", "postgres", "-n", NS, "--", "sh", "-c", script,
        ])
        .run()
}

fn object(cluster: &Cluster, kind: &str, name: &str) -> Value {
    cluster
        .kubectl(["get", kind, name, "-n", NS, "-o", "json"])
        .succeeds()
        .json()
}

fn names(cluster: &Cluster, kind: &str, selector: &str) -> Vec<String> {
    let list = cluster
        .kubectl(["get", kind, "-n", NS, "-l", selector, "-o", "json"])
        .succeeds()
        .json();
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            item["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn the_operator_installs_with_helm_and_serves_the_cluster_crd() {
    let mut cluster = cluster_or_skip!();
    let absent = cluster.kubectl(["get", "crd", CRD, "-o", "json"]).expect(1);
    assert_eq!(
        absent.stderr.trim(),
        "Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io \
         \"clusters.postgresql.cnpg.io\" not found"
    );
    let ignored = cluster
        .kubectl(["get", "crd", CRD, "--ignore-not-found", "-o", "json"])
        .succeeds();
    assert_eq!(ignored.stdout, "");
    namespace(&cluster);
    let unmapped = apply(&cluster, manifest("pg", 1, "learnflow", json!({})));
    assert_eq!(unmapped.code(), Some(1));
    assert!(
        unmapped.stdout.contains("secret/pg-owner created"),
        "{}",
        unmapped.stdout
    );
    assert_eq!(
        unmapped.stderr.trim(),
        "error: resource mapping not found for name: \"pg\" namespace: \"learnflow\" from \"STDIN\": \
         no matches for kind \"Cluster\" in version \"postgresql.cnpg.io/v1\"\nensure CRDs are installed first"
    );

    let installed = install_operator(&cluster, "300s");
    assert!(installed.status.success(), "{}", installed.stderr);
    let crd = cluster
        .kubectl(["get", "crd", CRD, "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(crd["spec"]["names"]["kind"], "Cluster");
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let deployment = cluster
        .kubectl([
            "get",
            "deployment",
            "cnpg-cloudnative-pg",
            "-n",
            "cnpg-system",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert_eq!(deployment["status"]["availableReplicas"], 1);
    assert_eq!(deployment["status"]["readyReplicas"], 1);
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/name"],
        "cloudnative-pg"
    );
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/instance"],
        "cnpg"
    );
    let status = cluster
        .helm(["status", "cnpg", "-n", "cnpg-system", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(status["info"]["status"], "deployed");
    assert!(
        status["manifest"]
            .as_str()
            .unwrap_or_default()
            .contains("helm.sh/chart: cloudnative-pg-0.29.0"),
        "{status}"
    );
    let listed = cluster
        .helm(["list", "-n", "cnpg-system", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(listed[0]["chart"], "cloudnative-pg-0.29.0");
    assert_eq!(listed[0]["app_version"], "1.30.0");

    // The same install through helm 3 upgrades the release.
    let upgraded = helm_install(&cluster, "300s", "--atomic")
        .env("PGK8S_FAKE_HELM_VERSION", "3")
        .succeeds();
    assert!(
        upgraded.stdout.contains("has been upgraded"),
        "{}",
        upgraded.stdout
    );

    // The operator down: its Deployment is unavailable, helm's wait fails and rolls back, and the
    // fail-closed admission webhook refuses Clusters.
    cluster.set_env("PGK8S_FAKE_FAULTS", "cnpg-operator-down");
    let down = cluster
        .kubectl([
            "get",
            "deploy/cnpg-cloudnative-pg",
            "-n",
            "cnpg-system",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert!(down["status"]["availableReplicas"].is_null(), "{down}");
    let refused = apply(&cluster, manifest("pg", 1, "learnflow", json!({})));
    assert_eq!(refused.code(), Some(1));
    assert!(
        refused.stderr.contains(
            "failed calling webhook \"mcluster.cnpg.io\": failed to call webhook: Post \
             \"https://cnpg-webhook-service.cnpg-system.svc:443/mutate-postgresql-cnpg-io-v1-cluster?timeout=10s\": \
             no endpoints available for service \"cnpg-webhook-service\""
        ),
        "{}",
        refused.stderr
    );
    let timed_out = install_operator(&cluster, "1s");
    assert_eq!(timed_out.code(), Some(1));
    assert!(
        timed_out.stderr.contains(
            "Error: UPGRADE FAILED: release cnpg failed, and has been rolled back due to \
             rollback-on-failure being set: context deadline exceeded"
        ),
        "{}",
        timed_out.stderr
    );
    // A stuck operator admits (and defaults) a Cluster but makes nothing for it.
    cluster.set_env("PGK8S_FAKE_FAULTS", "cnpg-operator-stuck");
    apply(&cluster, manifest("stuck", 1, "learnflow", json!({}))).expect_code(0);
    for _ in 0..3 {
        let stuck = get_cluster(&cluster, "stuck");
        assert_eq!(stuck["spec"]["primaryUpdateStrategy"], "unsupervised");
        assert!(stuck["status"]["phase"].is_null(), "{stuck}");
    }
    assert!(names(&cluster, "pvc", "cnpg.io/cluster=stuck").is_empty());
    cluster
        .kubectl(["delete", "cluster", "stuck", "-n", NS])
        .succeeds();
    cluster.unset_env("PGK8S_FAKE_FAULTS");

    let uninstalled = cluster
        .helm(["uninstall", "cnpg", "-n", "cnpg-system"])
        .succeeds();
    assert!(
        uninstalled
            .stdout
            .contains("[CustomResourceDefinition] clusters.postgresql.cnpg.io"),
        "{}",
        uninstalled.stdout
    );
    cluster
        .kubectl([
            "get",
            "deployment",
            "cnpg-cloudnative-pg",
            "-n",
            "cnpg-system",
            "-o",
            "json",
        ])
        .expect(1);
    cluster
        .kubectl(["get", "crd", CRD, "-o", "json"])
        .succeeds();
    // Without the operator a Cluster is stored as it is, undefaulted, and nothing reconciles it.
    apply(&cluster, manifest("pg", 1, "learnflow", json!({}))).expect_code(0);
    let stored = get_cluster(&cluster, "pg");
    assert!(
        stored["status"].is_null() || stored["status"]["phase"].is_null(),
        "{stored}"
    );
    assert!(
        stored["spec"]["primaryUpdateStrategy"].is_null(),
        "{stored}"
    );
    assert!(names(&cluster, "pods", "cnpg.io/cluster=pg").is_empty());
}

#[test]
fn a_cluster_comes_up_with_streaming_replicas_and_peer_access_in_its_pods() {
    let cluster = cluster_or_skip!();
    assert!(install_operator(&cluster, "300s").status.success());
    namespace(&cluster);
    let applied = apply(&cluster, manifest("pg", 2, "learnflow", json!({}))).expect_code(0);
    assert!(
        applied
            .stdout
            .contains("cluster.postgresql.cnpg.io/pg created"),
        "{}",
        applied.stdout
    );
    let (pg, phases) = healthy(&cluster, "pg");
    for phase in ["Setting up primary", "Creating a new replica"] {
        assert!(
            phases.iter().any(|seen| seen == phase),
            "{phase} not seen: {phases:?}"
        );
    }
    let status = &pg["status"];
    assert_eq!(status["instances"], 2);
    assert_eq!(status["readyInstances"], 2);
    assert_eq!(status["currentPrimary"], "pg-1");
    assert_eq!(status["targetPrimary"], "pg-1");
    assert_eq!(status["instanceNames"], json!(["pg-1", "pg-2"]));
    assert_eq!(status["writeService"], "pg-rw");
    assert_eq!(status["readService"], "pg-r");
    assert!(status.get("phaseReason").is_none(), "{status}");
    let ready = status["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|condition| condition["type"] == "Ready")
        .expect("Ready");
    assert_eq!(
        (&ready["status"], &ready["reason"], &ready["message"]),
        (
            &json!("True"),
            &json!("ClusterIsReady"),
            &json!("Cluster is Ready")
        )
    );
    assert_eq!(
        pg["spec"]["primaryUpdateStrategy"], "unsupervised",
        "webhook defaults"
    );

    let primary = object(&cluster, "pod", "pg-1");
    let labels = &primary["metadata"]["labels"];
    assert_eq!(labels["cnpg.io/cluster"], "pg");
    assert_eq!(labels["cnpg.io/instanceName"], "pg-1");
    assert_eq!(labels["cnpg.io/podRole"], "instance");
    assert_eq!(labels["cnpg.io/instanceRole"], "primary");
    assert_eq!(labels["role"], "primary");
    assert_eq!(primary["spec"]["containers"][0]["name"], "postgres");
    assert_eq!(primary["metadata"]["ownerReferences"][0]["kind"], "Cluster");
    assert_eq!(
        names(&cluster, "pods", "cnpg.io/instanceRole=replica"),
        ["pg-2"]
    );
    let claim = object(&cluster, "pvc", "pg-2");
    assert_eq!(claim["metadata"]["labels"]["cnpg.io/pvcRole"], "PG_DATA");
    assert_eq!(claim["metadata"]["ownerReferences"][0]["name"], "pg");
    let rw = object(&cluster, "service", "pg-rw");
    assert_eq!(
        rw["spec"]["selector"],
        json!({"cnpg.io/cluster": "pg", "cnpg.io/instanceRole": "primary"})
    );
    let table = cluster
        .kubectl(["get", "cluster", "pg", "-n", NS])
        .succeeds()
        .stdout;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("Cluster in healthy state"), "{table}");

    // The tag's major runs (17 where scripts/get-postgres.sh installed it).
    let installed: Vec<u32> = cluster.majors().iter().map(|(major, _)| *major).collect();
    let major = cluster.pod_major(NS, "pg-1");
    assert!(
        major == 17 || !installed.contains(&17),
        "{major} {installed:?}"
    );
    // Peer authentication as postgres, the owner owning the database, real streaming.
    assert_eq!(
        pod_sql(
            &cluster,
            "pg-1",
            "select pg_get_userbyid(datdba) from pg_database where datname = 'learnflow';"
        ),
        "learnflow"
    );
    assert_eq!(
        pod_sql(
            &cluster,
            "pg-1",
            "select application_name, state, sync_state from pg_stat_replication;"
        ),
        "pg-2|streaming|async"
    );
    assert_eq!(
        pod_sql(&cluster, "pg-2", "select pg_is_in_recovery();"),
        "t"
    );
    let refused = pod_shell(
        &cluster,
        "pg-1",
        "exec psql -X -At -U learnflow -d learnflow -c 'select 1'",
    );
    assert!(
        refused
            .stderr
            .contains("FATAL:  Peer authentication failed for user \"learnflow\""),
        "{}",
        refused.stderr
    );
    let over_tcp = pod_shell(
        &cluster,
        "pg-1",
        "PGPASSWORD=Owner-Password-1 exec psql -X -At -h 127.0.0.1 -U learnflow -d learnflow -c 'select current_user'",
    );
    assert_eq!(over_tcp.stdout.trim(), "learnflow", "{}", over_tcp.stderr);
    let as_owner = pod_shell(
        &cluster,
        "pg-1",
        "PGOPTIONS='-c role=learnflow' exec psql -X -At -U postgres -d learnflow -c 'select current_user'",
    );
    assert_eq!(as_owner.stdout.trim(), "learnflow", "{}", as_owner.stderr);
    let logs = cluster
        .kubectl(["logs", "pg-1", "-c", "postgres", "-n", NS])
        .succeeds()
        .stdout;
    let record: Value =
        serde_json::from_str(logs.lines().last().expect("a log line")).expect("JSON");
    assert_eq!(record["logging_pod"], "pg-1", "{record}");
    assert!(logs.contains("Peer authentication failed"), "{logs}");

    // port-forward to the read-write service reaches the primary.
    let local = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let forward = cluster
        .kubectl([
            "port-forward",
            "svc/pg-rw",
            &format!("{local}:5432"),
            "-n",
            NS,
        ])
        .env("PGK8S_FAKE_PORT_FORWARD_EXIT_AFTER_MS", "2500");
    let forwarding = std::thread::spawn(move || forward.run());
    let mut answer = String::new();
    for _ in 0..40 {
        let output = std::process::Command::new("psql")
            .args([
                "-X",
                "-At",
                "-h",
                "127.0.0.1",
                "-p",
                &local.to_string(),
                "-U",
                "learnflow",
            ])
            .args(["-d", "learnflow", "-c", "select pg_is_in_recovery()"])
            .env("PGPASSWORD", "Owner-Password-1")
            .output()
            .expect("psql");
        answer = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if output.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(answer, "f", "the primary answers through svc/pg-rw");
    forwarding.join().expect("port-forward");
}

#[test]
fn a_switchover_promotes_the_target_and_the_old_primary_streams_from_it() {
    let cluster = cluster_or_skip!();
    assert!(install_operator(&cluster, "300s").status.success());
    namespace(&cluster);
    apply(&cluster, manifest("pg", 2, "learnflow", json!({}))).expect_code(0);
    healthy(&cluster, "pg");
    pod_sql(
        &cluster,
        "pg-1",
        "create table kept (id int); insert into kept values (1), (2);",
    );
    cluster.clear_calls();
    cluster
        .kubectl([
            "patch",
            &format!("{CRD}/pg"),
            "-n",
            NS,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"targetPrimary":"pg-2","targetPrimaryTimestamp":"2026-01-01T00:00:00.000000Z","phase":"Switchover in progress","phaseReason":"Switching over to pg-2"}}"#,
        ])
        .succeeds();
    assert!(
        cluster
            .mutating_calls()
            .iter()
            .any(|call| call.verb() == "patch"),
        "a patch is mutating"
    );
    let (pg, phases) = wait_for(&cluster, "pg", "switchover", |c| {
        c["status"]["currentPrimary"] == "pg-2"
            && c["status"]["phase"] == "Cluster in healthy state"
    });
    assert_eq!(
        phases.first().map(String::as_str),
        Some("Switchover in progress"),
        "{phases:?}"
    );
    assert_eq!(pg["status"]["targetPrimary"], "pg-2");
    assert_eq!(pg["status"]["timelineID"], 2);
    assert_eq!(
        pod_sql(
            &cluster,
            "pg-2",
            "select pg_is_in_recovery(), count(*) from kept;"
        ),
        "f|2"
    );
    pod_sql(&cluster, "pg-2", "insert into kept values (3);");
    assert_eq!(
        pod_sql(
            &cluster,
            "pg-2",
            "select application_name, state from pg_stat_replication;"
        ),
        "pg-1|streaming"
    );
    assert_eq!(
        names(&cluster, "pods", "cnpg.io/instanceRole=primary"),
        ["pg-2"]
    );
    assert_eq!(names(&cluster, "pods", "role=replica"), ["pg-1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pod_sql(&cluster, "pg-1", "select count(*) from kept;") != "3" {
        assert!(
            Instant::now() < deadline,
            "the old primary replays the new one's writes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hibernation_deletes_the_pods_keeps_the_data_and_resumes_on_it() {
    let cluster = cluster_or_skip!();
    assert!(install_operator(&cluster, "300s").status.success());
    namespace(&cluster);
    // No initdb.secret: the operator makes pg-app; with superuser access, pg-superuser.
    let spec = json!({"enableSuperuserAccess": true,
                      "bootstrap": {"initdb": {"database": "learnflow", "owner": "learnflow", "secret": null}}});
    apply(&cluster, manifest("pg", 2, "learnflow", spec)).expect_code(0);
    healthy(&cluster, "pg");
    let app = object(&cluster, "secret", "pg-app");
    assert_eq!(app["type"], "kubernetes.io/basic-auth");
    assert_eq!(app["metadata"]["labels"]["cnpg.io/userType"], "app");
    let password = decode(&app["data"]["password"]);
    assert_eq!(password.len(), 64);
    assert_eq!(decode(&app["data"]["host"]), "pg-rw");
    let superuser = decode(&object(&cluster, "secret", "pg-superuser")["data"]["password"]);
    let over_tcp = pod_shell(
        &cluster,
        "pg-1",
        &format!(
            "PGPASSWORD={superuser} psql -X -At -h 127.0.0.1 -U postgres -d learnflow -c 'select 1' && \
             PGPASSWORD={password} psql -X -At -h 127.0.0.1 -U learnflow -d learnflow -c 'select 2'"
        ),
    );
    assert_eq!(over_tcp.stdout, "1\n2\n", "{}", over_tcp.stderr);
    pod_sql(
        &cluster,
        "pg-1",
        "create table kept (id int); insert into kept values (7);",
    );

    cluster.clear_calls();
    cluster
        .kubectl([
            "annotate",
            &format!("{CRD}/pg"),
            "-n",
            NS,
            "cnpg.io/hibernation=on",
            "--overwrite",
        ])
        .succeeds();
    assert!(
        cluster
            .mutating_calls()
            .iter()
            .any(|call| call.verb() == "annotate")
    );
    let hibernated = |c: &Value| {
        c["status"]["conditions"].as_array().is_some_and(|all| {
            all.iter()
                .any(|cond| cond["type"] == "cnpg.io/hibernation" && cond["status"] == "True")
        })
    };
    // One pod goes per step, the primary first (the status of each poll shows who is left).
    let mut primary_went_first = false;
    let (pg, _) = wait_for(&cluster, "pg", "hibernation", |c| {
        primary_went_first |= c["status"]["instancesStatus"]["healthy"] == json!(["pg-2"]);
        hibernated(c)
    });
    assert!(primary_went_first, "the primary is deleted first");
    let condition = pg["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "cnpg.io/hibernation")
        .unwrap()
        .clone();
    assert_eq!(condition["reason"], "Hibernated");
    assert_eq!(condition["message"], "Cluster has been hibernated");
    assert_eq!(pg["status"]["readyInstances"], 0);
    assert_eq!(pg["status"]["phase"], "Cluster in healthy state");
    assert!(
        names(&cluster, "pods", "cnpg.io/cluster=pg")
            .iter()
            .all(|pod| pod.contains("-join") || pod.contains("-initdb"))
    );
    assert_eq!(
        names(&cluster, "pvc", "cnpg.io/cluster=pg"),
        ["pg-1", "pg-2"]
    );

    cluster
        .kubectl([
            "annotate",
            &format!("{CRD}/pg"),
            "-n",
            NS,
            "cnpg.io/hibernation-",
        ])
        .succeeds();
    let (pg, phases) = wait_for(&cluster, "pg", "resume", |c| {
        c["status"]["readyInstances"] == 2 && c["status"]["phase"] == "Cluster in healthy state"
    });
    assert!(
        phases
            .iter()
            .any(|phase| phase == "Waiting for the instances to become active"),
        "{phases:?}"
    );
    assert!(!hibernated(&pg));
    assert_eq!(pod_sql(&cluster, "pg-1", "select id from kept;"), "7");
    assert_eq!(
        pod_sql(
            &cluster,
            "pg-1",
            "select application_name, state from pg_stat_replication;"
        ),
        "pg-2|streaming"
    );

    // Deletion: what the Cluster owns goes (claims and their data too); the user's Secret stays.
    cluster
        .kubectl(["delete", "cluster/pg", "-n", NS])
        .succeeds();
    for kind in ["pods", "pvc", "services", "jobs", "secrets", "pdb"] {
        assert!(
            names(&cluster, kind, "cnpg.io/cluster=pg").is_empty(),
            "{kind} left"
        );
    }
    cluster
        .kubectl(["get", "secret", "pg-owner", "-n", NS, "-o", "json"])
        .succeeds();
    assert!(!cluster.path().join("state/volumes/learnflow/pg-1").exists());
}

fn decode(value: &Value) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().expect("a string"))
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

#[test]
fn a_wrong_username_in_the_owner_secret_is_logged_and_the_owner_gets_no_password() {
    let mut cluster = cluster_or_skip!();
    assert!(install_operator(&cluster, "300s").status.success());
    namespace(&cluster);
    // A claim that cannot bind holds the bootstrap job's pod back; the cluster waits.
    cluster.set_env("PGK8S_FAKE_FAULTS", "pvc-pending");
    apply(&cluster, manifest("pg", 1, "someone", json!({}))).expect_code(0);
    for _ in 0..5 {
        get_cluster(&cluster, "pg");
    }
    let job_pod = names(&cluster, "pods", "job-name=pg-1-initdb");
    assert_eq!(job_pod.len(), 1);
    let pending = object(&cluster, "pod", &job_pod[0]);
    assert_eq!(
        pending["status"]["conditions"][0]["reason"], "Unschedulable",
        "{pending}"
    );
    assert_eq!(
        get_cluster(&cluster, "pg")["status"]["phase"],
        "Setting up primary"
    );
    cluster.unset_env("PGK8S_FAKE_FAULTS");

    healthy(&cluster, "pg");
    let logs = cluster
        .kubectl(["logs", "pg-1", "-c", "postgres", "-n", NS])
        .succeeds()
        .stdout;
    assert!(
        logs.contains("wrong username 'someone' in secret, expected 'learnflow'"),
        "{logs}"
    );
    let script = "PGPASSWORD=Owner-Password-1 exec psql -X -At -h 127.0.0.1 -U learnflow -d learnflow -c 'select 1'";
    let refused = pod_shell(&cluster, "pg-1", script);
    assert!(
        refused
            .stderr
            .contains("password authentication failed for user \"learnflow\""),
        "{}",
        refused.stderr
    );
    // Fixed, the Secret's new version is applied.
    apply(&cluster, manifest("pg", 1, "learnflow", json!({}))).expect_code(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pod_shell(&cluster, "pg-1", script).status.success() {
        assert!(Instant::now() < deadline, "the owner's password is set");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_import_copies_a_bitnami_database_and_a_bad_password_is_unrecoverable() {
    let cluster = cluster_or_skip!();
    assert!(install_operator(&cluster, "300s").status.success());
    cluster.create_secret("Source-Superuser-1", "Source-App-1");
    cluster.helm_values(STANDALONE_VALUES, "60s").succeeds();
    cluster.sql(
        NS,
        "postgresql-0",
        "learnflow",
        "set role learnflow; create table items (id int primary key, name text); \
         insert into items values (1, 'a'), (2, 'b'); create view named as select name from items;",
    );
    let import = |key: &str| {
        json!({
            "bootstrap": {"initdb": {"import": {"type": "microservice", "databases": ["learnflow"],
                                                "source": {"externalCluster": "source"}}}},
            "externalClusters": [{"name": "source",
                "connectionParameters": {"host": "postgresql.learnflow.svc.cluster.local", "user": "postgres",
                                         "dbname": "learnflow", "sslmode": "disable"},
                "password": {"name": "postgresql-credentials", "key": key}}],
        })
    };
    apply(
        &cluster,
        manifest("moved", 1, "learnflow", import("postgres-password")),
    )
    .expect_code(0);
    apply(
        &cluster,
        manifest("bad", 1, "learnflow", import("password")),
    )
    .expect_code(0);
    get_cluster(&cluster, "moved");
    assert_eq!(
        object(&cluster, "job", "moved-1-import")["metadata"]["labels"]["cnpg.io/jobRole"],
        "import"
    );
    healthy(&cluster, "moved");
    assert_eq!(
        pod_sql(
            &cluster,
            "moved-1",
            "select string_agg(name, ',' order by id) from items;"
        ),
        "a,b"
    );
    assert_eq!(
        pod_sql(
            &cluster,
            "moved-1",
            "select tableowner from pg_tables where tablename = 'items' \
             union all select viewowner from pg_views where viewname = 'named';"
        ),
        "learnflow\nlearnflow"
    );
    assert_eq!(
        pod_sql(
            &cluster,
            "moved-1",
            "select rolsuper from pg_roles where rolname = 'learnflow';"
        ),
        "f"
    );

    let (bad, _) = wait_for(&cluster, "bad", "unrecoverable phase", |c| {
        c["status"]["phase"] == "Cluster is unrecoverable and needs manual intervention"
    });
    assert_eq!(
        bad["status"]["phaseReason"],
        "Instance creation failed for the following jobs: bad-1-import. \
         Check the job logs to investigate the cause of the failure."
    );
    let job = object(&cluster, "job", "bad-1-import");
    assert!(
        job["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Failed" && c["status"] == "True"),
        "{job}"
    );
    let attempts = names(&cluster, "pods", "job-name=bad-1-import");
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    let logs = cluster
        .kubectl(["logs", &attempts[0], "-n", NS])
        .succeeds()
        .stdout;
    assert!(
        logs.contains("password authentication failed for user \\\"postgres\\\""),
        "{logs}"
    );
    cluster
        .kubectl(["get", "pod", "bad-1", "-n", NS, "-o", "json"])
        .expect(1);
    // The source was only read.
    assert_eq!(
        cluster.sql(
            NS,
            "postgresql-0",
            "learnflow",
            "select count(*) from items;"
        ),
        "2"
    );
}

/// `Run::expect` with the harness's explanation, named for this file's readability.
trait ExpectCode {
    fn expect_code(self, code: i32) -> Finished;
}

impl ExpectCode for Finished {
    fn expect_code(self, code: i32) -> Finished {
        assert_eq!(
            self.code(),
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

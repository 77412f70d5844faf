//! The CloudNativePG engine on the simulated cluster, whose simulated operator runs every
//! instance as a real PostgreSQL server (replicas really stream) and really copies data on an
//! import: the operator's install, every command on a cluster of 1 and 3 instances, switchover,
//! undeploy keeping the data, and a move from a seeded Bitnami release.

mod common;

use common::{Cluster, Finished};

/// A password only these tests know: it must never show up in any argv, environment, output.
const CANARY: &str = "cnpg-canary-Zq7Rw2Kd9";

fn sql(cluster: &Cluster, pod: &str, query: &str) -> String {
    let output = cluster
        .kubectl([
            "exec",
            "-i",
            pod,
            "-c",
            "postgres",
            "-n",
            "learnflow",
            "--",
            "sh",
            "-c",
            "exec psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d learnflow -f -",
        ])
        .stdin(query)
        .run();
    assert!(output.status.success(), "{query}: {}", output.stderr);
    output.stdout.trim_end().to_string()
}

fn fingerprint(cluster: &Cluster, pod: &str) -> String {
    sql(
        cluster,
        pod,
        "select (select count(*) from users) || ' users, ' || (select count(*) from progress) \
         || ' progress, history ' || (select string_agg(version || ':' || checksum, ',' order by version) from pgk8s.schema_history)",
    )
}

/// The basic-auth Secret of cluster `name`, made by the test so the password is the canary.
fn create_basic_auth(cluster: &Cluster, name: &str) {
    let manifest = serde_json::json!({
        "apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "learnflow"}},
            {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
             "metadata": {"name": format!("{name}-credentials"), "namespace": "learnflow"},
             "stringData": {"username": "learnflow", "password": CANARY}}
        ]
    });
    cluster
        .kubectl(["apply", "-f", "-"])
        .stdin(manifest.to_string())
        .succeeds();
}

fn cnpg(cluster: &Cluster, args: &[&str]) -> Finished {
    let mut full = vec!["--engine", "cnpg", "--timeout", "120s"];
    full.extend_from_slice(args);
    cluster.pgk8s(full).succeeds()
}

#[test]
fn the_operator_is_needed_installed_once_and_reported() {
    let cluster = cluster_or_skip!();
    let missing = cluster
        .pgk8s(["deploy", "--engine", "cnpg", "--timeout", "60s"])
        .expect(3);
    assert!(
        missing.stderr.contains("pgk8s operator install"),
        "{}",
        missing.stderr
    );
    assert!(cluster.mutating_calls().is_empty(), "nothing was changed");
    cluster.pgk8s(["operator", "status"]).expect(5);
    let installed = cluster
        .pgk8s(["operator", "install", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(installed["action"], "installed");
    assert_eq!(installed["running"], true);
    let again = cluster
        .pgk8s(["operator", "install", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(again["action"], "unchanged");
    cluster.pgk8s(["operator", "status"]).succeeds();
}

#[test]
fn every_command_works_on_a_one_instance_cluster_and_undeploy_keeps_the_data() {
    let mut cluster = cluster_or_skip!();
    cluster.set_env("PGK8S_SIM_CANARY", CANARY);
    cluster.pgk8s(["operator", "install"]).succeeds();
    create_basic_auth(&cluster, "postgresql");
    let mut outputs = Vec::new();
    let deployed = cnpg(&cluster, &["deploy", "--seed", "-o", "json", "-vvv"]);
    let report = deployed.json();
    assert_eq!(report["engine"], "cnpg");
    assert_eq!(report["secret_action"], "reused");
    assert_eq!(report["ready_instances"], 1);
    assert_eq!(report["migrations"]["current_version"], 7);
    outputs.push(deployed);
    assert_eq!(
        fingerprint(&cluster, "postgresql-1").matches(':').count(),
        7,
        "seven migrations recorded"
    );
    // Objects belong to the application user, as on the chart.
    assert_eq!(
        sql(
            &cluster,
            "postgresql-1",
            "select tableowner from pg_tables where tablename = 'users'"
        ),
        "learnflow"
    );
    // Every other command finds the engine by itself.
    cluster.clear_calls();
    let migrate = cluster.pgk8s(["migrate", "-vvv"]).succeeds();
    assert_eq!(
        cluster.calls().len(),
        3,
        "a probe of the chart's pod name, the primary by label, one exec: {:?}",
        cluster.calls()
    );
    outputs.push(migrate);
    // Told the engine (PGK8S_ENGINE=cnpg), a migrate run is the lookup and one exec.
    cluster.clear_calls();
    cluster
        .pgk8s(["migrate", "--engine", "cnpg", "-m", "/nonexistent"])
        .expect(64);
    cluster.clear_calls();
    outputs.push(cluster.pgk8s(["migrate", "--engine", "cnpg"]).succeeds());
    assert_eq!(cluster.exec_calls(), 1, "a migrate run is one exec");
    assert_eq!(cluster.calls().len(), 2, "{:?}", cluster.calls());
    let verify = cluster
        .pgk8s(["verify", "--check-schema", "-o", "json"])
        .succeeds();
    assert_eq!(verify.json()["healthy"], true, "{}", verify.stdout);
    outputs.push(verify);
    let psql = cluster
        .pgk8s(["psql", "-c", "select count(*) from users", "--", "-At"])
        .succeeds();
    assert_eq!(psql.stdout.trim(), "5");
    outputs.push(psql);
    let dump = cluster.path().join("cnpg.dump");
    let dump = dump.to_str().unwrap();
    outputs.push(cluster.pgk8s(["backup", "-f", dump, "-vvv"]).succeeds());
    sql(&cluster, "postgresql-1", "delete from progress");
    outputs.push(cluster.pgk8s(["restore", "-f", dump, "--yes"]).succeeds());
    outputs.push(cluster.pgk8s(["logs", "--tail", "20"]).succeeds());
    let info = cluster.pgk8s(["info", "-o", "json"]).succeeds();
    assert_eq!(
        info.json()["host"],
        "postgresql-rw.learnflow.svc.cluster.local",
        "in-cluster clients reach the primary through the operator's rw Service: {}",
        info.stdout
    );
    outputs.push(info);
    let status = cluster.pgk8s(["status", "-o", "json"]).succeeds();
    assert!(
        status.json()["instances"]
            .as_str()
            .is_some_and(|line| line.contains("1/1 ready") && line.contains("primary postgresql-1")),
        "{}",
        status.stdout
    );
    outputs.push(status);
    let before = fingerprint(&cluster, "postgresql-1");
    // The password changes in the database and the Secret together.
    outputs.push(
        cluster
            .pgk8s(["rotate-password", "--yes", "-vvv"])
            .succeeds(),
    );
    let new_password = cluster.secret_value("password");
    assert_ne!(new_password, CANARY);
    let login = cluster
        .kubectl([
            "exec", "-i", "postgresql-1", "-c", "postgres", "-n", "learnflow", "--", "sh", "-c",
            "PGPASSWORD=\"$(cat)\" exec psql -X -At -h 127.0.0.1 -U learnflow -d learnflow -c 'select 1'",
        ])
        .stdin(new_password.clone())
        .run();
    assert!(login.status.success(), "{}", login.stderr);
    // port-forward reaches the primary through the rw Service, with the rotated password.
    cluster.clear_calls();
    let (mut forward, report) = cluster.start_forward(common::free_port(), &[]);
    let url = report["url"].as_str().unwrap();
    assert!(url.contains(&new_password), "--show-password: {url}");
    assert_eq!(common::local_psql(url).as_deref(), Some("learnflow"));
    forward.kill().unwrap();
    forward.wait().unwrap();
    assert!(
        cluster
            .calls()
            .iter()
            .any(|call| call.verb() == "port-forward"
                && call.argv.iter().any(|arg| arg == "svc/postgresql-rw")),
        "{:?}",
        cluster.calls()
    );
    cluster
        .pgk8s(["rotate-password", "--user", "postgres", "--yes"])
        .expect(64);
    // undeploy hibernates: the instances stop, the volume keeps the data; deploy resumes it.
    let undeploy = cluster.pgk8s(["undeploy", "-o", "json"]).succeeds();
    let steps = undeploy.json()["steps"].to_string();
    assert!(steps.contains("hibernate cluster"), "{steps}");
    outputs.push(undeploy);
    let pods = cluster
        .kubectl([
            "get",
            "pods",
            "-n",
            "learnflow",
            "-l",
            "cnpg.io/cluster=postgresql,cnpg.io/podRole=instance",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert_eq!(pods["items"].as_array().unwrap().len(), 0, "hibernated");
    cluster.pgk8s(["verify"]).expect(5);
    let status = cluster.pgk8s(["status", "-o", "json"]).run();
    assert!(status.stdout.contains("hibernated"), "{}", status.stdout);
    let switchover = cluster.pgk8s(["switchover", "--to", "1"]).expect(9);
    assert!(
        switchover.stderr.contains("is hibernated"),
        "{}",
        switchover.stderr
    );
    let resumed = cnpg(&cluster, &["deploy", "-o", "json"]).json();
    assert_eq!(resumed["cluster_action"], "resumed");
    assert_eq!(fingerprint(&cluster, "postgresql-1"), before);
    // --delete-pvc deletes the cluster and its volumes.
    cluster
        .pgk8s(["undeploy", "--delete-pvc", "--yes"])
        .succeeds();
    let claims = cluster
        .kubectl(["get", "pvc", "-n", "learnflow", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(claims["items"].as_array().unwrap().len(), 0);
    let outputs: Vec<&Finished> = outputs.iter().collect();
    cluster.assert_secret_absent(CANARY, &outputs);
}

#[test]
fn three_instances_stream_and_a_switchover_keeps_the_data() {
    let cluster = cluster_or_skip!();
    cluster.pgk8s(["operator", "install"]).succeeds();
    cnpg(&cluster, &["deploy", "--instances", "3", "--seed"]);
    let verify = cluster.pgk8s(["verify", "-o", "json"]).succeeds().json();
    let ha = &verify["high_availability"];
    assert_eq!(ha["ready_instances"], 3, "{verify:#}");
    assert_eq!(ha["current_primary"], "postgresql-1");
    assert_eq!(ha["failover_ready"], true);
    assert_eq!(ha["replicas"].as_array().unwrap().len(), 2, "{ha:#}");
    let before = fingerprint(&cluster, "postgresql-1");
    let switched = cluster
        .pgk8s(["switchover", "--to", "2", "--timeout", "120s", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(switched["to"], "postgresql-2");
    assert_eq!(switched["current_version"], 7);
    assert_eq!(fingerprint(&cluster, "postgresql-2"), before);
    // New writes go to the new primary through the same commands.
    cluster
        .pgk8s([
            "psql",
            "-c",
            "create temporary table written(x int); insert into written values (1)",
        ])
        .succeeds();
    let verify = cluster.pgk8s(["verify", "-o", "json"]).succeeds().json();
    assert_eq!(
        verify["high_availability"]["current_primary"],
        "postgresql-2"
    );
    cluster
        .pgk8s(["switchover", "--to", "postgresql-9"])
        .expect(64);
    // The operator's volumes and services are found by its own label.
    assert_eq!(verify["pvc_bound"], true, "{verify:#}");
    assert_eq!(verify["service_present"], true, "{verify:#}");
    // A redeploy that does not name --instances keeps the three.
    let again = cnpg(&cluster, &["deploy", "-o", "json"]).json();
    assert_eq!(again["instances"], 3);
    assert_eq!(again["cluster_action"], "unchanged");
}

#[test]
fn the_two_engines_never_share_a_name() {
    let cluster = cluster_or_skip!();
    cluster.pgk8s(["operator", "install"]).succeeds();
    cluster.deploy(&["--seed"]);
    cluster.deploy(&["-r", "app-postgresql", "--skip-migrations"]);
    let credentials = || cluster.object("secret/app-postgresql-credentials");
    let test_secret = credentials();
    cluster.clear_calls();
    // A cluster beside a chart release of its name, or beside the chart pod other commands
    // would try first for it (`app` → `app-postgresql-0`): refused before any change.
    for (name, expected) in [
        (
            "postgresql",
            "release postgresql of the Bitnami chart exists",
        ),
        ("app", "pod app-postgresql-0 of app-postgresql"),
    ] {
        let refused = cluster
            .pgk8s(["deploy", "--engine", "cnpg", "-r", name, "--timeout", "60s"])
            .expect(9);
        assert!(
            refused.stderr.contains(expected),
            "{name}: {}",
            refused.stderr
        );
    }
    // move never makes its cluster where a chart release, or its credentials, are.
    let refused = cluster
        .pgk8s([
            "move",
            "--to",
            "cnpg",
            "--target",
            "app-postgresql",
            "--timeout",
            "60s",
        ])
        .expect(9);
    assert!(
        refused
            .stderr
            .contains("release app-postgresql of the Bitnami chart exists"),
        "{}",
        refused.stderr
    );
    assert!(
        cluster.mutating_calls().is_empty(),
        "nothing changed: {:?}",
        cluster.mutating_calls()
    );
    let unchanged = credentials();
    assert_eq!(unchanged["data"], test_secret["data"]);
    // After an undeploy that kept the chart's volume, a cluster of that name would start empty.
    cluster.pgk8s(["undeploy", "-r", "postgresql"]).succeeds();
    let refused = cluster
        .pgk8s(["deploy", "--engine", "cnpg", "--timeout", "60s"])
        .expect(9);
    assert!(
        refused
            .stderr
            .contains("volume data-postgresql-0 keeps the data"),
        "{}",
        refused.stderr
    );
    // And a chart release never starts beside a cluster of its name.
    cnpg(&cluster, &["deploy", "-r", "db", "--skip-migrations"]);
    let refused = cluster.pgk8s(["deploy", "-r", "db"]).expect(9);
    assert!(
        refused.stderr.contains("--engine cnpg"),
        "{}",
        refused.stderr
    );
}

#[test]
fn move_copies_every_row_and_the_history_and_leaves_the_source_serving() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--seed"]);
    let source = cluster.sql("learnflow", "postgresql-0", "learnflow",
        "select (select count(*) from users) || ' users, ' || (select count(*) from progress) \
         || ' progress, history ' || (select string_agg(version || ':' || checksum, ',' order by version) from pgk8s.schema_history)");
    cluster.clear_calls();
    let dry = cluster
        .pgk8s(["move", "--to", "cnpg", "--dry-run", "-o", "json"])
        .succeeds()
        .json();
    assert!(
        cluster.mutating_calls().is_empty(),
        "a dry run changes nothing"
    );
    assert_eq!(dry["target"], "postgresql-cnpg");
    let moved = cluster
        .pgk8s([
            "move",
            "--to",
            "cnpg",
            "--install-operator",
            "--timeout",
            "180s",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert_eq!(moved["source_healthy"], true, "{moved:#}");
    assert_eq!(moved["target_healthy"], true, "{moved:#}");
    assert_eq!(fingerprint(&cluster, "postgresql-cnpg-1"), source);
    // The application user keeps its password and owns what was imported.
    assert_eq!(
        sql(
            &cluster,
            "postgresql-cnpg-1",
            "select tableowner from pg_tables where tablename = 'users'"
        ),
        "learnflow"
    );
    cluster.pgk8s(["verify"]).succeeds();
    cluster
        .pgk8s(["verify", "-r", "postgresql-cnpg", "--check-schema"])
        .succeeds();
    cluster
        .pgk8s(["migrate", "status", "-r", "postgresql-cnpg"])
        .succeeds();
    // A second move to the same name is refused, not merged.
    cluster
        .pgk8s(["move", "--to", "cnpg", "--timeout", "60s"])
        .expect(9);
}

#[test]
fn dry_runs_change_nothing_and_failures_say_why_with_the_source_untouched() {
    let mut cluster = cluster_or_skip!();
    cluster.pgk8s(["operator", "install"]).succeeds();
    cluster.clear_calls();
    let dry = cluster
        .pgk8s([
            "deploy",
            "--engine",
            "cnpg",
            "--instances",
            "3",
            "--dry-run",
            "-o",
            "json",
        ])
        .succeeds();
    assert!(
        cluster.mutating_calls().is_empty(),
        "a dry run changes nothing"
    );
    let manifest = &dry.json()["manifest"];
    assert_eq!(manifest["spec"]["instances"], 3);
    assert_eq!(
        manifest["spec"]["bootstrap"]["initdb"]["secret"]["name"],
        "postgresql-credentials"
    );
    // An image that cannot be pulled: the wait says so, with the image hint.
    cluster.set_env("PGK8S_FAKE_FAULTS", "image-pull-backoff");
    let pull = cluster
        .pgk8s(["deploy", "--engine", "cnpg", "--timeout", "8s"])
        .expect(4);
    assert!(
        pull.stderr.contains("not ready within") && pull.stderr.contains("image"),
        "{}",
        pull.stderr
    );
    cluster.unset_env("PGK8S_FAKE_FAULTS");
    cluster
        .pgk8s(["undeploy", "--delete-pvc", "--yes"])
        .succeeds();
    // A move whose import cannot reach the source (its service is gone; pgk8s itself reads the
    // source through the pod): the operator gives up, pgk8s says why, and the source keeps its
    // data and serves.
    cluster.set_env("PGK8S_SIM_CANARY", CANARY);
    cluster.create_secret(CANARY, "app-password-1");
    cluster.deploy(&["--seed"]);
    cluster
        .kubectl(["delete", "service/postgresql", "-n", "learnflow"])
        .succeeds();
    let failed = cluster
        .pgk8s(["move", "--to", "cnpg", "--timeout", "120s", "-vvv"])
        .run();
    assert_ne!(failed.code(), Some(0), "{}", failed.stderr);
    assert!(
        failed.stderr.contains("gave up") && failed.stderr.contains("keeps serving"),
        "{}",
        failed.stderr
    );
    let still = cluster
        .pgk8s(["psql", "-c", "select count(*) from users", "--", "-At"])
        .succeeds();
    assert_eq!(still.stdout.trim(), "5");
    cluster.assert_secret_absent(CANARY, &[&failed]);
}

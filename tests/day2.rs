//! Day-2 commands on the simulated cluster: psql, port-forward, status, logs, rotate-password.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Cluster;

const POD: &str = "postgresql-0";

/// Logs in as `user` with `password` through the fake `kubectl exec` (the test may hold
/// passwords; pgk8s may not); returns whether the database accepted it.
fn login_works(cluster: &Cluster, user: &str, password: &str) -> bool {
    cluster
        .pod_shell(
            POD,
            &format!("PGPASSWORD=\"$(cat)\" exec psql -X -At -U {user} -d learnflow -c 'select 1'"),
        )
        .stdin(password)
        .run()
        .status
        .success()
}

#[test]
fn psql_takes_piped_sql_and_dash_c_and_returns_psqls_status() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--seed"]);
    let piped = cluster
        .pgk8s(["psql", "--", "-At"])
        .stdin("select count(*) from users;\n")
        .succeeds();
    assert_eq!(piped.stdout.trim(), "5");
    let command = cluster
        .pgk8s(["psql", "-c", "select current_user", "--", "-At"])
        .succeeds();
    assert_eq!(command.stdout.trim(), "learnflow");
    let superuser = cluster
        .pgk8s([
            "psql",
            "-U",
            "postgres",
            "-c",
            "select current_user",
            "--",
            "-At",
        ])
        .succeeds();
    assert_eq!(superuser.stdout.trim(), "postgres");
    let failed = cluster
        .pgk8s(["psql", "-c", "select nope", "--", "-v", "ON_ERROR_STOP=1"])
        .run();
    assert_eq!(
        failed.code(),
        Some(1),
        "psql's own exit status: {}",
        failed.stderr
    );
    let exec = cluster
        .calls()
        .into_iter()
        .rfind(|call| call.verb() == "exec")
        .unwrap();
    assert!(
        exec.argv
            .iter()
            .any(|arg| arg.contains("$(cat /opt/bitnami/postgresql/secrets/password)"))
    );
}

#[test]
fn status_is_one_screen_from_three_calls() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[]);
    cluster.clear_calls();
    let status = cluster.pgk8s(["status", "-o", "json"]).succeeds().json();
    assert_eq!(status["release"]["status"], "deployed");
    assert_eq!(status["release"]["chart"], "postgresql-17.1.0");
    assert_eq!(status["pods"][0]["name"], POD);
    assert_eq!(status["pods"][0]["ready"], true);
    assert_eq!(status["volumes"][0]["phase"], "Bound");
    assert_eq!(status["volumes"][0]["size"], "8Gi");
    // The major the pod's server runs: the image's 17 where scripts/get-postgres.sh installed it.
    let major = cluster.pod_major("learnflow", POD).to_string();
    assert!(
        status["server_version"]
            .as_str()
            .unwrap()
            .starts_with(&major)
    );
    assert!(status["database_size_bytes"].as_u64().unwrap() > 1_000_000);
    assert!(status["connections"].as_u64().unwrap() >= 1);
    assert_eq!(status["migration_version"], 7);
    assert_eq!(cluster.calls().len(), 3, "{:?}", cluster.calls());
    let text = cluster.pgk8s(["status"]).succeeds();
    assert!(
        text.stdout.contains("migrations:  version 7"),
        "{}",
        text.stdout
    );
}

#[test]
fn logs_are_streamed_with_passwords_redacted() {
    let mut cluster = cluster_or_skip!();
    let canary = "LogCanaryPassw0rd4242";
    cluster.set_env("PGK8S_SIM_CANARY", canary);
    cluster.create_secret(canary, "App-Pass-42");
    cluster.deploy(&["--skip-migrations"]);
    // A careless statement puts the password in the server log.
    cluster
        .pod_shell(POD, "PGPASSWORD=\"$(cat /opt/bitnami/postgresql/secrets/postgres-password)\" exec psql -X -U postgres -d learnflow -f -")
        .stdin(format!("select 'leak {canary}' + 1;"))
        .succeeds();
    cluster.clear_calls();
    let logs = cluster.pgk8s(["logs", "--tail", "20"]).succeeds();
    assert!(logs.stdout.contains("leak <redacted>"), "{}", logs.stdout);
    cluster.assert_secret_absent(canary, &[&logs]);
    let previous = cluster.pgk8s(["logs", "--previous"]).succeeds();
    assert!(!previous.stdout.is_empty());
}

#[test]
fn rotate_password_changes_database_and_secret_together() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    let old = cluster.secret_value("password");
    assert!(login_works(&cluster, "learnflow", &old));
    cluster.clear_calls();
    cluster.pgk8s(["rotate-password"]).expect(9);
    let dry = cluster
        .pgk8s(["rotate-password", "--dry-run", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(dry["rotated"], false);
    assert!(cluster.mutating_calls().is_empty());
    let rotated = cluster
        .pgk8s(["rotate-password", "--yes", "-o", "json", "-vv"])
        .succeeds();
    assert_eq!(rotated.json()["rotated"], true);
    let new = cluster.secret_value("password");
    assert_ne!(new, old);
    assert_eq!(new.len(), 32);
    assert!(
        !login_works(&cluster, "learnflow", &old),
        "the old password is rejected"
    );
    assert!(
        login_works(&cluster, "learnflow", &new),
        "the new password is accepted"
    );
    cluster.assert_secret_absent(&new, &[&rotated]);
    cluster.assert_secret_absent(&old, &[&rotated]);
    let superuser_old = cluster.secret_value("postgres-password");
    cluster
        .pgk8s(["rotate-password", "--user", "postgres", "--yes"])
        .succeeds();
    let superuser_new = cluster.secret_value("postgres-password");
    assert!(
        login_works(&cluster, "postgres", &superuser_new)
            && !login_works(&cluster, "postgres", &superuser_old)
    );
    cluster.pgk8s(["verify"]).succeeds();
}

/// Whether the database and the Secret agree on the app password, and no staging key is left.
fn consistent(cluster: &Cluster) -> bool {
    let secret = cluster
        .kubectl([
            "get",
            "secret/postgresql-credentials",
            "-n",
            "learnflow",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    let staged = secret["data"]
        .as_object()
        .is_some_and(|data| data.keys().any(|key| key.starts_with("pending-")));
    !staged && login_works(cluster, "learnflow", &cluster.secret_value("password"))
}

#[test]
fn a_secret_write_that_fails_at_any_step_leaves_database_and_secret_in_step() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    let old = cluster.secret_value("password");
    // The staging write fails: nothing has changed yet.
    let staging = cluster
        .pgk8s(["rotate-password", "--yes"])
        .env("PGK8S_FAKE_FAULTS", "apply-fails")
        .expect(1);
    assert!(
        staging.stderr.contains("staging the new password"),
        "{}",
        staging.stderr
    );
    assert_eq!(cluster.secret_value("password"), old);
    assert!(consistent(&cluster));
    // The final write fails after the role changed: the database is changed back.
    let commit = cluster
        .pgk8s(["rotate-password", "--yes"])
        .env("PGK8S_FAKE_WRITES_OK", "1")
        .expect(1);
    assert!(
        commit
            .stderr
            .contains("was changed back, so nothing changed"),
        "{}",
        commit.stderr
    );
    assert_eq!(cluster.secret_value("password"), old);
    assert!(
        login_works(&cluster, "learnflow", &old),
        "the old password still works"
    );
    // The staging key could not be removed either (every write fails): the next run repairs.
    let repaired = cluster.pgk8s(["rotate-password", "--yes"]).succeeds();
    assert!(
        repaired
            .stdout
            .contains("the database kept the old password"),
        "{}",
        repaired.stdout
    );
    assert!(consistent(&cluster));
    assert_ne!(cluster.secret_value("password"), old);
    // The final write reports a failure but took effect: re-read, and it is a success.
    let before = cluster.secret_value("password");
    cluster
        .pgk8s(["rotate-password", "--yes"])
        .env("PGK8S_FAKE_WRITES_OK", "1")
        .env("PGK8S_FAKE_FAULTS", "write-fails-after-effect")
        .succeeds();
    assert_ne!(cluster.secret_value("password"), before);
    assert!(consistent(&cluster));
}

#[test]
fn port_forward_prints_a_url_that_connects_and_reconnects_after_drops() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    let port = common::free_port();
    let (mut child, report) =
        cluster.start_forward(port, &[("PGK8S_FAKE_PORT_FORWARD_EXIT_AFTER_MS", "1500")]);
    assert_eq!(report["port"], port);
    assert!(
        report["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line == &serde_json::json!(format!("PGPORT={port}")))
    );
    let url = report["url"].as_str().unwrap().to_string();
    assert_eq!(common::local_psql(&url).as_deref(), Some("learnflow"));
    // The fake forward dies after 1.5 s; pgk8s starts a new one.
    std::thread::sleep(Duration::from_millis(2500));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reconnected = common::local_psql(&url);
    while reconnected.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        reconnected = common::local_psql(&url);
    }
    assert_eq!(
        reconnected.as_deref(),
        Some("learnflow"),
        "the forward came back"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let forwards = cluster
        .calls()
        .iter()
        .filter(|call| call.verb() == "port-forward")
        .count();
    assert!(forwards >= 2, "{forwards} port-forward calls");
}

#[test]
fn logs_redact_the_secret_the_release_actually_mounts() {
    let mut cluster = cluster_or_skip!();
    let canary = "TeamSecretCanary7731";
    cluster.set_env("PGK8S_SIM_CANARY", canary);
    cluster
        .kubectl(["apply", "-f", "-"])
        .stdin(common::secret_manifest(
            "team-db",
            "learnflow",
            canary,
            "Team-App-Pass-42",
        ))
        .succeeds();
    cluster.deploy(&["--skip-migrations", "--password-from-secret", "team-db"]);
    cluster
        .pod_shell(POD, "PGPASSWORD=\"$(cat /opt/bitnami/postgresql/secrets/postgres-password)\" exec psql -X -U postgres -d learnflow -f -")
        .stdin(format!("select 'leak {canary}' + 1;"))
        .succeeds();
    cluster.clear_calls();
    let logs = cluster.pgk8s(["logs", "--tail", "20"]).succeeds();
    assert!(logs.stdout.contains("leak <redacted>"), "{}", logs.stdout);
    cluster.assert_secret_absent(canary, &[&logs]);
}

#[test]
fn the_superuser_as_user_reads_its_own_key_and_as_admin_runs_as_postgres() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    let app = cluster.secret_value("password");
    let superuser = cluster.secret_value("postgres-password");
    let who = cluster
        .pgk8s([
            "-u",
            "postgres",
            "psql",
            "-c",
            "select current_user",
            "--",
            "-At",
        ])
        .succeeds();
    assert_eq!(who.stdout.trim(), "postgres");
    let admin = cluster
        .pgk8s([
            "psql",
            "--as-admin",
            "-c",
            "select current_user",
            "--",
            "-At",
        ])
        .succeeds();
    assert_eq!(admin.stdout.trim(), "postgres");
    cluster.pgk8s(["migrate", "--as-admin"]).succeeds();
    assert_eq!(
        cluster.sql(
            "learnflow",
            POD,
            "learnflow",
            "select tableowner from pg_tables where tablename = 'users'"
        ),
        "postgres"
    );
    cluster
        .pgk8s(["-u", "postgres", "rotate-password", "--yes"])
        .succeeds();
    let rotated = cluster.secret_value("postgres-password");
    assert_ne!(
        rotated, superuser,
        "the superuser's key took the new password"
    );
    assert_eq!(
        cluster.secret_value("password"),
        app,
        "the app key is untouched"
    );
    assert!(login_works(&cluster, "postgres", &rotated));
    assert!(login_works(&cluster, "learnflow", &app));
}

#[test]
fn a_wrong_password_fails_at_once_naming_the_secret_key() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    let superuser = cluster.secret_value("postgres-password");
    cluster.create_secret(&superuser, "not-the-password-anymore");
    cluster.clear_calls();
    let started = std::time::Instant::now();
    let failed = cluster.pgk8s(["migrate", "--wait", "60s"]).expect(8);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "no retry loop"
    );
    assert_eq!(cluster.exec_calls(), 1, "one attempt: {}", failed.stderr);
    assert!(
        failed.stderr.contains("password authentication failed")
            && failed.stderr.contains("key `password`"),
        "{}",
        failed.stderr
    );
}

/// Whether the Secret and the database agree on both passwords, with no staging key left.
fn both_passwords_consistent(cluster: &Cluster) -> bool {
    consistent(cluster)
        && login_works(
            cluster,
            "postgres",
            &cluster.secret_value("postgres-password"),
        )
}

#[test]
fn kill_9_anywhere_in_a_rotation_is_repaired_by_the_next_run() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    // Each call takes 150 ms, so the kill lands at a different step each time.
    for (round, delay_ms) in [150u64, 400, 650, 900, 1200, 1500].into_iter().enumerate() {
        let user = if round % 2 == 0 { "app" } else { "postgres" };
        let mut child = cluster
            .background(&["rotate-password", "--user", user, "--yes"])
            .env("PGK8S_FAKE_LATENCY_MS", "150")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Fake tools the killed run started finish on their own; let them.
        std::thread::sleep(std::time::Duration::from_millis(400));
        let next = cluster
            .pgk8s(["rotate-password", "--user", user, "--yes", "-o", "json"])
            .succeeds();
        assert_eq!(next.json()["rotated"], true, "round {round}");
        assert!(
            both_passwords_consistent(&cluster),
            "round {round} (kill after {delay_ms} ms): {}",
            next.stdout
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(std::env::current_dir().unwrap())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().contains("password.txt"))
        .collect();
    assert!(leftovers.is_empty(), "no password file left behind");
}

#[test]
fn sigterm_in_the_middle_of_a_rotation_lets_it_finish_then_stops() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    let old = cluster.secret_value("password");
    let child = cluster
        .background(&["rotate-password", "--yes"])
        .env("PGK8S_FAKE_LATENCY_MS", "700")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the staging write has happened: the critical section is under way.
    let started = std::time::Instant::now();
    loop {
        let staged = cluster.call_log().contains("\"replace\"");
        if staged {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(900));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert!(
        consistent(&cluster),
        "the rotation was not cut in half: {stderr}"
    );
    assert_ne!(
        cluster.secret_value("password"),
        old,
        "it finished: {stderr}"
    );
}

#[test]
fn verify_reports_an_interrupted_rotation_and_rotate_password_repairs_it() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    let mut secret = cluster
        .kubectl([
            "get",
            "secret/postgresql-credentials",
            "-n",
            "learnflow",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    // What a run killed right after staging leaves: the new password beside the old.
    secret["data"]["pending-password"] = serde_json::json!("U3RhZ2VkLVBhc3N3b3JkLTEyMw==");
    cluster
        .kubectl(["apply", "-f", "-"])
        .stdin(secret.to_string())
        .succeeds();
    let unhealthy = cluster.pgk8s(["verify", "-o", "json"]).expect(5).json();
    let codes: Vec<&str> = unhealthy["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|issue| issue["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["rotation_interrupted"]);
    let repaired = cluster.pgk8s(["rotate-password", "--yes"]).succeeds();
    assert!(
        repaired
            .stdout
            .contains("the database kept the old password"),
        "{}",
        repaired.stdout
    );
    assert!(consistent(&cluster));
    cluster.pgk8s(["verify"]).succeeds();
}

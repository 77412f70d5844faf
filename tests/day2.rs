//! Day-2 commands on the simulated cluster: psql, port-forward, status, logs, rotate-password.

mod common;

use std::io::{BufRead, BufReader, Read};
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
    assert!(status["server_version"].as_str().unwrap().starts_with("15"));
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
        .kubectl(["get", "secret/postgresql-credentials", "-n", "learnflow", "-o", "json"])
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
    assert!(staging.stderr.contains("staging the new password"), "{}", staging.stderr);
    assert_eq!(cluster.secret_value("password"), old);
    assert!(consistent(&cluster));
    // The final write fails after the role changed: the database is changed back.
    let commit = cluster
        .pgk8s(["rotate-password", "--yes"])
        .env("PGK8S_FAKE_WRITES_OK", "1")
        .expect(1);
    assert!(
        commit.stderr.contains("was changed back, so nothing changed"),
        "{}",
        commit.stderr
    );
    assert_eq!(cluster.secret_value("password"), old);
    assert!(login_works(&cluster, "learnflow", &old), "the old password still works");
    // The staging key could not be removed either (every write fails): the next run repairs.
    let repaired = cluster.pgk8s(["rotate-password", "--yes"]).succeeds();
    assert!(
        repaired.stdout.contains("the database kept the old password"),
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

/// Starts `pgk8s port-forward` in the background; returns it with the JSON document it printed.
fn start_forward(
    cluster: &Cluster,
    port: u16,
    extra_env: &[(&str, &str)],
) -> (std::process::Child, serde_json::Value) {
    let port = port.to_string();
    let mut command = cluster.background(&[
        "port-forward",
        "--port",
        &port,
        "--show-password",
        "-o",
        "json",
    ]);
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut document = String::new();
    while !document.ends_with("}\n") {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "port-forward ended early: {document}"
        );
        document.push_str(&line);
    }
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
    });
    (child, serde_json::from_str(&document).unwrap())
}

fn local_psql(url: &str) -> Option<String> {
    let output = Command::new("psql")
        .args(["-X", "-At", url, "-c", "select current_user"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn port_forward_prints_a_url_that_connects_and_reconnects_after_drops() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    let port = free_port();
    let (mut child, report) = start_forward(
        &cluster,
        port,
        &[("PGK8S_FAKE_PORT_FORWARD_EXIT_AFTER_MS", "1500")],
    );
    assert_eq!(report["port"], port);
    assert!(
        report["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line == &serde_json::json!(format!("PGPORT={port}")))
    );
    let url = report["url"].as_str().unwrap().to_string();
    assert_eq!(local_psql(&url).as_deref(), Some("learnflow"));
    // The fake forward dies after 1.5 s; pgk8s starts a new one.
    std::thread::sleep(Duration::from_millis(2500));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reconnected = local_psql(&url);
    while reconnected.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        reconnected = local_psql(&url);
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

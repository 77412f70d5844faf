//! `deploy`, `undeploy` and `info` against the simulated cluster (real PostgreSQL behind it).

mod common;

use common::Cluster;

const TABLES: &str = "select string_agg(table_name, ',' order by table_name) from information_schema.tables where table_schema = 'public';";

fn helm_upgrade_call(cluster: &Cluster) -> Vec<String> {
    cluster
        .calls()
        .into_iter()
        .find(|call| call.tool == "helm" && call.verb() == "upgrade")
        .map(|call| call.argv)
        .expect("helm upgrade was called")
}

#[test]
fn deploy_installs_creates_the_secret_and_migrates_with_helm_4() {
    let cluster = cluster_or_skip!();
    let deployed = cluster
        .pgk8s(["deploy", "-o", "json", "--timeout", "60s"])
        .succeeds();
    let report = deployed.json();
    assert_eq!(report["release"], "postgresql");
    assert_eq!(report["host"], "postgresql.learnflow.svc.cluster.local");
    assert_eq!(report["secret"], "postgresql-credentials");
    assert_eq!(report["secret_action"], "created");
    assert_eq!(report["release_action"], "installed");
    assert_eq!(report["helm"], "v4");
    assert_eq!(report["migrations"]["current_version"], 7);
    assert!(
        report["password_command"]
            .as_str()
            .unwrap()
            .contains("kubectl get secret postgresql-credentials")
    );
    let upgrade = helm_upgrade_call(&cluster);
    for flag in [
        "--install",
        "--wait",
        "--rollback-on-failure",
        "--values=-",
        "--version=17.1.0",
    ] {
        assert!(
            upgrade.contains(&flag.to_string()),
            "{flag} missing from {upgrade:?}"
        );
    }
    assert!(!upgrade.contains(&"--atomic".to_string()));
    assert!(!upgrade.iter().any(|arg| arg == "--set"));
    assert_eq!(
        cluster.sql("learnflow", "postgresql-0", "learnflow", TABLES),
        "curriculum,exercises,progress,struggle_alerts,submissions,users"
    );
    // psql authenticates with the generated password, which never left the Secret: read it
    // back and look everywhere.
    assert_eq!(
        cluster.sql("learnflow", "postgresql-0", "learnflow", "select 1;"),
        "1"
    );
    for key in ["password", "postgres-password"] {
        use base64::Engine;
        let value = cluster.secret_value(key);
        assert_eq!(value.len(), 32);
        assert!(value.chars().all(|c| c.is_ascii_alphanumeric()));
        cluster.assert_secret_absent(&value, &[&deployed]);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&value);
        cluster.assert_secret_absent(&encoded, &[&deployed]);
    }
}

#[test]
fn deploy_uses_atomic_with_helm_3() {
    let mut cluster = cluster_or_skip!();
    cluster.set_env("PGK8S_FAKE_HELM_VERSION", "3");
    let report = cluster
        .pgk8s([
            "deploy",
            "-o",
            "json",
            "--skip-migrations",
            "--timeout",
            "60s",
        ])
        .succeeds()
        .json();
    assert_eq!(report["helm"], "v3");
    assert_eq!(
        report["migrations"]["migrations"],
        "skipped (--skip-migrations)"
    );
    let upgrade = helm_upgrade_call(&cluster);
    assert!(upgrade.contains(&"--atomic".to_string()), "{upgrade:?}");
    assert!(!upgrade.contains(&"--rollback-on-failure".to_string()));
    assert_eq!(
        cluster.sql("learnflow", "postgresql-0", "learnflow", TABLES),
        ""
    );
}

#[test]
fn a_second_identical_deploy_changes_nothing() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[]);
    cluster.clear_calls();
    let again = cluster
        .pgk8s(["deploy", "-o", "json", "--timeout", "60s"])
        .succeeds()
        .json();
    assert_eq!(again["release_action"], "unchanged");
    assert_eq!(again["secret_action"], "reused");
    assert_eq!(again["migrations"]["migrations"], "up to date");
    assert!(
        cluster
            .mutating_calls()
            .iter()
            .all(|call| call.verb() == "exec"),
        "{:?}",
        cluster.mutating_calls()
    );
    let status = cluster
        .kubectl(["get", "pods", "-n", "learnflow", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(status["items"].as_array().unwrap().len(), 1);
}

#[test]
fn changed_flags_upgrade_in_place_keeping_data_and_password() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[]);
    cluster.sql(
        "learnflow",
        "postgresql-0",
        "learnflow",
        "insert into users (username, email) values ('kept', 'kept@example.com');",
    );
    let upgraded = cluster
        .pgk8s([
            "deploy",
            "-o",
            "json",
            "--memory-limit",
            "2Gi",
            "--timeout",
            "60s",
        ])
        .succeeds()
        .json();
    assert_eq!(upgraded["release_action"], "upgraded");
    assert_eq!(upgraded["secret_action"], "reused");
    assert_eq!(upgraded["revision"], 2);
    assert_eq!(
        upgraded["values"]["primary"]["resources"]["limits"]["memory"],
        "2Gi"
    );
    assert_eq!(
        cluster.sql(
            "learnflow",
            "postgresql-0",
            "learnflow",
            "select username from users;"
        ),
        "kept"
    );
}

#[test]
fn an_existing_secret_is_reused_and_its_password_never_shown() {
    let mut cluster = cluster_or_skip!();
    let canary = "CanaryPassw0rdReuse7731";
    cluster.set_env("PGK8S_SIM_CANARY", canary);
    cluster.create_secret(canary, canary);
    let deployed = cluster
        .pgk8s(["deploy", "-o", "json", "-v", "--timeout", "60s"])
        .succeeds();
    assert_eq!(deployed.json()["secret_action"], "reused");
    // The database was initialised with the Secret's password: psql authenticates with it.
    assert_eq!(
        cluster.sql(
            "learnflow",
            "postgresql-0",
            "learnflow",
            "select current_user;"
        ),
        "postgres"
    );
    let info = cluster.pgk8s(["info", "-o", "json", "-vv"]).succeeds();
    cluster.assert_secret_absent(canary, &[&deployed, &info]);
    let shown = cluster
        .pgk8s(["info", "--show-password", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(
        shown["url"],
        format!(
            "postgresql://learnflow:{canary}@postgresql.learnflow.svc.cluster.local:5432/learnflow"
        )
    );
}

#[test]
fn a_leftover_volume_without_its_secret_is_refused() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[]);
    cluster.pgk8s(["undeploy"]).succeeds();
    cluster
        .kubectl(["delete", "secret/postgresql-credentials", "-n", "learnflow"])
        .succeeds();
    cluster.clear_calls();
    let refused = cluster.pgk8s(["deploy", "--timeout", "60s"]).expect(9);
    assert!(
        refused.stderr.contains(
            "data volume data-postgresql-0 exists but Secret postgresql-credentials is gone"
        ),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--recreate-data --yes"),
        "{}",
        refused.stderr
    );
    assert!(
        cluster.mutating_calls().is_empty(),
        "{:?}",
        cluster.mutating_calls()
    );
    let without_yes = cluster
        .pgk8s(["deploy", "--recreate-data", "--timeout", "60s"])
        .expect(9);
    assert!(
        without_yes.stderr.contains("--yes"),
        "{}",
        without_yes.stderr
    );
    let recreated = cluster
        .pgk8s([
            "deploy",
            "--recreate-data",
            "--yes",
            "-o",
            "json",
            "--timeout",
            "60s",
        ])
        .succeeds()
        .json();
    assert_eq!(recreated["secret_action"], "created");
    assert_eq!(recreated["migrations"]["current_version"], 7);
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let mut cluster = cluster_or_skip!();
    cluster.set_env("PGK8S_FAKE_FAULTS", "api-down");
    let plan = cluster
        .pgk8s([
            "deploy",
            "--dry-run",
            "--storage-size",
            "20Gi",
            "--storage-class",
            "fast",
        ])
        .succeeds();
    assert!(
        plan.stdout.contains("Dry run: nothing was changed"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("helm upgrade --install --version=17.1.0")
            && plan
                .stdout
                .contains("-- postgresql oci://registry-1.docker.io/bitnamicharts/postgresql"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("existingSecret: postgresql-credentials"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("size: 20Gi") && plan.stdout.contains("storageClass: fast"));
    let calls = cluster.calls();
    assert!(
        calls
            .iter()
            .all(|call| call.tool == "helm" && call.verb() == "version"),
        "{calls:?}"
    );
    let json = cluster
        .pgk8s(["deploy", "--dry-run", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(json["dry_run"], true);
    assert_eq!(
        json["values"]["auth"]["existingSecret"],
        "postgresql-credentials"
    );
}

#[test]
fn preflight_failures_have_their_exit_codes() {
    let mut cluster = cluster_or_skip!();
    cluster.set_env("PGK8S_FAKE_FAULTS", "api-down");
    let down = cluster.pgk8s(["deploy"]).expect(2);
    assert!(
        down.stderr.contains("cluster not reachable"),
        "{}",
        down.stderr
    );
    assert!(
        down.stderr
            .contains("hint: check `kubectl config current-context`"),
        "{}",
        down.stderr
    );
    cluster.set_env("PGK8S_FAKE_FAULTS", "kubectl-old");
    let old = cluster.pgk8s(["deploy"]).expect(3);
    assert!(
        old.stderr.contains("kubectl v1.20.4 is too old"),
        "{}",
        old.stderr
    );
    cluster.set_env("PGK8S_FAKE_FAULTS", "no-default-storageclass");
    let no_class = cluster.pgk8s(["deploy"]).expect(6);
    assert!(
        no_class.stderr.contains("no default StorageClass")
            && no_class.stderr.contains("--storage-class"),
        "{}",
        no_class.stderr
    );
    cluster.unset_env("PGK8S_FAKE_FAULTS");
    let unknown_class = cluster
        .pgk8s(["deploy", "--storage-class", "gold"])
        .expect(6);
    assert!(
        unknown_class
            .stderr
            .contains("StorageClass gold does not exist"),
        "{}",
        unknown_class.stderr
    );
    let no_helm = cluster
        .pgk8s(["deploy"])
        .env("PGK8S_HELM", "/nonexistent/helm")
        .expect(3);
    assert!(
        no_helm.stderr.contains("helm not found")
            && no_helm.stderr.contains("hint: install helm 3 or 4"),
        "{}",
        no_helm.stderr
    );
    let no_kubectl = cluster
        .pgk8s(["deploy"])
        .env("PGK8S_KUBECTL", "/nonexistent/kubectl")
        .expect(3);
    assert!(
        no_kubectl.stderr.contains("kubectl not found"),
        "{}",
        no_kubectl.stderr
    );
    assert!(
        cluster.mutating_calls().is_empty(),
        "{:?}",
        cluster.mutating_calls()
    );
}

#[test]
fn bad_deploy_input_is_refused_before_any_call() {
    let cluster = cluster_or_skip!();
    let not_yaml = cluster.path().join("values.yaml");
    std::fs::write(&not_yaml, "primary: [unclosed\n").unwrap();
    let sets_password = cluster.path().join("password.yaml");
    std::fs::write(&sets_password, "auth:\n  postgresPassword: hunter2\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--values".into(), not_yaml.display().to_string()],
            "is not valid YAML",
        ),
        (
            vec!["--values".into(), sets_password.display().to_string()],
            "sets auth.postgresPassword",
        ),
        (
            vec!["--values".into(), "/nonexistent.yaml".into()],
            "cannot read --values",
        ),
        (
            vec!["--profile".into(), "prod".into()],
            "--profile prod needs explicit --cpu-request",
        ),
        (
            vec!["--replicas".into(), "2".into()],
            "read replicas need --profile prod",
        ),
        (
            vec!["--image".into(), "bad image".into()],
            "is not a valid image",
        ),
        (
            vec!["-m".into(), "/nonexistent-migrations".into()],
            "cannot be opened",
        ),
    ];
    for (args, message) in cases {
        let mut full = vec!["deploy".to_string()];
        full.extend(args.clone());
        let refused = cluster.pgk8s(&full).expect(64);
        assert!(
            refused.stderr.contains(message),
            "{args:?}: {}",
            refused.stderr
        );
        assert_eq!(
            refused
                .stderr
                .lines()
                .filter(|line| line.starts_with("error:"))
                .count(),
            1
        );
    }
    assert!(cluster.calls().is_empty(), "{:?}", cluster.calls());
}

/// Deploys with a fault and a short timeout; returns stderr after asserting the exit code.
fn failing_deploy(fault: &str, code: i32) -> Option<String> {
    let mut cluster = Cluster::start()?;
    cluster.set_env("PGK8S_FAKE_FAULTS", fault);
    // Long enough for the wait to look at the pods at least once on a loaded machine: helm
    // deletes them when it gives up (--rollback-on-failure), as the real one does.
    let failed = cluster.pgk8s(["deploy", "--timeout", "4s"]).expect(code);
    Some(failed.stderr)
}

#[test]
fn image_pull_backoff_times_out_with_the_image_hint() {
    let Some(stderr) = failing_deploy("image-pull-backoff", 4) else {
        return;
    };
    assert!(stderr.contains("cannot pull its image"), "{stderr}");
    assert!(
        stderr.contains("hint: docker.io/bitnami images are no longer pullable: use --image"),
        "{stderr}"
    );
}

#[test]
fn pending_volume_is_insufficient_resources() {
    let Some(stderr) = failing_deploy("pvc-pending", 6) else {
        return;
    };
    assert!(
        stderr.contains("volume claim data-postgresql-0 is Pending"),
        "{stderr}"
    );
    assert!(stderr.contains("--storage-class"), "{stderr}");
}

#[test]
fn unschedulable_and_oom_killed_are_insufficient_resources() {
    let Some(stderr) = failing_deploy("unschedulable", 6) else {
        return;
    };
    assert!(
        stderr.contains("cannot be scheduled: 0/1 nodes are available: 1 Insufficient memory"),
        "{stderr}"
    );
    let Some(stderr) = failing_deploy("oomkilled", 6) else {
        return;
    };
    assert!(
        stderr.contains("was OOMKilled") && stderr.contains("--memory-limit"),
        "{stderr}"
    );
}

#[test]
fn crash_loop_and_never_ready_time_out_with_a_diagnosis() {
    let Some(stderr) = failing_deploy("crashloop", 4) else {
        return;
    };
    assert!(stderr.contains("keeps crashing"), "{stderr}");
    assert!(
        stderr.contains("| ") && stderr.contains("could not map anonymous shared memory"),
        "{stderr}"
    );
    let Some(stderr) = failing_deploy("pod-never-ready", 4) else {
        return;
    };
    assert!(stderr.contains("is Running but not ready"), "{stderr}");
}

#[test]
fn read_replicas_use_the_replication_names_and_password() {
    let cluster = cluster_or_skip!();
    let args = [
        "--release",
        "db",
        "--profile",
        "prod",
        "--cpu-request",
        "500m",
        "--memory-request",
        "512Mi",
        "--replicas",
        "1",
    ];
    let report = cluster.deploy(&args).stdout;
    assert!(report.contains("1 read replica"), "{report}");
    let pods = cluster
        .kubectl(["get", "pods", "-n", "learnflow", "-o", "json"])
        .succeeds()
        .json();
    let names: Vec<&str> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pod| pod["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db-postgresql-primary-0", "db-postgresql-read-0"]);
    let secret = cluster
        .kubectl([
            "get",
            "secret/db-credentials",
            "-n",
            "learnflow",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert!(secret["data"]["replication-password"].is_string());
    assert_eq!(
        cluster.sql(
            "learnflow",
            "db-postgresql-primary-0",
            "learnflow",
            "select count(*) from users;"
        ),
        "0"
    );
    // Every command finds the replicated primary.
    let release = ["-r", "db"];
    cluster
        .pgk8s(["migrate", "status", "--exit-code"].iter().chain(&release))
        .succeeds();
    cluster
        .pgk8s(["verify", "--check-schema"].iter().chain(&release))
        .succeeds();
    cluster.pgk8s(["status"].iter().chain(&release)).succeeds();
    let dump = cluster.path().join("db.dump");
    cluster
        .pgk8s(
            ["backup", "-f", dump.to_str().unwrap()]
                .iter()
                .chain(&release),
        )
        .succeeds();
    cluster
        .pgk8s(
            ["restore", "-f", dump.to_str().unwrap(), "--yes"]
                .iter()
                .chain(&release),
        )
        .succeeds();
    let verify = cluster
        .pgk8s(["verify", "-o", "json"].iter().chain(&release))
        .succeeds()
        .json();
    assert_eq!(verify["expected_pods"], 2);
    assert_eq!(verify["pods_running"], 2);
}

#[test]
fn undeploy_keeps_data_unless_asked_and_confirmed() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[]);
    cluster.clear_calls();
    let dry = cluster
        .pgk8s(["undeploy", "--delete-pvc", "--dry-run", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(dry["steps"].as_array().unwrap().len(), 3, "{dry}");
    assert!(cluster.mutating_calls().is_empty());
    let refused = cluster.pgk8s(["undeploy", "--delete-pvc"]).expect(9);
    assert!(
        refused.stderr.contains("re-run with --yes"),
        "{}",
        refused.stderr
    );
    assert!(
        cluster.mutating_calls().is_empty(),
        "nothing may be half-done"
    );
    let kept = cluster.pgk8s(["undeploy", "-o", "json"]).succeeds().json();
    assert_eq!(kept["steps"][0]["action"], "uninstall release");
    assert!(
        kept["kept"][0]
            .as_str()
            .unwrap()
            .contains("data-postgresql-0")
    );
    let claims = cluster
        .kubectl(["get", "pvc", "-n", "learnflow", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(claims["items"].as_array().unwrap().len(), 1);
    let again = cluster.pgk8s(["undeploy"]).succeeds();
    assert!(
        again.stdout.contains("is not installed"),
        "{}",
        again.stdout
    );
    cluster
        .pgk8s(["undeploy", "--delete-pvc", "--yes"])
        .succeeds();
    let claims = cluster
        .kubectl(["get", "pvc", "-n", "learnflow", "-o", "json"])
        .succeeds()
        .json();
    assert!(claims["items"].as_array().unwrap().is_empty());
    let secret = cluster
        .kubectl([
            "get",
            "secret/postgresql-credentials",
            "-n",
            "learnflow",
            "--ignore-not-found",
            "-o",
            "json",
        ])
        .succeeds();
    assert!(secret.stdout.trim().is_empty());
}

#[test]
fn undeploy_deletes_only_namespaces_pgk8s_created() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[]);
    cluster
        .pgk8s(["undeploy", "--delete-pvc", "--delete-namespace", "--yes"])
        .succeeds();
    let gone = cluster
        .kubectl([
            "get",
            "namespace/learnflow",
            "--ignore-not-found",
            "-o",
            "json",
        ])
        .succeeds();
    assert!(gone.stdout.trim().is_empty());

    let theirs = cluster_or_skip!();
    theirs
        .kubectl(["apply", "-f", "-"])
        .stdin(r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shared"}}"#)
        .succeeds();
    theirs.deploy(&["-n", "shared", "--skip-migrations"]);
    let refused = theirs
        .pgk8s(["undeploy", "-n", "shared", "--delete-namespace", "--yes"])
        .expect(9);
    assert!(
        refused.stderr.contains("was not created by pgk8s") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    theirs
        .pgk8s([
            "undeploy",
            "-n",
            "shared",
            "--delete-namespace",
            "--force",
            "--yes",
        ])
        .succeeds();
}

#[test]
fn info_redacts_the_password_unless_asked() {
    let cluster = cluster_or_skip!();
    let missing = cluster.pgk8s(["info"]).expect(1);
    assert!(
        missing
            .stderr
            .contains("hint: deploy it with `pgk8s deploy -n learnflow`"),
        "{}",
        missing.stderr
    );
    cluster.deploy(&["--skip-migrations"]);
    let info = cluster.pgk8s(["info", "-o", "json"]).succeeds().json();
    assert_eq!(
        info["url"],
        "postgresql://learnflow:<redacted>@postgresql.learnflow.svc.cluster.local:5432/learnflow"
    );
    assert_eq!(info["port"], 5432);
    let shown = cluster.pgk8s(["info", "--show-password"]).succeeds();
    assert!(!shown.stdout.contains("<redacted>"), "{}", shown.stdout);
}

#[test]
fn credentials_that_cannot_list_storage_classes_still_deploy() {
    let mut cluster = cluster_or_skip!();
    cluster.set_env("PGK8S_FAKE_FAULTS", "storageclass-forbidden");
    let deployed = cluster.deploy(&["--skip-migrations"]);
    assert!(
        deployed.stderr.contains("cannot list StorageClasses"),
        "{}",
        deployed.stderr
    );
}

#[test]
fn namespace_scoped_credentials_deploy_into_an_existing_namespace() {
    let mut cluster = cluster_or_skip!();
    cluster
        .kubectl(["apply", "-f", "-"])
        .stdin(r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team"}}"#)
        .succeeds();
    cluster.set_env(
        "PGK8S_FAKE_FAULTS",
        "namespace-forbidden,storageclass-forbidden",
    );
    let report = cluster.deploy(&["-n", "team", "-o", "json"]).json();
    assert_eq!(report["secret_action"], "created");
    assert_eq!(report["migrations"]["current_version"], 7);
    let refused = cluster
        .pgk8s(["undeploy", "-n", "team", "--delete-namespace", "--yes"])
        .expect(9);
    assert!(
        refused
            .stderr
            .contains("cannot be read with these credentials"),
        "{}",
        refused.stderr
    );
    cluster
        .pgk8s(["undeploy", "-n", "team", "--delete-pvc", "--yes"])
        .succeeds();
}

#[test]
fn recreate_data_of_an_installed_release_uninstalls_before_deleting_the_volume() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--seed"]);
    cluster
        .kubectl(["delete", "secret/postgresql-credentials", "-n", "learnflow"])
        .succeeds();
    cluster.pgk8s(["deploy", "--timeout", "60s"]).expect(9);
    cluster.clear_calls();
    let report = cluster
        .pgk8s([
            "deploy",
            "--recreate-data",
            "--yes",
            "-o",
            "json",
            "--timeout",
            "60s",
        ])
        .succeeds()
        .json();
    assert_eq!(report["secret_action"], "created");
    assert_eq!(report["release_action"], "installed");
    let verbs: Vec<String> = cluster
        .mutating_calls()
        .iter()
        .map(|call| format!("{} {}", call.tool, call.verb()))
        .collect();
    let uninstall = verbs
        .iter()
        .position(|verb| verb == "helm uninstall")
        .expect("uninstalled");
    let delete = verbs
        .iter()
        .position(|verb| verb == "kubectl delete")
        .expect("volume deleted");
    assert!(uninstall < delete, "{verbs:?}");
    assert_eq!(
        cluster.sql(
            "learnflow",
            "postgresql-0",
            "learnflow",
            "select count(*) from users;"
        ),
        "0",
        "fresh data"
    );
}

/// Claims in `learnflow`, by name.
fn claims(cluster: &Cluster) -> Vec<String> {
    let list = cluster
        .kubectl(["get", "pvc", "-n", "learnflow", "-o", "json"])
        .succeeds()
        .json();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|claim| claim["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn undeploying_one_release_never_touches_a_neighbours_volume() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--seed"]);
    cluster.deploy(&["--release", "postgresql-test", "--skip-migrations"]);
    assert_eq!(
        claims(&cluster),
        ["data-postgresql-0", "data-postgresql-test-0"]
    );
    let plan = cluster
        .pgk8s(["undeploy", "--delete-pvc", "--dry-run", "-o", "json"])
        .succeeds()
        .json();
    let targets: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        ["postgresql", "data-postgresql-0", "postgresql-credentials"]
    );
    cluster
        .pgk8s(["undeploy", "--delete-pvc", "--yes"])
        .succeeds();
    assert_eq!(claims(&cluster), ["data-postgresql-test-0"]);
    cluster
        .pgk8s(["verify", "--release", "postgresql-test"])
        .succeeds();
}

#[test]
fn a_kept_volume_of_the_other_layout_refuses_deploy_before_any_change() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--seed"]);
    cluster.pgk8s(["undeploy"]).succeeds();
    assert_eq!(claims(&cluster), ["data-postgresql-0"]);
    cluster.clear_calls();
    let replicated = [
        "deploy",
        "--replicas",
        "1",
        "--profile",
        "prod",
        "--cpu-request",
        "100m",
        "--memory-request",
        "256Mi",
        "--timeout",
        "60s",
    ];
    let refused = cluster.pgk8s(replicated).expect(9);
    assert!(
        refused
            .stderr
            .contains("data-postgresql-0 is kept from a standalone install")
            && refused.stderr.contains("without --replicas")
            && refused.stderr.contains("--delete-pvc"),
        "{}",
        refused.stderr
    );
    assert!(cluster.mutating_calls().is_empty(), "nothing was changed");
    // The way back: deploy as before, and the data is there.
    cluster.deploy(&[]);
    assert_eq!(
        cluster.sql(
            "learnflow",
            "postgresql-0",
            "learnflow",
            "select count(*) from users"
        ),
        "5"
    );
}

#[test]
fn secret_values_in_a_values_file_are_never_shown() {
    let cluster = cluster_or_skip!();
    let values = cluster.path().join("values.yaml");
    std::fs::write(
        &values,
        "primary:\n  initdb:\n    user: init\n    password: Values-Canary-55\n    scripts: {}\nldap:\n  bindpw: Ldap-Canary-66\n",
    )
    .unwrap();
    let path = values.to_str().unwrap();
    for format in ["text", "json"] {
        let plan = cluster
            .pgk8s(["deploy", "--dry-run", "--values", path, "-o", format])
            .succeeds();
        for canary in ["Values-Canary-55", "Ldap-Canary-66"] {
            assert!(!plan.stdout.contains(canary), "{}", plan.stdout);
        }
        assert!(plan.stdout.contains("<redacted>"), "{}", plan.stdout);
    }
    let deployed = cluster
        .pgk8s([
            "deploy",
            "--values",
            path,
            "-o",
            "json",
            "--timeout",
            "60s",
            "-vv",
        ])
        .succeeds();
    cluster.assert_secret_absent("Values-Canary-55", &[&deployed]);
    let stored = cluster
        .helm([
            "get",
            "values",
            "postgresql",
            "-n",
            "learnflow",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert_eq!(
        stored["primary"]["initdb"]["password"], "Values-Canary-55",
        "helm still receives the value, on stdin"
    );
}

#[test]
fn chart_references_and_input_files_are_checked_before_any_call() {
    let cluster = cluster_or_skip!();
    for args in [
        vec!["deploy", "--chart=--post-renderer=/bin/sh"],
        vec!["deploy", "--chart-version=--kube-apiserver=http://evil"],
        vec!["deploy", "--values", "/dev/zero"],
        vec!["deploy", "--values", "/"],
        vec!["seed", "-f", "/dev/zero"],
    ] {
        cluster.clear_calls();
        let started = std::time::Instant::now();
        let refused = cluster.pgk8s(&args).expect(64);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert!(
            refused
                .stderr
                .lines()
                .next()
                .unwrap_or_default()
                .starts_with("error: "),
            "{args:?}: {}",
            refused.stderr
        );
        assert!(cluster.calls().is_empty(), "{args:?} made a call");
    }
    let big = cluster.path().join("big.yaml");
    std::fs::write(&big, vec![b'#'; 5 << 20]).unwrap();
    let refused = cluster
        .pgk8s(["deploy", "--values", big.to_str().unwrap()])
        .expect(64);
    assert!(
        refused.stderr.contains("larger than 4 MiB"),
        "{}",
        refused.stderr
    );
}

/// The release's helm status, as the fake helm reports it.
fn release_status(cluster: &Cluster) -> Option<String> {
    let status = cluster
        .helm(["status", "postgresql", "-n", "learnflow", "-o", "json"])
        .run();
    status.status.success().then(|| {
        status.json()["info"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    })
}

/// Starts a deploy whose helm waits `wait_ms` with the release pending, and returns it once
/// helm is waiting.
fn deploy_with_helm_waiting(cluster: &Cluster, extra: &[&str]) -> std::process::Child {
    let mut args = vec!["deploy", "--timeout", "60s"];
    args.extend_from_slice(extra);
    let mut command = cluster.background(&args);
    command
        .env("PGK8S_FAKE_HELM_WAIT_MS", "30000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("pgk8s starts");
    let started = std::time::Instant::now();
    while !release_status(cluster).is_some_and(|status| status.starts_with("pending-")) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "helm never waited"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child
}

fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn sigterm_during_helm_is_forwarded_so_helm_rolls_back() {
    let cluster = cluster_or_skip!();
    let child = deploy_with_helm_waiting(&cluster, &["--skip-migrations"]);
    signal(&child, "TERM");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143));
    let log = cluster.call_log();
    assert!(
        log.contains("\"phase\": \"signal\""),
        "helm received the signal: {log}"
    );
    assert_eq!(
        release_status(&cluster),
        None,
        "helm uninstalled the never-deployed release (--rollback-on-failure)"
    );
    cluster.deploy(&[]);
}

#[test]
fn a_release_left_pending_by_a_killed_deploy_is_recovered_by_the_next() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--seed"]);
    // An upgrade killed outright (nothing can forward a SIGKILL) leaves it pending-upgrade.
    let child = deploy_with_helm_waiting(&cluster, &["--memory-limit", "2Gi"]);
    signal(&child, "KILL");
    let _ = child.wait_with_output();
    cluster.kill_last_helm_upgrade();
    assert_eq!(release_status(&cluster).as_deref(), Some("pending-upgrade"));
    // Within the deadline of a run that may still be going, deploy refuses to interfere.
    let refused = cluster.pgk8s(["deploy", "--timeout", "60s"]).expect(9);
    assert!(
        refused
            .stderr
            .contains("another pgk8s run may still be working on it"),
        "{}",
        refused.stderr
    );
    // Once it is older than that, deploy rolls it back and carries on.
    cluster
        .sim(["age-release", "learnflow", "postgresql", "600"])
        .succeeds();
    let recovered = cluster
        .pgk8s([
            "deploy",
            "--timeout",
            "60s",
            "--memory-limit",
            "2Gi",
            "-o",
            "json",
        ])
        .succeeds();
    assert!(
        recovered.stderr.contains("rolling it back"),
        "{}",
        recovered.stderr
    );
    assert_eq!(recovered.json()["release_action"], "upgraded");
    assert_eq!(release_status(&cluster).as_deref(), Some("deployed"));
    assert_eq!(
        cluster.sql(
            "learnflow",
            "postgresql-0",
            "learnflow",
            "select count(*) from users"
        ),
        "5"
    );
}

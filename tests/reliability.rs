//! Reliability and security: secrets never leak (canary), bad input never hurts (a table of
//! malformed inputs), faults never lose data, destructive actions need explicit consent, and
//! dry runs change nothing.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Cluster, Finished};

const POD: &str = "postgresql-0";
/// Both passwords of the canary cluster contain this marker.
const CANARY: &str = "CanaryS3cret";

/// A deployed cluster whose Secret holds canary passwords, with the simulator told to report any
/// child environment variable that contains the marker.
fn canary_cluster() -> Option<Cluster> {
    let mut cluster = Cluster::start()?;
    cluster.set_env("PGK8S_SIM_CANARY", CANARY);
    cluster.create_secret(&format!("{CANARY}Super91"), &format!("{CANARY}App27"));
    cluster.deploy(&["--seed", "-vvv"]);
    Some(cluster)
}

fn assert_clean(cluster: &Cluster, finished: &Finished, scenario: &str) {
    for stream in [&finished.stdout, &finished.stderr] {
        assert!(
            !stream.contains(CANARY),
            "{scenario}: canary printed:\n{stream}"
        );
    }
    for call in cluster.calls() {
        assert!(
            !call.argv.iter().any(|arg| arg.contains(CANARY)),
            "{scenario}: canary in argv {:?}",
            call.argv
        );
        assert!(
            call.canary_in_env.is_empty(),
            "{scenario}: canary in child env {:?}",
            call.canary_in_env
        );
    }
}

#[test]
fn the_canary_password_never_leaks_from_any_command_or_fault() {
    let Some(cluster) = canary_cluster() else {
        return;
    };
    let dump = cluster.path().join("canary.dump");
    let port = cluster
        .sim(["port", "learnflow", POD])
        .succeeds()
        .stdout
        .trim()
        .to_string();
    let url = format!("postgresql://learnflow:{CANARY}App27@127.0.0.1:{port}/learnflow");
    let skill_dir = cluster.path().join("skills");
    let commands: Vec<Vec<String>> = [
        "deploy --timeout 2s",
        "deploy --dry-run",
        "undeploy --dry-run --delete-pvc",
        "migrate",
        "migrate status",
        "migrate --dry-run",
        "migrate down --dry-run",
        "migrate repair --dry-run",
        "seed",
        "seed --dry-run",
        "verify --check-schema",
        "info",
        "status",
        "logs --tail 20",
        "psql -c select_1",
        "rotate-password --dry-run",
        "backup -f DUMP",
        "restore -f DUMP --dry-run",
        "restore -f DUMP --yes",
        "skill install --dir SKILLS --force",
    ]
    .iter()
    .map(|line| {
        line.split(' ')
            .map(|word| match word {
                "DUMP" => dump.display().to_string(),
                "SKILLS" => skill_dir.display().to_string(),
                "select_1" => "select 1".to_string(),
                other => other.to_string(),
            })
            .collect()
    })
    .collect();
    let faults = [
        "",
        "api-down",
        "forbidden",
        "kubectl-old",
        "no-default-storageclass",
        "pod-never-ready",
        "image-pull-backoff",
        "pvc-pending",
        "unschedulable",
        "oomkilled",
        "crashloop",
        "apply-fails",
        "echo-input",
        "exec-drop",
    ];
    let mut scenarios = 0;
    for fault in faults {
        for command in &commands {
            // Every command in both formats without faults; under each fault, the JSON form.
            let formats: &[&str] = if fault.is_empty() {
                &["text", "json"]
            } else {
                &["json"]
            };
            for format in formats {
                let _ = std::fs::remove_file(&dump);
                let _ = std::fs::remove_file(dump.with_extension("dump.json"));
                if command[0] == "restore" {
                    cluster
                        .pgk8s(["backup", "-f", dump.to_str().unwrap()])
                        .succeeds();
                }
                cluster.clear_calls();
                let mut args = command.clone();
                args.extend(["-vvv".to_string(), "-o".to_string(), format.to_string()]);
                let mut run = cluster.pgk8s(&args);
                run = match fault {
                    "exec-drop" => run.env("PGK8S_FAKE_EXEC_DROP_AFTER", "40"),
                    "" => run,
                    other => run.env("PGK8S_FAKE_FAULTS", other),
                };
                let finished = run.run();
                assert_clean(
                    &cluster,
                    &finished,
                    &format!("{args:?} with fault {fault:?}"),
                );
                scenarios += 1;
            }
        }
    }
    // Mutating calls that carry the Secret's data, against a tool that echoes its input.
    for command in [
        vec!["rotate-password", "--yes"],
        vec!["rotate-password", "--user", "postgres", "--yes"],
        vec!["undeploy", "--yes"],
    ] {
        cluster.clear_calls();
        let finished = cluster
            .pgk8s(&command)
            .env("PGK8S_FAKE_FAULTS", "echo-input")
            .env("RUST_LOG", "trace")
            .run();
        assert_ne!(finished.code(), Some(0), "{command:?} cannot succeed");
        assert_clean(&cluster, &finished, &format!("{command:?} echoed"));
        scenarios += 1;
    }
    // The same through --database-url, whose password is the app canary: in the user-info, as
    // a query parameter, and percent-encoded (%43 is C) so that only decoding reveals it.
    let in_query =
        format!("postgresql://learnflow@127.0.0.1:{port}/learnflow?password={CANARY}App27");
    let encoded = url.replacen(CANARY, &format!("%43{}", &CANARY[1..]), 1);
    for url in [&url, &in_query, &encoded] {
        for command in [
            ["migrate", "status"],
            ["seed", "--dry-run"],
            ["verify", "--check-schema"],
        ] {
            cluster.clear_calls();
            let finished = cluster
                .pgk8s(command)
                .env("PGK8S_DATABASE_URL", url)
                .env("RUST_LOG", "trace")
                .run();
            assert_eq!(
                finished.code(),
                Some(0),
                "{command:?} {url}: {}",
                finished.stderr
            );
            assert_clean(
                &cluster,
                &finished,
                &format!("{command:?} with --database-url"),
            );
            for call in cluster.calls() {
                assert!(
                    !call.env.iter().any(|name| name == "PGK8S_DATABASE_URL"),
                    "{command:?}: the URL reached {} {:?}",
                    call.tool,
                    call.argv
                );
            }
            scenarios += 1;
        }
    }
    // Files pgk8s writes (other than the dump itself) carry no password either.
    cluster
        .pgk8s(["backup", "-f", dump.to_str().unwrap()])
        .succeeds();
    let manifest = std::fs::read_to_string(dump.with_extension("dump.json")).unwrap();
    assert!(!manifest.contains(CANARY));
    for entry in walk(&skill_dir) {
        assert!(
            !std::fs::read_to_string(&entry).unwrap().contains(CANARY),
            "{}",
            entry.display()
        );
    }
    eprintln!("canary scenarios covered: {scenarios}");
    assert!(scenarios >= 250, "{scenarios}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

/// One malformed input: arguments (with `{dir}` replaced by a scratch directory), the exit code,
/// and text the single error line must contain.
struct BadInput {
    args: &'static str,
    code: i32,
    names: &'static str,
}

const fn bad(args: &'static str, code: i32, names: &'static str) -> BadInput {
    BadInput { args, code, names }
}

const BAD_INPUTS: &[BadInput] = &[
    bad("deploy -n Learnflow", 64, "Learnflow"),
    bad(
        "deploy -n aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        64,
        "limit is 63",
    ),
    bad("deploy --namespace=-lead", 64, "-lead"),
    bad("deploy -n ñame", 64, "ñame"),
    bad("deploy -n under_score", 64, "under_score"),
    bad("deploy -r My_Release", 64, "My_Release"),
    bad(
        "deploy -r rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr",
        64,
        "limit is 53",
    ),
    bad("deploy -d bad-name", 64, "bad-name"),
    bad("deploy -u 2user", 64, "2user"),
    bad("deploy --storage-size lots", 64, "lots"),
    bad("deploy --storage-size 0", 64, "\"0\""),
    bad("deploy --storage-size=-5Gi", 64, "-5Gi"),
    bad("deploy --storage-size 8GB", 64, "8GB"),
    bad("deploy --timeout soon", 64, "soon"),
    bad("deploy --timeout 5x", 64, "5x"),
    bad("deploy --profile huge", 64, "huge"),
    bad("deploy --replicas 2", 64, "--profile prod"),
    bad("deploy --replicas 11 --profile prod", 64, "11"),
    bad("deploy --profile prod", 64, "--cpu-request"),
    bad("deploy --image {space}", 64, "not a valid image"),
    bad("deploy --image repo:", 64, "repo:"),
    bad("deploy --values {dir}/missing.yaml", 64, "missing.yaml"),
    bad("deploy --values {dir}/broken.yaml", 64, "broken.yaml"),
    bad("deploy --values {dir}/password.yaml", 64, "auth"),
    bad("deploy --values {dir}/rename.yaml", 64, "fullnameOverride"),
    bad("deploy --values {dir}/list.yaml", 64, "mapping"),
    bad("deploy --storage-class Bad_Class", 64, "Bad_Class"),
    bad("deploy --password-from-secret BAD", 64, "BAD"),
    bad("deploy --context=", 64, "--context"),
    bad(
        "deploy --kubeconfig {dir}/no-kubeconfig",
        64,
        "no-kubeconfig",
    ),
    bad("deploy --skip-migrations --seed", 64, "--seed"),
    bad("upgrade --chart-version=", 64, "not a chart version"),
    bad(
        "resize --storage-size 9Gi --chart-version ^17",
        64,
        "not a chart version",
    ),
    bad("upgrade --image BITNAMI/PG:18", 64, "not a valid image"),
    bad("deploy --engine cnpg -r 1abc", 64, "start with a letter"),
    bad("undeploy --force", 64, "--delete-namespace"),
    bad("migrate -m {dir}/nowhere", 64, "nowhere"),
    bad("migrate -m {dir}/empty", 64, "has no .sql files"),
    bad("migrate -m {dir}/broken.yaml", 64, "broken.yaml"),
    bad("migrate -m {dir}/duplicates", 64, "same version 1"),
    bad("migrate -m {dir}/latin1", 64, "not valid UTF-8"),
    bad(
        "migrate -m {dir}/escape",
        64,
        "outside the migrations directory",
    ),
    bad("migrate -m {dir}/huge", 64, "limited to 32 MiB"),
    bad("migrate -m {dir}/badname", 64, "not NNN_name"),
    bad("migrate -m {dir}/orphan", 64, "no matching up"),
    bad("migrate -m {dir}/unterminated", 64, "quoted string"),
    bad("migrate --target 99", 64, "--target 99"),
    bad("migrate down --to 1 --steps 2", 64, "--steps"),
    bad("migrate baseline --version 0", 64, "version of 0"),
    bad("migrate --lock-timeout forever", 64, "forever"),
    bad("seed -f {dir}/missing.sql", 64, "missing.sql"),
    bad("seed -f {dir}/latin1/001_bad.sql", 64, "not valid UTF-8"),
    bad("restore -f {dir}/missing.dump", 64, "missing.dump"),
    bad("restore -f {dir}/truncated.dump --yes", 64, "truncated"),
    bad(
        "restore -f {dir}/plain.dump --yes",
        64,
        "not a pg_dump custom-format archive",
    ),
    bad("backup -f {dir}/no-such-dir/x.dump", 64, "no-such-dir"),
    bad("backup -f {dir}/broken.yaml", 64, "already exists"),
    bad("completions tcsh", 64, "tcsh"),
    bad("verify --color sometimes", 64, "sometimes"),
    bad("verify -o yaml", 64, "yaml"),
    bad("verify --wait later", 64, "later"),
    bad("frobnicate", 64, "frobnicate"),
];

fn scratch(cluster: &Cluster) -> PathBuf {
    let dir = cluster.path().join("bad");
    let write = |path: &str, bytes: &[u8]| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    write("broken.yaml", b"primary: [unclosed\n");
    write("password.yaml", b"auth:\n  password: hunter2\n");
    write("rename.yaml", b"fullnameOverride: other\n");
    write("list.yaml", b"- a\n- b\n");
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    write("duplicates/001_a.sql", b"select 1;");
    write("duplicates/1_b.sql", b"select 2;");
    write("latin1/001_bad.sql", b"select 'caf\xe9';");
    write("outside.sql", b"select 1;");
    std::fs::create_dir_all(dir.join("escape")).unwrap();
    let _ = std::os::unix::fs::symlink(dir.join("outside.sql"), dir.join("escape/001_link.sql"));
    write("huge/001_huge.sql", &vec![b'-'; 100 * 1024 * 1024]);
    write("badname/first.sql", b"select 1;");
    write("orphan/001_a.down.sql", b"select 1;");
    write("unterminated/001_a.sql", b"select 'oops;");
    write("truncated.dump", b"PGDMP\x01\x0e");
    write("truncated.dump.json", br#"{"format":"pg_dump-custom","database":"learnflow","release":"postgresql","namespace":"learnflow","server_version":"15","migration_version":7,"size_bytes":4096,"sha256":"00","created_at":"x","pgk8s_version":"0.1.0"}"#);
    write("plain.dump", b"-- SQL\n");
    write("plain.dump.json", format!(
        r#"{{"format":"pg_dump-custom","database":"learnflow","release":"postgresql","namespace":"learnflow","server_version":"15","migration_version":7,"size_bytes":7,"sha256":"{}","created_at":"x","pgk8s_version":"0.1.0"}}"#,
        sha256_hex(b"-- SQL\n")
    ).as_bytes());
    dir
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[test]
fn forty_plus_malformed_inputs_fail_cleanly_and_change_nothing() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    let dir = scratch(&cluster);
    let tables_before = cluster.sql("learnflow", POD, "learnflow", "select count(*) from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema');");
    assert!(BAD_INPUTS.len() >= 40);
    let mut missing_fix = Vec::new();
    for input in BAD_INPUTS {
        let args: Vec<String> = input
            .args
            .split(' ')
            .map(|word| match word {
                "{space}" => "bad image".to_string(),
                other => other.replace("{dir}", dir.to_str().unwrap()),
            })
            .collect();
        cluster.clear_calls();
        let finished = cluster.pgk8s(&args).run();
        assert_eq!(
            finished.code(),
            Some(input.code),
            "{args:?}: {}",
            finished.stderr
        );
        let errors: Vec<&str> = finished
            .stderr
            .lines()
            .filter(|line| line.starts_with("error:"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "{args:?}: one error line expected:\n{}",
            finished.stderr
        );
        assert!(
            errors[0].contains(input.names),
            "{args:?}: the error does not name {:?}: {}",
            input.names,
            errors[0]
        );
        let fix = finished.stderr.contains("hint:")
            || finished.stderr.contains("tip:")
            || finished.stderr.contains("--help")
            || finished.stderr.contains("possible values");
        if !fix {
            missing_fix.push(format!("{args:?}: {}", finished.stderr.trim()));
        }
        assert!(
            finished.stdout.is_empty() || finished.stdout.starts_with('{'),
            "{args:?}: {}",
            finished.stdout
        );
        assert!(
            cluster.mutating_calls().is_empty(),
            "{args:?} made {:?}",
            cluster.mutating_calls()
        );
    }
    assert!(
        missing_fix.is_empty(),
        "errors without a fix:\n{}",
        missing_fix.join("\n")
    );
    let tables_after = cluster.sql("learnflow", POD, "learnflow", "select count(*) from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema');");
    assert_eq!(
        tables_before, tables_after,
        "nothing changed in the database"
    );
    // A migration with a syntax error runs, fails, and leaves nothing behind.
    let syntax = dir.join("syntax");
    std::fs::create_dir_all(&syntax).unwrap();
    std::fs::write(
        syntax.join("001_a.sql"),
        "create table a (id int);\ncreate tabel b (id int);\n",
    )
    .unwrap();
    let failed = cluster
        .pgk8s(["migrate", "-m", syntax.to_str().unwrap()])
        .expect(7);
    assert!(
        failed.stderr.contains("001_a.sql failed at line 2"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        cluster.sql(
            "learnflow",
            POD,
            "learnflow",
            "select to_regclass('public.a') is null;"
        ),
        "t"
    );
}

#[test]
fn the_api_going_away_mid_deploy_is_exit_2_and_a_rerun_completes() {
    let cluster = cluster_or_skip!();
    // The seven pre-flight calls succeed; the API is gone for the namespace/Secret apply.
    let failed = cluster
        .pgk8s(["deploy", "--timeout", "60s"])
        .env("PGK8S_FAKE_API_DOWN_AFTER_CALLS", "7")
        .expect(2);
    assert!(
        failed.stderr.contains("cluster not reachable"),
        "{}",
        failed.stderr
    );
    cluster.clear_calls();
    // Now it fails at the helm step, after the Secret exists.
    let failed = cluster
        .pgk8s(["deploy", "--timeout", "60s"])
        .env("PGK8S_FAKE_API_DOWN_AFTER_CALLS", "8")
        .expect(2);
    assert!(
        failed.stderr.contains("cluster not reachable"),
        "{}",
        failed.stderr
    );
    let report = cluster
        .pgk8s(["deploy", "-o", "json", "--timeout", "60s"])
        .succeeds()
        .json();
    assert_eq!(
        report["secret_action"], "reused",
        "the rerun picks up where it stopped"
    );
    assert_eq!(report["migrations"]["current_version"], 7);
}

#[test]
fn a_postgresql_restart_keeps_data_password_and_history() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--seed"]);
    cluster.sim(["restart", "learnflow", POD]).succeeds();
    let report = cluster.pgk8s(["migrate", "-o", "json"]).succeeds().json();
    assert!(
        report["applied"].as_array().unwrap().is_empty(),
        "nothing is re-applied"
    );
    assert_eq!(
        cluster.sql("learnflow", POD, "learnflow", "select count(*) from users;"),
        "5"
    );
    cluster.pgk8s(["verify", "--check-schema"]).succeeds();
}

/// Starts `pgk8s migrate` on a directory whose second migration sleeps, waits until it runs,
/// sends `signal`, and returns the exit code.
fn interrupt_migrate(cluster: &Cluster, signal: &str) -> Option<i32> {
    let dir = cluster.path().join(format!("slow-{signal}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("001_fast.sql"), "create table fast (id int);\n").unwrap();
    std::fs::write(
        dir.join("002_slow.sql"),
        "create table slow (id int);\nselect pg_sleep(30);\n",
    )
    .unwrap();
    let mut child = cluster
        .background(&["migrate", "-m", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let sleeping = "select count(*) from pg_stat_activity where query like '%pg_sleep(30)%' and pid <> pg_backend_pid();";
    while cluster.sql("learnflow", POD, "postgres", sleeping) != "1" {
        assert!(
            Instant::now() < deadline,
            "the slow migration never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let code = child.wait().unwrap().code();
    // pgk8s ended the statement on the server before it exited: it does not run on for 30 s.
    let stopped = Instant::now() + Duration::from_secs(2);
    while cluster.sql("learnflow", POD, "postgres", sleeping) != "0" {
        assert!(Instant::now() < stopped, "the statement outlived pgk8s");
        std::thread::sleep(Duration::from_millis(50));
    }
    code
}

#[test]
fn ctrl_c_and_sigterm_during_migrate_stop_cleanly_and_the_next_run_resumes() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&["--skip-migrations"]);
    assert_eq!(interrupt_migrate(&cluster, "-INT"), Some(130));
    // The session was ended on the server; the lock went with it.
    let deadline = Instant::now() + Duration::from_secs(2);
    while cluster.sql(
        "learnflow",
        POD,
        "learnflow",
        "select count(*) from pg_locks where locktype = 'advisory';",
    ) != "0"
    {
        assert!(
            Instant::now() < deadline,
            "the migration lock was never released"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        cluster.sql(
            "learnflow",
            POD,
            "learnflow",
            "select string_agg(version::text, ',') from pgk8s.schema_history;"
        ),
        "1"
    );
    assert_eq!(
        cluster.sql(
            "learnflow",
            POD,
            "learnflow",
            "select to_regclass('public.slow') is null;"
        ),
        "t",
        "the interrupted migration rolled back"
    );
    assert_eq!(interrupt_migrate(&cluster, "-TERM"), Some(143));
    let dir = cluster.path().join("slow--TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let resumed = cluster
            .pgk8s([
                "migrate",
                "-m",
                dir.to_str().unwrap(),
                "-o",
                "json",
                "--lock-timeout",
                "10s",
            ])
            .run();
        if resumed.code() == Some(0) {
            assert_eq!(resumed.json()["applied"][0]["file"], "002_slow.sql");
            break;
        }
        assert!(Instant::now() < deadline, "{}", resumed.stderr);
    }
    assert_eq!(
        cluster.sql(
            "learnflow",
            POD,
            "learnflow",
            "select count(*) from pgk8s.schema_history;"
        ),
        "2"
    );
}

#[test]
fn every_dry_run_makes_zero_mutating_calls() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[]);
    let dump = cluster.path().join("d.dump");
    cluster
        .pgk8s(["backup", "-f", dump.to_str().unwrap()])
        .succeeds();
    let dump = dump.to_str().unwrap();
    let planned_dump = cluster.path().join("planned.dump").display().to_string();
    let skills = cluster.path().join("skills").display().to_string();
    let dry_runs: &[&[&str]] = &[
        &["deploy", "--dry-run"],
        &["deploy", "--dry-run", "--recreate-data"],
        &[
            "undeploy",
            "--dry-run",
            "--delete-pvc",
            "--delete-namespace",
        ],
        &["migrate", "--dry-run"],
        &["migrate", "up", "--dry-run"],
        &["migrate", "down", "--dry-run", "--to", "0"],
        &["migrate", "baseline", "--version", "3", "--dry-run"],
        &["migrate", "repair", "--dry-run"],
        &["seed", "--dry-run"],
        &["restore", "-f", dump, "--dry-run"],
        &["rotate-password", "--dry-run"],
        &["rotate-password", "--user", "postgres", "--dry-run"],
        &["backup", "-f", &planned_dump, "--dry-run"],
        &["skill", "install", "--dir", &skills, "--dry-run"],
    ];
    for args in dry_runs {
        cluster.clear_calls();
        cluster.pgk8s(*args).succeeds();
        assert!(
            cluster.mutating_calls().is_empty(),
            "{args:?} made {:?}",
            cluster.mutating_calls()
        );
    }
    assert_eq!(
        cluster.sql(
            "learnflow",
            POD,
            "learnflow",
            "select count(*) from pgk8s.schema_history;"
        ),
        "7"
    );
    // The dry runs that write local files wrote none.
    assert!(!std::path::Path::new(&planned_dump).exists());
    assert!(!std::path::Path::new(&skills).exists());
}

#[test]
fn an_unreachable_cluster_is_one_plain_sentence_and_kubectls_lines_wait_for_v() {
    let cluster = cluster_or_skip!();
    let quiet = cluster
        .pgk8s(["info"])
        .env("PGK8S_FAKE_FAULTS", "api-down")
        .expect(2);
    let lines: Vec<&str> = quiet.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "one error line and one hint:\n{}",
        quiet.stderr
    );
    assert!(
        lines[0].contains("the API server at 127.0.0.1:6443 refused the connection"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("hint: "));
    assert!(!quiet.stderr.contains("memcache.go"), "{}", quiet.stderr);
    let verbose = cluster
        .pgk8s(["info", "-v"])
        .env("PGK8S_FAKE_FAULTS", "api-down")
        .expect(2);
    assert!(
        verbose.stderr.contains("memcache.go"),
        "-v shows kubectl's own lines"
    );
    let forbidden = cluster
        .pgk8s(["info"])
        .env("PGK8S_FAKE_FAULTS", "forbidden")
        .expect(2);
    assert!(
        forbidden
            .stderr
            .contains("access denied: user sim may not list pods in namespace learnflow"),
        "{}",
        forbidden.stderr
    );
}

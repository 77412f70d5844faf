//! `migrate` and `seed` on a real PostgreSQL through the simulated cluster's `kubectl exec`.

mod common;

use std::path::PathBuf;

use common::Cluster;

const POD: &str = "postgresql-0";

fn sql(cluster: &Cluster, query: &str) -> String {
    cluster.sql("learnflow", POD, "learnflow", query)
}

fn history(cluster: &Cluster) -> String {
    sql(
        cluster,
        "select string_agg(version::text, ',' order by version) from pgk8s.schema_history;",
    )
}

/// Writes migration files into a fresh directory of the cluster's temp dir.
fn migrations(cluster: &Cluster, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = cluster.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

fn deployed() -> Option<Cluster> {
    let cluster = Cluster::start()?;
    cluster.deploy(&["--skip-migrations"]);
    cluster.clear_calls();
    Some(cluster)
}

fn schema_dump(cluster: &Cluster) -> String {
    let script = "PGPASSWORD=\"$(cat /opt/bitnami/postgresql/secrets/postgres-password)\" exec pg_dump --schema-only --restrict-key=pgk8stest -U postgres -d learnflow --exclude-schema=pgk8s";
    let dump = cluster.pod_shell(POD, script).succeeds();
    dump.stdout
}

#[test]
fn fresh_apply_then_a_no_op_in_one_exec_each() {
    let Some(cluster) = deployed() else { return };
    let first = cluster.pgk8s(["migrate", "-o", "json"]).succeeds().json();
    assert_eq!(first["applied"].as_array().unwrap().len(), 7);
    assert_eq!(first["current_version"], 7);
    assert_eq!(
        cluster.exec_calls(),
        1,
        "one kubectl exec for the whole run"
    );
    assert_eq!(history(&cluster), "1,2,3,4,5,6,7");
    let applied_by = sql(
        &cluster,
        "select distinct applied_by from pgk8s.schema_history;",
    );
    assert_eq!(applied_by, "learnflow");
    cluster.clear_calls();
    let second = cluster.pgk8s(["migrate", "-o", "json"]).succeeds().json();
    assert!(second["applied"].as_array().unwrap().is_empty());
    assert_eq!(cluster.exec_calls(), 1);
    let text = cluster.pgk8s(["migrate"]).succeeds();
    assert!(text.stdout.contains("Nothing to do"), "{}", text.stdout);
}

#[test]
fn fifty_migrations_still_take_one_exec() {
    let Some(cluster) = deployed() else { return };
    let files: Vec<(String, String)> = (1..=50)
        .map(|version| {
            (
                format!("{version:03}_t{version}.up.sql"),
                format!("create table t{version} (id int);\n"),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    let dir = migrations(&cluster, "fifty", &borrowed);
    let report = cluster
        .pgk8s(["migrate", "-m", dir.to_str().unwrap(), "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(report["applied"].as_array().unwrap().len(), 50);
    assert_eq!(cluster.exec_calls(), 1);
    assert_eq!(cluster.calls().len(), 1, "{:?}", cluster.calls());
}

#[test]
fn up_down_up_of_every_migration_restores_the_same_schema() {
    let Some(cluster) = deployed() else { return };
    cluster.pgk8s(["migrate"]).succeeds();
    let original = schema_dump(&cluster);
    assert!(original.contains("CREATE TABLE public.submissions"));
    for version in (0..7).rev() {
        cluster
            .pgk8s(["migrate", "down", "--to", &version.to_string(), "--yes"])
            .succeeds();
        cluster.pgk8s(["migrate"]).succeeds();
        assert_eq!(
            schema_dump(&cluster),
            original,
            "after down --to {version} and up"
        );
    }
    cluster
        .pgk8s(["migrate", "down", "--to", "0", "--yes"])
        .succeeds();
    assert_eq!(
        sql(
            &cluster,
            "select count(*) from information_schema.tables where table_schema = 'public';"
        ),
        "0"
    );
}

#[test]
fn a_failing_migration_rolls_back_alone_and_the_next_run_resumes() {
    let Some(cluster) = deployed() else { return };
    let dir = migrations(
        &cluster,
        "broken",
        &[
            ("001_a.sql", "create table a (id int);\n"),
            (
                "002_b.sql",
                "create table b (id int);\n\ninsert into b values (1);\nselect * from missing_table;\n",
            ),
            ("003_c.sql", "create table c (id int);\n"),
        ],
    );
    let failed = cluster
        .pgk8s(["migrate", "-m", dir.to_str().unwrap()])
        .expect(7);
    assert!(
        failed.stderr.contains(
            "error: 002_b.sql failed at line 4: ERROR: relation \"missing_table\" does not exist"
        ),
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains("hint: this migration was rolled back"),
        "{}",
        failed.stderr
    );
    assert_eq!(history(&cluster), "1");
    assert_eq!(
        sql(&cluster, "select to_regclass('public.b') is null;"),
        "t",
        "002 rolled back entirely"
    );
    std::fs::write(dir.join("002_b.sql"), "create table b (id int);\n").unwrap();
    let resumed = cluster
        .pgk8s(["migrate", "-m", dir.to_str().unwrap(), "-o", "json"])
        .succeeds()
        .json();
    let files: Vec<&str> = resumed["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|applied| applied["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["002_b.sql", "003_c.sql"]);
}

#[test]
fn drift_fails_naming_the_file_and_repair_accepts_it() {
    let Some(cluster) = deployed() else { return };
    let dir = migrations(
        &cluster,
        "drift",
        &[
            ("001_a.sql", "create table a (id int);\n"),
            ("002_b.sql", "create table b (id int);\n"),
        ],
    );
    let dir_arg = dir.to_str().unwrap();
    cluster.pgk8s(["migrate", "-m", dir_arg]).succeeds();
    // Line endings and a BOM are not a change.
    std::fs::write(
        dir.join("001_a.sql"),
        "\u{feff}create table a (id int);\r\n",
    )
    .unwrap();
    cluster.pgk8s(["migrate", "-m", dir_arg]).succeeds();
    std::fs::write(dir.join("001_a.sql"), "create table a (id bigint);\n").unwrap();
    let drifted = cluster.pgk8s(["migrate", "-m", dir_arg]).expect(7);
    assert!(
        drifted
            .stderr
            .contains("applied migration changed since it ran: 001_a.sql (recorded "),
        "{}",
        drifted.stderr
    );
    assert!(
        drifted.stderr.contains("migrate repair --yes"),
        "{}",
        drifted.stderr
    );
    let status = cluster
        .pgk8s([
            "migrate",
            "status",
            "-m",
            dir_arg,
            "--exit-code",
            "-o",
            "json",
        ])
        .expect(7)
        .json();
    assert_eq!(status["drifted"], 1);
    assert_eq!(status["migrations"][0]["state"], "drifted");
    cluster
        .pgk8s(["migrate", "repair", "-m", dir_arg])
        .expect(9);
    let repaired = cluster
        .pgk8s(["migrate", "repair", "-m", dir_arg, "--yes", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(repaired["applied"][0]["file"], "001_a.sql");
    cluster
        .pgk8s(["migrate", "status", "-m", dir_arg, "--exit-code"])
        .succeeds();
}

#[test]
fn out_of_order_versions_need_permission() {
    let Some(cluster) = deployed() else { return };
    let dir = migrations(
        &cluster,
        "ooo",
        &[
            ("001_a.sql", "create table a (id int);\n"),
            ("003_c.sql", "create table c (id int);\n"),
        ],
    );
    let dir_arg = dir.to_str().unwrap();
    cluster.pgk8s(["migrate", "-m", dir_arg]).succeeds();
    std::fs::write(dir.join("002_b.sql"), "create table b (id int);\n").unwrap();
    let refused = cluster.pgk8s(["migrate", "-m", dir_arg]).expect(7);
    assert!(
        refused
            .stderr
            .contains("002_b.sql is pending but older than the newest applied version 3"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--allow-out-of-order"));
    cluster
        .pgk8s(["migrate", "-m", dir_arg, "--allow-out-of-order"])
        .succeeds();
    assert_eq!(history(&cluster), "1,2,3");
}

#[test]
fn four_concurrent_runs_apply_each_migration_exactly_once() {
    let Some(cluster) = deployed() else { return };
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let run = cluster.pgk8s(["migrate", "-o", "json"]);
            std::thread::spawn(move || run.run())
        })
        .collect();
    let mut applied = 0;
    for run in runs {
        let finished = run.join().unwrap();
        assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
        applied += finished.json()["applied"].as_array().unwrap().len();
    }
    assert_eq!(applied, 7, "every migration applied by exactly one run");
    assert_eq!(
        sql(
            &cluster,
            "select count(*), count(distinct version) from pgk8s.schema_history;"
        ),
        "7|7"
    );
}

#[test]
fn a_held_lock_times_out_naming_the_holder() {
    let Some(cluster) = deployed() else { return };
    cluster.pgk8s(["migrate"]).succeeds();
    let holder = cluster
        .pod_shell(POD, "PGPASSWORD=\"$(cat /opt/bitnami/postgresql/secrets/postgres-password)\" PGAPPNAME=lock-holder exec psql -X -q -U postgres -d learnflow -f -")
        .stdin("select pg_advisory_lock(8099560344947091314);\nselect pg_sleep(8);\n");
    let holding = std::thread::spawn(move || holder.run());
    let held = "select count(*) from pg_locks where locktype = 'advisory' and granted;";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sql(&cluster, held) != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the test session never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let timed_out = cluster.pgk8s(["migrate", "--lock-timeout", "1s"]).expect(7);
    assert!(
        timed_out
            .stderr
            .contains("another migration run held the lock for over 1s (pid "),
        "{}",
        timed_out.stderr
    );
    assert!(
        timed_out.stderr.contains("application lock-holder"),
        "{}",
        timed_out.stderr
    );
    holding.join().unwrap();
}

#[test]
fn no_transaction_files_run_concurrently_built_indexes() {
    let Some(cluster) = deployed() else { return };
    let dir = migrations(
        &cluster,
        "concurrently",
        &[
            ("001_t.sql", "create table t (id int);\n"),
            (
                "002_index.sql",
                "-- pgk8s:no-transaction\ncreate index concurrently t_id_idx on t (id);\n",
            ),
        ],
    );
    let applied = cluster
        .pgk8s(["migrate", "-m", dir.to_str().unwrap(), "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(applied["applied"][1]["no_transaction"], true);
    assert_eq!(
        sql(
            &cluster,
            "select indexname from pg_indexes where tablename = 't';"
        ),
        "t_id_idx"
    );
}

#[test]
fn one_migration_cannot_change_how_the_next_runs() {
    let Some(cluster) = deployed() else { return };
    let dir = migrations(
        &cluster,
        "hygiene",
        &[
            (
                "001_schema.sql",
                "create schema other;\nset search_path to other;\nset statement_timeout = 1;\n",
            ),
            (
                "002_table.sql",
                "create table plain (id int);\nselect pg_sleep(0.01);\n",
            ),
        ],
    );
    cluster
        .pgk8s(["migrate", "-m", dir.to_str().unwrap()])
        .succeeds();
    assert_eq!(
        sql(
            &cluster,
            "select table_schema from information_schema.tables where table_name = 'plain';"
        ),
        "public"
    );
}

#[test]
fn dry_run_target_baseline_and_guarded_down() {
    let Some(cluster) = deployed() else { return };
    let dry = cluster
        .pgk8s(["migrate", "--dry-run", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(dry["planned"].as_array().unwrap().len(), 7);
    assert_eq!(dry["planned"][0]["checksum"].as_str().unwrap().len(), 64);
    assert!(
        cluster.mutating_calls().is_empty(),
        "{:?}",
        cluster.mutating_calls()
    );
    assert_eq!(
        sql(
            &cluster,
            "select to_regclass('pgk8s.schema_history') is null;"
        ),
        "t"
    );
    cluster.pgk8s(["migrate", "up", "--target", "3"]).succeeds();
    assert_eq!(history(&cluster), "1,2,3");
    let refused = cluster.pgk8s(["migrate", "--rollback"]).expect(9);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    cluster.pgk8s(["migrate", "--rollback", "--yes"]).succeeds();
    assert_eq!(history(&cluster), "1,2");

    let dir = migrations(
        &cluster,
        "baseline",
        &[
            ("001_a.sql", "create table a ();"),
            ("002_b.sql", "create table b ();"),
            ("003_c.sql", "create table c ();"),
        ],
    );
    let dir_arg = dir.to_str().unwrap();
    let fresh = Cluster::start().unwrap();
    fresh.deploy(&["--skip-migrations"]);
    fresh.sql(
        "learnflow",
        POD,
        "learnflow",
        "create table a (); create table b ();",
    );
    fresh
        .pgk8s(["migrate", "baseline", "--version", "2", "-m", dir_arg])
        .succeeds();
    let status = fresh
        .pgk8s(["migrate", "status", "-m", dir_arg, "-o", "json"])
        .succeeds()
        .json();
    let states: Vec<&str> = status["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["baselined", "baselined", "pending"]);
    let up = fresh
        .pgk8s(["migrate", "-m", dir_arg, "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(up["applied"][0]["file"], "003_c.sql");
    let no_down = fresh
        .pgk8s(["migrate", "down", "-m", dir_arg, "--yes"])
        .expect(7);
    assert!(
        no_down
            .stderr
            .contains("cannot roll back 003_c.sql: there is no 003_c.down.sql"),
        "{}",
        no_down.stderr
    );
}

#[test]
fn an_unreachable_database_is_exit_8_after_the_wait() {
    let Some(cluster) = deployed() else { return };
    cluster.sim(["db-down", "learnflow", POD]).succeeds();
    let failed = cluster.pgk8s(["migrate", "--wait", "3s"]).expect(8);
    assert!(
        failed.stderr.contains("database connection failed"),
        "{}",
        failed.stderr
    );
    let missing = cluster
        .pgk8s(["migrate", "-n", "elsewhere", "--wait", "1s"])
        .expect(8);
    assert!(
        missing
            .stderr
            .contains("release postgresql has no PostgreSQL pod in namespace elsewhere"),
        "{}",
        missing.stderr
    );
    assert!(
        missing
            .stderr
            .contains("hint: deploy it with `pgk8s deploy -n elsewhere`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn seed_is_idempotent_and_update_existing_upserts() {
    let Some(cluster) = deployed() else { return };
    let before_migrate = cluster.pgk8s(["seed"]).expect(7);
    assert!(
        before_migrate.stderr.contains("run `pgk8s migrate` first"),
        "{}",
        before_migrate.stderr
    );
    cluster.pgk8s(["migrate"]).succeeds();
    let first = cluster.pgk8s(["seed", "-o", "json"]).succeeds().json();
    let second = cluster.pgk8s(["seed", "-o", "json"]).succeeds().json();
    assert_eq!(first["tables"], second["tables"]);
    let users = first["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|table| table["table"] == "users")
        .unwrap();
    assert_eq!(users["rows"], 5);
    sql(
        &cluster,
        "update users set display_name = 'Changed' where username = 'alice';",
    );
    cluster.pgk8s(["seed"]).succeeds();
    assert_eq!(
        sql(
            &cluster,
            "select display_name from users where username = 'alice';"
        ),
        "Changed"
    );
    cluster.pgk8s(["seed", "--update-existing"]).succeeds();
    assert_eq!(
        sql(
            &cluster,
            "select display_name from users where username = 'alice';"
        ),
        "Alice Johnson"
    );
    let file = cluster.path().join("extra.sql");
    std::fs::write(&file, "insert into users (username, email) values ('extra', 'extra@example.com') on conflict do nothing;\nselect nope;\n").unwrap();
    let failed = cluster
        .pgk8s(["seed", "-f", file.to_str().unwrap()])
        .expect(7);
    assert!(
        failed.stderr.contains("failed at line 2"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        sql(
            &cluster,
            "select count(*) from users where username = 'extra';"
        ),
        "0",
        "one transaction"
    );
    let dry = cluster
        .pgk8s(["seed", "--dry-run", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(dry["files"].as_array().unwrap().len(), 4);
}

#[test]
fn database_url_transport_reaches_the_same_database_without_exposing_the_password() {
    let Some(mut cluster) = deployed() else {
        return;
    };
    let port = cluster
        .sim(["port", "learnflow", POD])
        .succeeds()
        .stdout
        .trim()
        .to_string();
    // A password that percent-encoding changes, so every form of it is tried.
    let password = "Canary7Pct:42/x y";
    let encoded = "Canary7Pct%3A42%2Fx%20y";
    cluster.sql(
        "learnflow",
        POD,
        "learnflow",
        &format!("ALTER ROLE learnflow PASSWORD '{password}'"),
    );
    cluster.set_env("PGK8S_SIM_CANARY", "Canary7Pct");
    cluster.clear_calls();
    // A psql wrapper that records what pgk8s hands the local psql: argv, then environment.
    let argv_record = cluster.path().join("psql-argv.txt");
    let env_record = cluster.path().join("psql-env.txt");
    let wrapper = cluster.path().join("psql-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {argv}\nenv >> {env}\nexec psql \"$@\"\n",
            argv = argv_record.display(),
            env = env_record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let wrapped = wrapper.to_str().unwrap();
    let in_user_info = format!("postgresql://learnflow:{encoded}@127.0.0.1:{port}/learnflow");
    let migrated = cluster
        .pgk8s(["migrate", "-o", "json", "-vv"])
        .env("PGK8S_DATABASE_URL", &in_user_info)
        .env("PGK8S_PSQL", wrapped)
        .succeeds();
    assert_eq!(migrated.json()["applied"].as_array().unwrap().len(), 7);
    assert_eq!(
        migrated.json()["transport"],
        format!("postgresql://learnflow@127.0.0.1:{port}/learnflow")
    );
    assert_eq!(cluster.exec_calls(), 0);
    assert_eq!(history(&cluster), "1,2,3,4,5,6,7");
    // The same password as a query parameter is a secret too.
    let in_query = format!(
        "postgresql://learnflow@127.0.0.1:{port}/learnflow?password={encoded}&application_name=x"
    );
    let status = cluster
        .pgk8s(["migrate", "status", "-o", "json", "-vv"])
        .env("PGK8S_DATABASE_URL", &in_query)
        .env("PGK8S_PSQL", wrapped)
        .succeeds();
    assert_eq!(status.json()["current_version"], 7);
    // psql's argv never holds it; of its environment, only PGPASSWORD does.
    let argv = std::fs::read_to_string(&argv_record).unwrap();
    assert!(!argv.contains("Canary7Pct"), "{argv}");
    let env = std::fs::read_to_string(&env_record).unwrap();
    for line in env
        .lines()
        .filter(|line| line.contains("Canary7Pct") && !line.starts_with("PGK8S_SIM_"))
    {
        assert_eq!(line, format!("PGPASSWORD={password}"), "psql's environment");
    }
    assert!(env.contains("PGPASSWORD="), "{env}");
    // Commands that also call kubectl and helm strip the URL from their environment.
    cluster.clear_calls();
    let verified = cluster
        .pgk8s(["verify", "-vv", "-o", "json"])
        .env("PGK8S_DATABASE_URL", &in_user_info)
        .env("PGK8S_PSQL", wrapped)
        .succeeds();
    assert!(!cluster.calls().is_empty());
    for (finished, form) in [
        (&migrated, password),
        (&status, encoded),
        (&verified, encoded),
    ] {
        cluster.assert_secret_absent(form, &[finished]);
        cluster.assert_secret_absent("Canary7Pct", &[finished]);
    }
    let wrong = format!("postgresql://learnflow:wrong@127.0.0.1:{port}/learnflow");
    let refused = cluster
        .pgk8s(["migrate", "status", "--wait", "30s"])
        .env("PGK8S_DATABASE_URL", &wrong)
        .expect(8);
    assert!(
        refused.stderr.contains("password authentication failed")
            && !refused.stderr.contains("retrying"),
        "a wrong password fails at once, without retries: {}",
        refused.stderr
    );
    let malformed = cluster
        .pgk8s(["migrate"])
        .env("PGK8S_DATABASE_URL", "mysql://secret-pass@x/db")
        .expect(64);
    assert!(
        !malformed.stderr.contains("secret-pass"),
        "{}",
        malformed.stderr
    );
}

#[test]
fn an_exec_dropped_mid_migration_leaves_a_consistent_history() {
    let Some(cluster) = deployed() else { return };
    // Drop the stream part-way through the LearnFlow set (it is ~9 KiB of SQL).
    let dropped = cluster
        .pgk8s(["migrate"])
        .env("PGK8S_FAKE_EXEC_DROP_AFTER", "4500")
        .expect(7);
    assert!(
        dropped.stderr.contains("lost the database session"),
        "{}",
        dropped.stderr
    );
    let applied = history(&cluster);
    let count = applied
        .split(',')
        .filter(|version| !version.is_empty())
        .count();
    assert!(count < 7, "the drop happened mid-run: {applied}");
    let resumed = cluster.pgk8s(["migrate", "-o", "json"]).succeeds().json();
    assert_eq!(resumed["applied"].as_array().unwrap().len(), 7 - count);
    assert_eq!(history(&cluster), "1,2,3,4,5,6,7");
}

#[test]
fn timeout_is_a_deadline_for_the_whole_run_even_when_a_statement_waits_on_a_lock() {
    let Some(cluster) = deployed() else { return };
    let dir = migrations(
        &cluster,
        "locked",
        &[
            ("001_table.sql", "create table busy (id int);\n"),
            ("002_alter.sql", "alter table busy add column note text;\n"),
        ],
    );
    cluster
        .pgk8s(["migrate", "-m", dir.to_str().unwrap(), "--target", "1"])
        .succeeds();
    // Another session holds the table for a minute.
    let holder = cluster
        .kubectl([
            "exec", "-i", POD, "-c", "postgresql", "-n", "learnflow", "--", "sh", "-c",
            "PGPASSWORD=\"$(cat /opt/bitnami/postgresql/secrets/postgres-password)\" exec psql -X -q -U postgres -d learnflow -c 'begin; lock table busy; select pg_sleep(60);'",
        ]);
    let holder = std::thread::spawn(move || holder.run());
    let locked = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sql(
        &cluster,
        "select count(*) from pg_locks where relation = 'busy'::regclass and mode = 'AccessExclusiveLock' and granted",
    ) != "1"
    {
        assert!(
            std::time::Instant::now() < locked,
            "the lock was never taken"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let started = std::time::Instant::now();
    let timed_out = cluster
        .pgk8s(["migrate", "-m", dir.to_str().unwrap(), "--timeout", "3s"])
        .expect(4);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(12),
        "ran {took:?} past a 3s deadline"
    );
    assert!(
        timed_out.stderr.contains("timed out after 3s")
            && timed_out.stderr.contains("002_alter.sql"),
        "the error names the step: {}",
        timed_out.stderr
    );
    assert_eq!(history(&cluster), "1", "nothing half-applied");
    assert_eq!(
        sql(
            &cluster,
            "select count(*) from pg_stat_activity where query like 'alter table busy%'"
        ),
        "0",
        "the blocked statement is not left waiting on the server"
    );
    drop(holder);
}

#[test]
fn a_migration_that_commits_by_itself_is_refused_before_anything_runs() {
    let Some(cluster) = deployed() else { return };
    for (name, text, statement) in [
        (
            "commit",
            "create table a (id int);\ncommit;\ncreate table b (id int);\n",
            "COMMIT",
        ),
        (
            "begin",
            "-- a comment\nBEGIN;\ncreate table a (id int);\n",
            "BEGIN",
        ),
        (
            "rollback",
            "create table a (id int);\nrollback;\n",
            "ROLLBACK",
        ),
    ] {
        let dir = migrations(&cluster, name, &[("001_tx.sql", text)]);
        cluster.clear_calls();
        let refused = cluster
            .pgk8s(["migrate", "-m", dir.to_str().unwrap()])
            .expect(64);
        assert!(
            refused.stderr.contains(statement)
                && refused.stderr.contains("-- pgk8s:no-transaction"),
            "{}",
            refused.stderr
        );
        assert!(cluster.calls().is_empty(), "nothing ran");
    }
    // Savepoints stay inside the transaction, function bodies are not statements of the file,
    // and a file that asks to run without a transaction may manage its own.
    let allowed = migrations(
        &cluster,
        "allowed",
        &[
            (
                "001_savepoint.sql",
                "create table a (id int);\nsavepoint s;\nrollback to savepoint s;\n",
            ),
            (
                "002_function.sql",
                "create function f() returns int language plpgsql as $$ begin return 1; end $$;\n",
            ),
            (
                "003_own.sql",
                "-- pgk8s:no-transaction\nbegin;\ncreate table c (id int);\ncommit;\n",
            ),
        ],
    );
    cluster
        .pgk8s(["migrate", "-m", allowed.to_str().unwrap()])
        .succeeds();
    assert_eq!(history(&cluster), "1,2,3");
}

#[test]
fn a_file_that_would_take_over_the_session_is_refused_before_anything_runs() {
    let Some(cluster) = deployed() else { return };
    // Each would act on pgk8s's psql session instead of the database: stop error handling,
    // include a file from the pod, or read the rest of the session (pgk8s's own bookkeeping
    // included) as rows until the deadline.
    for (name, text, expected) in [
        (
            "set",
            "create table a (id int);\n\\set ON_ERROR_STOP off\nselect 1/0;\n",
            "001_x.sql line 2: `\\set` is a psql meta-command",
        ),
        (
            "include",
            "-- shared setup\n\\i /etc/passwd\n",
            "001_x.sql line 2: `\\i` is a psql meta-command",
        ),
        (
            "copy",
            "create table a (id int);\ncopy a (id)\n  from stdin;\n1\n\\.\n",
            "001_x.sql line 3: `COPY … FROM STDIN`",
        ),
        (
            "meta-after-sql",
            "select 1; \\gexec\n",
            "001_x.sql line 1: `\\gexec`",
        ),
    ] {
        let dir = migrations(&cluster, name, &[("001_x.sql", text)]);
        cluster.clear_calls();
        let refused = cluster
            .pgk8s(["migrate", "-m", dir.to_str().unwrap()])
            .expect(64);
        assert!(
            refused.stderr.contains(expected),
            "{name}: {}",
            refused.stderr
        );
        assert!(cluster.calls().is_empty(), "{name}: nothing ran");
    }
    let seed = cluster.path().join("rows.sql");
    std::fs::write(
        &seed,
        "insert into t values (1);\n\\copy t from 'rows.csv' csv\n",
    )
    .unwrap();
    let refused = cluster
        .pgk8s(["seed", "-f", seed.to_str().unwrap()])
        .expect(64);
    assert!(
        refused
            .stderr
            .contains("rows.sql line 2: `\\copy` is a psql meta-command")
            && refused.stderr.contains("pgk8s psql"),
        "{}",
        refused.stderr
    );
    assert!(cluster.calls().is_empty(), "nothing ran");
    // Backslashes inside strings and comments, and COPY to STDOUT, are SQL like any other.
    let allowed = migrations(
        &cluster,
        "allowed",
        &[(
            "001_ok.sql",
            "create table a (t text);\ninsert into a values (E'tab\\there'), ('\\'); -- \\set\ncopy a to stdout;\n",
        )],
    );
    cluster
        .pgk8s(["migrate", "-m", allowed.to_str().unwrap()])
        .succeeds();
    assert_eq!(history(&cluster), "1");
}

#[test]
fn versions_beyond_bigint_are_refused_up_front() {
    let Some(cluster) = deployed() else { return };
    let dir = migrations(
        &cluster,
        "huge",
        &[("99999999999999999999_x.sql", "select 1;\n")],
    );
    let refused = cluster
        .pgk8s(["migrate", "-m", dir.to_str().unwrap()])
        .expect(64);
    assert!(refused.stderr.contains("bigint"), "{}", refused.stderr);
    let dir = migrations(
        &cluster,
        "edge",
        &[("9223372036854775808_x.sql", "select 1;\n")],
    );
    cluster
        .pgk8s(["migrate", "-m", dir.to_str().unwrap()])
        .expect(64);
    cluster
        .pgk8s(["migrate", "--target", "9223372036854775808"])
        .expect(64);
    cluster
        .pgk8s(["migrate", "down", "--to", "18446744073709551615"])
        .expect(64);
    assert!(cluster.calls().is_empty());
}

#[test]
fn kill_9_anywhere_in_a_migrate_run_leaves_a_history_the_next_run_completes() {
    let Some(cluster) = deployed() else { return };
    for (round, delay_ms) in [200u64, 500, 800, 1100].into_iter().enumerate() {
        let mut child = cluster
            .background(&["migrate"])
            .env("PGK8S_FAKE_LATENCY_MS", "300")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Every recorded version has its tables, and no table exists without its version.
        let recorded = sql(
            &cluster,
            "select to_regclass('pgk8s.schema_history') is not null",
        );
        let applied = if recorded == "t" {
            history(&cluster)
        } else {
            String::new()
        };
        let users = sql(&cluster, "select to_regclass('public.users') is not null");
        assert_eq!(
            users == "t",
            applied.split(',').any(|version| version == "2"),
            "round {round}: history {applied:?} disagrees with the schema"
        );
        let resumed = cluster
            .pgk8s(["migrate", "-o", "json", "--lock-timeout", "20s"])
            .succeeds()
            .json();
        assert_eq!(resumed["current_version"], 7, "round {round}");
        cluster
            .pgk8s([
                "migrate",
                "down",
                "--to",
                "0",
                "--yes",
                "--lock-timeout",
                "20s",
            ])
            .succeeds();
    }
}

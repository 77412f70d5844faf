//! Lifecycle on the simulated cluster: growing the volumes (`resize`), moving to another
//! PostgreSQL major (`upgrade`), and `deploy` refusing to walk into either trap. Every pod runs
//! the real PostgreSQL major of its image tag, so an upgrade moves real data between two real
//! servers.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;

const POD: &str = "postgresql-0";

/// The two highest majors a pod can run here (old, new); None (skipped outside CI) when only one
/// is installed.
fn two_majors(cluster: &Cluster) -> Option<(u32, u32)> {
    let majors: Vec<u32> = cluster
        .majors()
        .into_iter()
        .map(|(major, _)| major)
        .collect();
    let available = majors.len() >= 2;
    if !common::require(
        "two PostgreSQL majors",
        available,
        "bash scripts/get-postgres.sh 17 18",
    ) {
        return None;
    }
    Some((majors[majors.len() - 2], majors[majors.len() - 1]))
}

fn assert_no_changes(cluster: &Cluster, why: &str) {
    let calls = cluster.mutating_calls();
    assert!(calls.is_empty(), "{why}: {calls:?}");
}

fn sql(cluster: &Cluster, query: &str) -> String {
    cluster.sql("learnflow", POD, "learnflow", query)
}

/// Row counts of the LearnFlow tables and the migration history, as one comparable text.
fn fingerprint(cluster: &Cluster) -> String {
    sql(
        cluster,
        "select (select count(*) from users) || ' users, ' || (select count(*) from progress) \
         || ' progress, ' || (select count(*) from exercises) || ' exercises, history ' \
         || (select string_agg(version || ':' || checksum, ',' order by version) from pgk8s.schema_history)",
    )
}

fn claims(cluster: &Cluster) -> Vec<String> {
    let listed = cluster
        .kubectl(["get", "pvc", "-n", "learnflow", "-o", "json"])
        .succeeds()
        .json();
    listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|claim| claim["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn release_values(cluster: &Cluster, release: &str) -> serde_json::Value {
    cluster
        .helm(["get", "values", release, "-n", "learnflow", "-o", "json"])
        .succeeds()
        .json()
}

fn secret_annotations(cluster: &Cluster) -> serde_json::Value {
    cluster.object("secret/postgresql-credentials")["metadata"]["annotations"].clone()
}

/// Puts a major-upgrade record on the credentials Secret, as a run cut short leaves it.
fn put_upgrade_record(cluster: &Cluster, record: &serde_json::Value) {
    let patch = serde_json::json!({"metadata": {"annotations": {
        pgk8s::major_upgrade::RECORD_ANNOTATION: record.to_string()
    }}});
    cluster
        .kubectl([
            "patch",
            "secret/postgresql-credentials",
            "-n",
            "learnflow",
            "--type",
            "merge",
            "-p",
            &patch.to_string(),
        ])
        .succeeds();
}

/// The record a killed upgrade left, with its run's deadline passed.
fn expire_upgrade_record(cluster: &Cluster) {
    let text = secret_annotations(cluster)[pgk8s::major_upgrade::RECORD_ANNOTATION]
        .as_str()
        .expect("an upgrade record")
        .to_string();
    let mut record: serde_json::Value = serde_json::from_str(&text).unwrap();
    record["until"] = "2000-01-01T00:00:00Z".into();
    put_upgrade_record(cluster, &record);
}

#[test]
fn resize_grows_every_volume_in_place_and_refuses_what_cannot_be_done() {
    let cluster = cluster_or_skip!();
    cluster.deploy(&[
        "--seed",
        "--storage-class",
        "expandable",
        "--storage-size",
        "1Gi",
    ]);
    // A neighbour in the same namespace, on the default class (which cannot expand).
    cluster.deploy(&["-r", "postgresql-test", "--skip-migrations"]);
    let before = fingerprint(&cluster);

    // deploy with another size says what to do before changing anything.
    cluster.clear_calls();
    let refused = cluster
        .pgk8s([
            "deploy",
            "--storage-class",
            "expandable",
            "--storage-size",
            "2Gi",
        ])
        .expect(64);
    assert!(
        refused.stderr.contains("pgk8s resize"),
        "{}",
        refused.stderr
    );
    assert_no_changes(&cluster, "refused before any change");

    let dry = cluster
        .pgk8s(["resize", "--storage-size", "2Gi", "--dry-run", "-o", "json"])
        .succeeds();
    assert_no_changes(&cluster, "a dry run changes nothing");
    assert_eq!(dry.json()["volumes"][0]["name"], "data-postgresql-0");

    let resized = cluster
        .pgk8s([
            "resize",
            "--storage-size",
            "2Gi",
            "--timeout",
            "60s",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert_eq!(resized["volumes"][0]["from"], "1Gi");
    assert_eq!(
        resized["restarted_pods"],
        serde_json::json!([]),
        "PostgreSQL kept running"
    );
    let claim = cluster.object("pvc/data-postgresql-0");
    assert_eq!(claim["status"]["capacity"]["storage"], "2Gi");
    assert_eq!(
        release_values(&cluster, "postgresql")["primary"]["persistence"]["size"],
        "2Gi",
        "the release records the size, so the next deploy agrees"
    );
    assert_eq!(fingerprint(&cluster), before);
    let neighbour = cluster.object("pvc/data-postgresql-test-0");
    assert_eq!(neighbour["spec"]["resources"]["requests"]["storage"], "8Gi");

    // Idempotent, and the next deploy with the new size has nothing to change.
    let again = cluster
        .pgk8s(["resize", "--storage-size", "2Gi", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(again["steps"], serde_json::json!([]));
    cluster.deploy(&["--storage-class", "expandable", "--storage-size", "2Gi"]);
    // A deploy that does not name a size keeps the release's.
    let kept = cluster
        .pgk8s(["deploy", "--storage-class", "expandable", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(kept["release_action"], "unchanged");

    // A run stopped while the volumes grow: the next one waits for the capacity it asked for,
    // rather than calling a volume grown because its request says so.
    cluster
        .pgk8s(["resize", "--storage-size", "3Gi", "--timeout", "2s"])
        .env("PGK8S_FAKE_RESIZE_PENDING_MS", "4000")
        .expect(4);
    let finished = cluster
        .pgk8s(["resize", "--storage-size", "3Gi", "-o", "json"])
        .succeeds()
        .json();
    assert!(
        finished["steps"]
            .to_string()
            .contains("wait until the volumes report 3Gi"),
        "{finished:#}"
    );
    let claim = cluster.object("pvc/data-postgresql-0");
    assert_eq!(claim["status"]["capacity"]["storage"], "3Gi");
    // deploy --resize does the same in one run.
    let grown = cluster
        .pgk8s([
            "deploy",
            "--storage-class",
            "expandable",
            "--storage-size",
            "4Gi",
            "--resize",
            "-o",
            "json",
        ])
        .succeeds()
        .json();
    assert_eq!(grown["release_action"], "upgraded");
    assert_eq!(
        cluster.object("pvc/data-postgresql-0")["status"]["capacity"]["storage"],
        "4Gi"
    );
    assert_eq!(
        release_values(&cluster, "postgresql")["primary"]["persistence"]["size"],
        "4Gi"
    );

    // A run stopped between replacing the StatefulSet and helm: verify says so, and a deploy
    // puts it back (the pod is adopted, its data intact).
    cluster
        .kubectl([
            "delete",
            "statefulset/postgresql",
            "-n",
            "learnflow",
            "--cascade=orphan",
        ])
        .succeeds();
    let verify = cluster.pgk8s(["verify", "-o", "json"]).expect(5).json();
    assert!(
        verify["issues"].to_string().contains("statefulset_missing"),
        "{verify:#}"
    );
    let redeployed = cluster
        .pgk8s(["deploy", "--storage-class", "expandable", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(redeployed["release_action"], "upgraded");
    cluster.pgk8s(["verify"]).succeeds();
    assert_eq!(fingerprint(&cluster), before);

    cluster.clear_calls();
    let shrink = cluster
        .pgk8s(["resize", "--storage-size", "1Gi"])
        .expect(64);
    assert!(shrink.stderr.contains("only grow"), "{}", shrink.stderr);
    let fixed = cluster
        .pgk8s(["resize", "-r", "postgresql-test", "--storage-size", "20Gi"])
        .expect(6);
    assert!(
        fixed.stderr.contains("StorageClass standard")
            && fixed.stderr.contains("allowVolumeExpansion"),
        "{}",
        fixed.stderr
    );
    assert_no_changes(&cluster, "refused before any change");
}

#[test]
fn deploy_refuses_another_major_and_verify_names_a_crash_looping_one() {
    let cluster = cluster_or_skip!();
    let Some((old, new)) = two_majors(&cluster) else {
        return;
    };
    let old_image = format!("bitnamilegacy/postgresql:{old}");
    cluster.deploy(&["--image", &old_image]);
    cluster.clear_calls();
    let refused = cluster
        .pgk8s([
            "deploy",
            "--image",
            &format!("bitnamilegacy/postgresql:{new}"),
        ])
        .expect(9);
    assert!(
        refused
            .stderr
            .contains(&format!("pgk8s upgrade --postgres-version {new}")),
        "{}",
        refused.stderr
    );
    assert_no_changes(&cluster, "refused before any change");

    // Someone upgrades the image with helm by hand: the new server refuses the old data.
    let values = release_values(&cluster, "postgresql");
    let mut changed = values.clone();
    changed["image"]["tag"] = serde_json::json!(new.to_string());
    cluster
        .helm_values(&serde_json::to_string(&changed).unwrap(), "1s")
        .expect(1);
    let verify = cluster.pgk8s(["verify", "-o", "json"]).expect(5).json();
    let issue = verify["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|issue| issue["code"] == "data_version_mismatch")
        .unwrap_or_else(|| panic!("no data_version_mismatch: {verify:#}"));
    assert!(
        issue["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("pgk8s upgrade"),
        "{issue:#}"
    );
}

#[test]
fn a_major_upgrade_keeps_every_row_the_history_and_the_password() {
    let cluster = cluster_or_skip!();
    let Some((old, new)) = two_majors(&cluster) else {
        return;
    };
    cluster.deploy(&[
        "--seed",
        "--image",
        &format!("bitnamilegacy/postgresql:{old}"),
    ]);
    assert_eq!(cluster.pod_major("learnflow", POD), old);
    let before = fingerprint(&cluster);
    let backups = cluster.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let backup_dir = backups.display().to_string();
    let new_version = new.to_string();
    let upgrade = |extra: &[&str]| {
        let mut args = vec![
            "upgrade",
            "--postgres-version",
            &new_version,
            "--backup-dir",
            &backup_dir,
            "--timeout",
            "120s",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        cluster.pgk8s(args)
    };

    cluster.clear_calls();
    let dry = upgrade(&["--dry-run"]).succeeds().json();
    assert_no_changes(&cluster, "a dry run changes nothing");
    assert_eq!(dry["kind"], "move");
    assert!(
        dry["value_changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|change| change.as_str().unwrap().starts_with("image.tag:")),
        "{dry:#}"
    );
    let refused = upgrade(&[]).expect(9);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);

    let started = Instant::now();
    let done = upgrade(&["--yes"]).succeeds();
    let report = done.json();
    assert_eq!(report["kind"], "move");
    assert_eq!(report["from"]["postgres_major"], old);
    assert_eq!(report["to"]["postgres_major"], new);
    assert!(report["downtime_ms"].as_u64().unwrap() <= started.elapsed().as_millis() as u64);
    assert_eq!(cluster.pod_major("learnflow", POD), new);
    assert_eq!(
        fingerprint(&cluster),
        before,
        "every row and the history moved"
    );
    let backup = std::path::PathBuf::from(report["backup"].as_str().unwrap());
    assert!(
        backup.is_file() && backup.starts_with(&backups),
        "{backup:?}"
    );
    let volumes = claims(&cluster);
    let moved_to = format!("data-postgresql-0-pg{new}");
    assert!(
        volumes.contains(&"data-postgresql-0".to_string()) && volumes.contains(&moved_to),
        "the old volume is kept beside the new one: {volumes:?}"
    );
    assert_eq!(
        release_values(&cluster, "postgresql")["primary"]["persistence"]["existingClaim"],
        moved_to.as_str()
    );
    assert!(
        secret_annotations(&cluster)
            .get(pgk8s::major_upgrade::RECORD_ANNOTATION)
            .is_none()
    );
    // The application user logs in with the password of the Secret, which did not change.
    let verify = cluster
        .pgk8s(["verify", "--check-schema", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(verify["healthy"], true, "{verify:#}");
    // Done is done; and a later deploy keeps the release where the upgrade put it.
    let again = upgrade(&["--yes"]).succeeds().json();
    assert_eq!(again["kind"], "none");
    // A later resize grows the volume the release mounts, never the one the upgrade kept.
    let resize = cluster
        .pgk8s(["resize", "--storage-size", "20Gi", "--dry-run"])
        .expect(6);
    assert!(
        resize
            .stderr
            .contains(&format!("volume {moved_to} cannot grow")),
        "{}",
        resize.stderr
    );
    // A run cut short after the data moved and was verified is finished forward, never rolled
    // back: what the new server took since stays.
    sql(
        &cluster,
        "create table written_after (id int); insert into written_after values (1);",
    );
    put_upgrade_record(
        &cluster,
        &serde_json::json!({
            "from_major": old, "to_major": new, "image": {"repository": "bitnamilegacy/postgresql", "tag": old.to_string()},
            "global": null, "existing_claim": null, "chart_version": "17.1.0",
            "new_claim": moved_to, "backup": backup.display().to_string(),
            "until": "2000-01-01T00:00:00Z", "verified": true
        }),
    );
    cluster.pgk8s(["deploy"]).expect(9);
    cluster
        .pgk8s(["resize", "--storage-size", "20Gi"])
        .expect(9);
    let finished = upgrade(&[]).succeeds().json();
    assert_eq!(finished["finished_interrupted"], format!("{old} -> {new}"));
    assert_eq!(finished["kind"], "none");
    assert_eq!(cluster.pod_major("learnflow", POD), new);
    assert_eq!(sql(&cluster, "select count(*) from written_after"), "1");
    assert!(
        secret_annotations(&cluster)
            .get(pgk8s::major_upgrade::RECORD_ANNOTATION)
            .is_none()
    );
    cluster.deploy(&["--image", &format!("bitnamilegacy/postgresql:{new}")]);
    assert_eq!(cluster.pod_major("learnflow", POD), new);
    assert_eq!(fingerprint(&cluster), before);
}

#[test]
fn a_failed_or_killed_upgrade_comes_back_on_the_old_volume() {
    let mut cluster = cluster_or_skip!();
    let Some((old, new)) = two_majors(&cluster) else {
        return;
    };
    cluster.deploy(&[
        "--seed",
        "--image",
        &format!("bitnamilegacy/postgresql:{old}"),
    ]);
    let before = fingerprint(&cluster);
    let new_version = new.to_string();
    let backup_dir = cluster.path().display().to_string();
    let args = [
        "upgrade",
        "--postgres-version",
        new_version.as_str(),
        "--backup-dir",
        backup_dir.as_str(),
        "--timeout",
        "120s",
        "--yes",
    ];

    // The connection drops while the backup streams into the new server.
    let failed = cluster
        .pgk8s(args)
        .env("PGK8S_FAKE_EXEC_DROP_AFTER", "8000")
        .run();
    assert_ne!(failed.code(), Some(0), "{}", failed.stderr);
    assert!(
        failed.stderr.contains("was rolled back")
            && failed
                .stderr
                .contains(&format!("PostgreSQL {old} on volume data-postgresql-0")),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("pg_restore"),
        "it failed in the restore: {}",
        failed.stderr
    );
    assert_eq!(cluster.pod_major("learnflow", POD), old);
    assert_eq!(
        fingerprint(&cluster),
        before,
        "the old release serves its data"
    );
    assert!(!claims(&cluster).contains(&format!("data-postgresql-0-pg{new}")));
    cluster.pgk8s(["verify"]).succeeds();

    // Killed outright while helm starts the new server: the next run rolls back, then upgrades.
    let mut background = cluster.background(&args);
    background
        .env("PGK8S_FAKE_HELM_WAIT_MS", "30000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = background.spawn().expect("pgk8s starts");
    let waited = Instant::now();
    while !cluster
        .helm(["status", "postgresql", "-n", "learnflow", "-o", "json"])
        .run()
        .stdout
        .contains("pending-upgrade")
    {
        assert!(waited.elapsed() < Duration::from_secs(90), "helm never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    let _ = child.wait();
    cluster.kill_last_helm_upgrade();
    let verify = cluster.pgk8s(["verify", "-o", "json"]).expect(5).json();
    assert!(
        verify["issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|issue| issue["code"] == "upgrade_interrupted"),
        "{verify:#}"
    );
    cluster
        .sim(["age-release", "learnflow", "postgresql", "600"])
        .succeeds();
    // Until the killed run's deadline has passed, it may still be at work: nothing touches it.
    for command in [vec!["deploy"], args.to_vec()] {
        let refused = cluster.pgk8s(&command).expect(9);
        assert!(
            refused.stderr.contains("may still be running"),
            "{}",
            refused.stderr
        );
    }
    expire_upgrade_record(&cluster);
    let refused = cluster.pgk8s(["deploy"]).expect(9);
    assert!(
        refused.stderr.contains("was interrupted"),
        "{}",
        refused.stderr
    );
    cluster.unset_env("PGK8S_FAKE_HELM_WAIT_MS");
    // Rolling back deletes what the interrupted run restored: not without a confirmation.
    let unconfirmed: Vec<&str> = args.iter().copied().filter(|arg| *arg != "--yes").collect();
    cluster.clear_calls();
    let refused = cluster.pgk8s(&unconfirmed).expect(9);
    assert!(refused.stderr.contains("roll back"), "{}", refused.stderr);
    assert_no_changes(&cluster, "an unconfirmed rollback changes nothing");
    let mut json_args = args.to_vec();
    json_args.extend(["-o", "json"]);
    let repaired = cluster.pgk8s(json_args).succeeds().json();
    assert_eq!(
        repaired["rolled_back_interrupted"],
        format!("{old} -> {new}")
    );
    assert_eq!(cluster.pod_major("learnflow", POD), new);
    assert_eq!(fingerprint(&cluster), before);
}

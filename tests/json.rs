//! The JSON documents are a contract: every command's `-o json` output, and the error document,
//! is snapshotted (insta), so a renamed or dropped field shows up in review. Values that change
//! from run to run (times, durations, sizes, checksums of dumps, paths, server versions) are
//! normalised first; the shape and every stable value stay.

mod common;

use serde_json::Value;

use common::Cluster;

/// Fields whose values vary between runs, and what they are shown as.
const VOLATILE: [(&str, &str); 17] = [
    ("duration_ms", "<ms>"),
    ("elapsed_ms", "<ms>"),
    ("execution_ms", "<ms>"),
    ("applied_at", "<time>"),
    ("created_at", "<time>"),
    ("started_at", "<time>"),
    ("updated", "<time>"),
    ("server_version", "<version>"),
    ("database_size_bytes", "<bytes>"),
    ("connections", "<count>"),
    ("max_connections", "<count>"),
    ("size_bytes", "<bytes>"),
    ("sha256", "<sha256>"),
    ("port", "<port>"),
    ("pgk8s_version", "<version>"),
    ("transport", "<transport>"),
    ("helm", "<helm major>"),
];

fn normalise(value: &mut Value, scratch: &str) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                match VOLATILE.iter().find(|(name, _)| name == key) {
                    Some((_, shown)) if !field.is_null() => *field = Value::from(*shown),
                    _ => normalise(field, scratch),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| normalise(item, scratch)),
        Value::String(text) if text.contains(scratch) => {
            *text = text.replace(scratch, "<scratch>");
        }
        // The server's version string (`PostgreSQL 17.10`, `PostgreSQL 15.18 (Debian …)`): the
        // pod runs whichever major the machine has for its image.
        Value::String(text) if text.contains("(PostgreSQL ") => {
            if let Some(start) = text.find("(PostgreSQL ") {
                *text = format!("{}(PostgreSQL <version>)", &text[..start]);
            }
        }
        _ => {}
    }
}

/// Runs pgk8s with `-o json` and returns its one document, normalised.
fn document(cluster: &Cluster, args: &[&str], code: i32) -> String {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    let finished = cluster.pgk8s(&full).expect(code);
    let mut value = finished.json();
    normalise(&mut value, &cluster.path().display().to_string());
    serde_json::to_string_pretty(&value).expect("serialisable")
}

#[test]
fn every_commands_json_document_keeps_its_shape() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let dump = cluster.path().join("contract.dump");
    let dump = dump.to_str().unwrap();
    let skills = cluster.path().join("skills");
    let skills = skills.to_str().unwrap();
    let documents: Vec<(&str, Vec<&str>, i32)> = vec![
        ("deploy_dry_run", vec!["deploy", "--dry-run"], 0),
        ("deploy", vec!["deploy", "--timeout", "60s"], 0),
        ("deploy_unchanged", vec!["deploy", "--timeout", "60s"], 0),
        ("migrate_up_to_date", vec!["migrate"], 0),
        ("migrate_dry_run", vec!["migrate", "--dry-run"], 0),
        ("migrate_status", vec!["migrate", "status"], 0),
        (
            "migrate_down_dry_run",
            vec!["migrate", "down", "--dry-run"],
            0,
        ),
        (
            "migrate_repair_dry_run",
            vec!["migrate", "repair", "--dry-run"],
            0,
        ),
        ("seed_dry_run", vec!["seed", "--dry-run"], 0),
        ("seed", vec!["seed"], 0),
        ("verify", vec!["verify", "--check-schema"], 0),
        ("info", vec!["info"], 0),
        ("status", vec!["status"], 0),
        ("backup", vec!["backup", "-f", dump], 0),
        (
            "restore_dry_run",
            vec!["restore", "-f", dump, "--dry-run"],
            0,
        ),
        (
            "rotate_password_dry_run",
            vec!["rotate-password", "--dry-run"],
            0,
        ),
        (
            "undeploy_dry_run",
            vec!["undeploy", "--dry-run", "--delete-pvc"],
            0,
        ),
        (
            "skill_install",
            vec!["skill", "install", "--dir", skills],
            0,
        ),
        (
            "error_usage",
            vec!["deploy", "--image", "not an image", "--dry-run"],
            64,
        ),
        ("error_refused", vec!["undeploy", "--delete-pvc"], 9),
        (
            "verify_missing_release",
            vec!["verify", "--release", "absent"],
            5,
        ),
    ];
    for (name, args, code) in documents {
        insta::assert_snapshot!(format!("json_{name}"), document(&cluster, &args, code));
    }
}

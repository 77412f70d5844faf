//! The command-line surface: help for every command (snapshots), usage errors (exit 64),
//! version and completions. No cluster needed.

use assert_cmd::Command;

fn pgk8s() -> Command {
    let mut command = Command::cargo_bin("pgk8s").expect("binary");
    command.env("COLUMNS", "100");
    for (name, _) in std::env::vars() {
        if name.starts_with("PGK8S_") {
            command.env_remove(name);
        }
    }
    command
}

fn help_of(args: &[&str]) -> String {
    let output = pgk8s().args(args).arg("--help").output().expect("runs");
    assert!(output.status.success(), "{args:?} --help failed");
    assert!(output.stderr.is_empty(), "help wrote to stderr");
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn help_of_every_command_is_stable() {
    // Every command the parser knows, so a new one cannot ship without its help reviewed.
    fn walk(command: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for sub in command
            .get_subcommands()
            .filter(|sub| sub.get_name() != "help")
        {
            path.push(sub.get_name().to_string());
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut commands = Vec::new();
    walk(&pgk8s::cli::command(), &mut Vec::new(), &mut commands);
    assert!(
        commands.len() > 20,
        "the walk found {} commands",
        commands.len()
    );
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let name = if args.is_empty() {
            "pgk8s".to_string()
        } else {
            args.join("_")
        };
        insta::assert_snapshot!(format!("help_{name}"), help_of(&args));
    }
}

#[test]
fn top_level_help_lists_every_subcommand_and_the_exit_codes() {
    let help = help_of(&[]);
    for command in [
        "deploy",
        "undeploy",
        "migrate",
        "seed",
        "verify",
        "info",
        "status",
        "backup",
        "restore",
        "psql",
        "port-forward",
        "logs",
        "rotate-password",
        "skill",
        "completions",
    ] {
        assert!(
            help.contains(&format!("\n  {command} ")),
            "{command} missing from help"
        );
    }
    assert!(help.contains("64  usage error"));
}

#[test]
fn unknown_commands_and_bad_values_are_usage_errors_64() {
    let cases: &[&[&str]] = &[
        &["frobnicate"],
        &["deploy", "--namespace", "Bad_Namespace"],
        &["deploy", "--storage-size", "lots"],
        &["deploy", "--release", &"r".repeat(54)],
        &["verify", "--wait", "soon"],
        &["migrate", "--lock-timeout", "-5"],
        &["deploy", "--profile", "huge"],
    ];
    for args in cases {
        let output = pgk8s().args(*args).output().expect("runs");
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn version_prints_the_crate_version() {
    let output = pgk8s().arg("--version").output().expect("runs");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("pgk8s {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef pgk8s"),
        ("fish", "complete -c pgk8s"),
    ] {
        let output = pgk8s().args(["completions", shell]).output().expect("runs");
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains(marker), "{shell}: {script:.200}");
        assert!(
            script.contains("rotate-password"),
            "{shell} lacks subcommands"
        );
    }
}

#[test]
fn usage_errors_are_one_json_document_when_json_was_asked_for() {
    let output = pgk8s()
        .args(["deploy", "-o", "json", "--storage-size", "lots"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(64));
    let document: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(document["error"]["code"], 64);
    assert!(
        document["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lots")
    );
    let text = pgk8s()
        .args(["deploy", "--storage-size", "lots"])
        .output()
        .expect("runs");
    assert!(
        text.stdout.is_empty(),
        "text mode keeps stdout empty on errors"
    );
}

#[test]
fn each_commands_own_flags_come_first_and_local_commands_hide_cluster_flags() {
    let deploy = help_of(&["deploy"]);
    let own = deploy.find("--storage-size").expect("own flag");
    let headings: Vec<usize> = ["Cluster selection:", "Database:", "Output:", "Safety:"]
        .iter()
        .map(|heading| deploy.find(heading).unwrap_or_else(|| panic!("{heading}")))
        .collect();
    assert!(headings.iter().all(|heading| own < *heading), "{deploy}");
    for local in [&["skill", "install"][..], &["skill"], &["completions"]] {
        let help = help_of(local);
        for unused in [
            "--namespace",
            "--kubeconfig",
            "--database-url",
            "--timeout",
            "Cluster selection",
        ] {
            assert!(!help.contains(unused), "{local:?} lists {unused}:\n{help}");
        }
        assert!(help.contains("--output"), "{local:?}");
    }
    // Hidden, not refused: a global flag before or after them still parses.
    pgk8s()
        .args(["-n", "other", "completions", "bash"])
        .assert()
        .success();
}

#[test]
fn usage_errors_point_at_the_help_of_the_command_they_concern() {
    for (args, message, hint) in [
        (
            &["deploy", "--replicas", "-1"][..],
            "-1 is not in 0..=10",
            "see 'pgk8s deploy --help'",
        ),
        (
            &["migrate", "down", "--to", "x"],
            "invalid value 'x' for '--to <VERSION>'",
            "see 'pgk8s migrate down --help'",
        ),
        (
            &["-n", "learnflow", "migrate", "status", "--bogus"],
            "unexpected argument '--bogus'",
            "see 'pgk8s migrate status --help'",
        ),
    ] {
        let output = pgk8s().args(args).output().expect("runs");
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.lines().next().unwrap_or_default().contains(message) && stderr.contains(hint),
            "{args:?}:\n{stderr}"
        );
    }
}

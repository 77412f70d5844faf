//! The agent skill: frontmatter valid per the Agent Skills format, links resolve, size limits
//! hold, every command line it (and the README) quotes parses with the real CLI definition, and
//! `skill install` writes it safely.

mod common;

use std::path::Path;

use clap::Parser;
use pgk8s::cli::Cli;
use pgk8s::commands::skill::{SKILL_MD, SKILL_NAME, files};

fn frontmatter() -> (serde_json::Value, &'static str) {
    let rest = SKILL_MD
        .strip_prefix("---\n")
        .expect("SKILL.md starts with frontmatter");
    let (yaml, body) = rest
        .split_once("\n---\n")
        .expect("frontmatter ends with ---");
    (
        serde_yaml::from_str(yaml).expect("frontmatter is YAML"),
        body,
    )
}

#[test]
fn frontmatter_follows_the_agent_skills_format() {
    let (fields, _) = frontmatter();
    let name = fields["name"].as_str().expect("name");
    assert!((1..=64).contains(&name.len()));
    assert!(
        name.split('-').all(|part| !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())),
        "{name}"
    );
    assert_eq!(
        name, SKILL_NAME,
        "name equals the folder it is installed into"
    );
    let description = fields["description"].as_str().expect("description");
    assert!(!description.is_empty() && description.chars().count() <= 1024);
    assert!(description.contains("Use when"), "says when to use it");
    let compatibility = fields["compatibility"].as_str().expect("compatibility");
    assert!(
        compatibility.len() <= 500
            && compatibility.contains("kubectl")
            && compatibility.contains("helm")
    );
    assert!(fields["allowed-tools"].is_string());
    assert!(fields["license"].is_string());
    let known = [
        "name",
        "description",
        "license",
        "compatibility",
        "allowed-tools",
        "metadata",
    ];
    for key in fields.as_object().unwrap().keys() {
        assert!(
            known.contains(&key.as_str()),
            "unknown frontmatter field {key}"
        );
    }
}

#[test]
fn the_body_is_short_and_the_quick_start_shorter() {
    let (_, body) = frontmatter();
    assert!(body.lines().count() < 500);
    // About 1.3 tokens per word for English prose with code.
    let tokens = |text: &str| text.split_whitespace().count() * 13 / 10;
    assert!(tokens(body) < 5000, "{} tokens", tokens(body));
    let quick_start = body
        .split("## Quick start")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    assert!(
        tokens(quick_start) < 130,
        "quick start is {} tokens",
        tokens(quick_start)
    );
}

/// Relative markdown links `](target)` of `text`.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| !target.starts_with("http") && !target.starts_with('#'))
        .map(|target| target.split('#').next().unwrap().to_string())
        .collect()
}

#[test]
fn every_relative_link_resolves_one_level_deep() {
    let skill_links = links(SKILL_MD);
    assert!(skill_links.len() >= 4);
    let installed: Vec<String> = files()
        .iter()
        .map(|(path, _)| path.display().to_string())
        .collect();
    for link in &skill_links {
        assert!(
            link.starts_with("references/") && link.matches('/').count() == 1,
            "{link} is not one level deep"
        );
        assert!(installed.contains(link), "{link} is not part of the skill");
    }
    for (path, contents) in files() {
        let text = std::str::from_utf8(contents).unwrap();
        let base = path.parent().unwrap_or(Path::new(""));
        for link in links(text) {
            let target = base.join(&link);
            let normalized =
                target
                    .components()
                    .fold(std::path::PathBuf::new(), |mut acc, part| {
                        match part {
                            std::path::Component::ParentDir => {
                                acc.pop();
                            }
                            other => acc.push(other),
                        }
                        acc
                    });
            assert!(
                installed.contains(&normalized.display().to_string()),
                "{} links to {link}, which the skill does not contain",
                path.display()
            );
        }
    }
}

/// `pgk8s …` command lines inside ```sh blocks.
fn quoted_commands(markdown: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut in_shell = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_shell = line.trim() == "```sh";
            continue;
        }
        let line = line.split(" # ").next().unwrap().trim();
        if in_shell && line.starts_with("pgk8s ") {
            let words = shlex::split(line).unwrap_or_else(|| panic!("cannot split {line}"));
            let words: Vec<String> = words
                .into_iter()
                .take_while(|word| word != "|" && word != ">" && word != "<" && word != "&&")
                .collect();
            commands.push(words);
        }
    }
    commands
}

#[test]
fn every_command_in_the_skill_and_readme_parses_with_the_real_cli() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut commands = quoted_commands(SKILL_MD);
    assert!(commands.len() >= 10);
    commands.extend(quoted_commands(&readme));
    for table_row in readme
        .lines()
        .filter(|line| line.starts_with("| `") && line.contains("| `pgk8s "))
    {
        let example = table_row
            .split("| `pgk8s ")
            .nth(1)
            .unwrap()
            .split('`')
            .next()
            .unwrap();
        commands.push(shlex::split(&format!("pgk8s {example}")).unwrap());
    }
    for words in commands {
        let words: Vec<String> = words
            .into_iter()
            .map(|word| {
                if word.starts_with("$(") {
                    "x".into()
                } else {
                    word
                }
            })
            .collect();
        let words: Vec<&str> = words
            .iter()
            .map(String::as_str)
            .filter(|word| !word.starts_with("$("))
            .collect();
        let words: Vec<&str> = words
            .into_iter()
            .map(|word| if word == "NS" { "team-a" } else { word })
            .collect();
        if let Err(error) = Cli::try_parse_from(&words) {
            panic!("{words:?} does not parse: {error}");
        }
    }
}

#[test]
fn install_writes_the_skill_and_protects_local_edits() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pgk8s"))
            .args(["skill", "install", "--dir", dir.path().to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let first = run(&["-o", "json"]);
    assert!(first.status.success());
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|file| file["action"] == "created")
    );
    let installed = dir.path().join(SKILL_NAME);
    assert_eq!(
        std::fs::read_to_string(installed.join("SKILL.md")).unwrap(),
        SKILL_MD
    );
    for reference in [
        "bitnami_postgres_values.md",
        "migrations.md",
        "backup_restore.md",
        "troubleshooting.md",
    ] {
        assert!(
            installed.join("references").join(reference).is_file(),
            "{reference}"
        );
    }
    let again: serde_json::Value = serde_json::from_slice(&run(&["-o", "json"]).stdout).unwrap();
    assert!(
        again["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|file| file["action"] == "unchanged")
    );
    std::fs::write(installed.join("references/migrations.md"), "my notes").unwrap();
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(9));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(installed.join("references/migrations.md")).unwrap(),
        "my notes"
    );
    assert!(run(&["--force"]).status.success());
    assert_ne!(
        std::fs::read_to_string(installed.join("references/migrations.md")).unwrap(),
        "my notes"
    );
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_pgk8s"))
        .args(["skill", "show"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&shown.stdout), SKILL_MD);
}

#[test]
fn install_never_writes_through_a_symbolic_link() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let installed = dir.path().join(SKILL_NAME);
    std::fs::create_dir_all(&installed).unwrap();
    let target = outside.path().join("written-through.md");
    std::os::unix::fs::symlink(&target, installed.join("SKILL.md")).unwrap();
    for force in [false, true] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pgk8s"));
        command.args(["skill", "install", "--dir", dir.path().to_str().unwrap()]);
        if force {
            command.arg("--force");
        }
        let refused = command.output().unwrap();
        assert_eq!(refused.status.code(), Some(9));
        assert!(String::from_utf8_lossy(&refused.stderr).contains("symbolic link"));
        assert!(
            !target.exists(),
            "nothing was written outside the skill folder"
        );
    }
    // Installed files are readable by others, as any checked-out file is.
    std::fs::remove_file(installed.join("SKILL.md")).unwrap();
    let installed_ok = std::process::Command::new(env!("CARGO_BIN_EXE_pgk8s"))
        .args(["skill", "install", "--dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(installed_ok.status.success());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(installed.join("SKILL.md"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn readme_and_architecture_links_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for document in ["README.md", "ARCHITECTURE.md", "docs/benchmarks.md"] {
        let text = std::fs::read_to_string(root.join(document)).unwrap();
        let base = root.join(document).parent().unwrap().to_path_buf();
        for link in links(&text) {
            assert!(
                base.join(&link).exists(),
                "{document} links to {link}, which does not exist"
            );
        }
    }
}

#[test]
fn the_skills_links_resolve_in_the_source_tree_too() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for link in links(SKILL_MD) {
        assert!(
            root.join("skill").join(&link).is_file(),
            "skill/SKILL.md links to {link}, which is not in the repository"
        );
    }
}

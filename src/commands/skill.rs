//! `pgk8s skill install|show`: the embedded agent skill (SKILL.md and references/), written into
//! `DIR/postgres-k8s-setup/` so agents that load skills from a directory find it.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use serde::Serialize;

use crate::cli::{SkillAction, SkillArgs, SkillInstallArgs};
use crate::error::{ExitCode, Failure};
use crate::output::{Outcome, Report, Text};

/// The skill's name: its folder name and the `name` in its frontmatter.
pub const SKILL_NAME: &str = "postgres-k8s-setup";
/// skill/SKILL.md, compiled in.
pub const SKILL_MD: &str = include_str!("../../skill/SKILL.md");
/// skill/references/*.md, compiled in.
pub static REFERENCES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/skill/references");

#[derive(Serialize)]
struct InstallReport {
    dry_run: bool,
    directory: PathBuf,
    files: Vec<InstalledFile>,
}

#[derive(Serialize)]
struct InstalledFile {
    path: PathBuf,
    action: &'static str,
}

impl Report for InstallReport {
    fn render(&self, text: &mut Text) {
        let lead = if self.dry_run {
            "Dry run, nothing was written: skill"
        } else {
            "Skill"
        };
        let verb = if self.dry_run {
            "would be installed"
        } else {
            "installed"
        };
        text.line(format!(
            "{lead} {SKILL_NAME} {verb} in {}:",
            self.directory.display()
        ));
        for file in &self.files {
            text.line(format!("  {:<10} {}", file.action, file.path.display()));
        }
    }
}

#[derive(Serialize)]
struct ShowReport {
    name: &'static str,
    content: &'static str,
}

impl Report for ShowReport {
    fn render(&self, text: &mut Text) {
        text.line(self.content.trim_end());
    }
}

/// Runs `pgk8s skill`.
pub fn run(args: &SkillArgs) -> anyhow::Result<Outcome> {
    match &args.action {
        SkillAction::Show => Ok(Outcome::success(&ShowReport {
            name: SKILL_NAME,
            content: SKILL_MD,
        })),
        SkillAction::Install(install_args) => install(install_args),
    }
}

/// Every file of the skill, relative to its folder.
pub fn files() -> Vec<(PathBuf, &'static [u8])> {
    let mut files = vec![(PathBuf::from("SKILL.md"), SKILL_MD.as_bytes())];
    files.extend(
        REFERENCES
            .files()
            .map(|file| (Path::new("references").join(file.path()), file.contents())),
    );
    files.sort();
    files
}

fn install(args: &SkillInstallArgs) -> anyhow::Result<Outcome> {
    let directory = args.dir.join(SKILL_NAME);
    // Never write through a link: a SKILL.md (or folder) that points elsewhere, even nowhere,
    // would make pgk8s write outside the skill folder.
    for path in [directory.clone(), directory.join("references")]
        .into_iter()
        .chain(
            files()
                .into_iter()
                .map(|(relative, _)| directory.join(relative)),
        )
    {
        if path
            .symlink_metadata()
            .is_ok_and(|metadata| metadata.file_type().is_symlink())
        {
            return Err(Failure::new(
                ExitCode::Refused,
                format!(
                    "refusing to write through the symbolic link {}",
                    path.display()
                ),
            )
            .hint("remove the link (or choose another --dir); the skill is written as plain files")
            .into());
        }
    }
    let planned: Vec<(PathBuf, &[u8], &'static str)> = files()
        .into_iter()
        .map(|(relative, contents)| {
            let path = directory.join(&relative);
            let action = match std::fs::read(&path) {
                Ok(existing) if existing == contents => "unchanged",
                Ok(_) => "replaced",
                Err(_) => "created",
            };
            (path, contents, action)
        })
        .collect();
    let changed: Vec<String> = planned
        .iter()
        .filter(|(_, _, action)| *action == "replaced")
        .map(|(path, _, _)| path.display().to_string())
        .collect();
    if !changed.is_empty() && !args.force {
        return Err(Failure::new(
            ExitCode::Refused,
            format!(
                "refusing to overwrite changed file(s): {}",
                changed.join(", ")
            ),
        )
        .hint("keep your edits elsewhere, or overwrite them with --force")
        .into());
    }
    if args.dry_run {
        let files = planned
            .into_iter()
            .map(|(path, _, action)| InstalledFile { path, action })
            .collect();
        return Ok(Outcome::success(&InstallReport {
            dry_run: true,
            directory,
            files,
        }));
    }
    let mut files = Vec::new();
    for (path, contents, action) in planned {
        if action != "unchanged" {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|error| {
                    Failure::usage(format!("cannot create {}: {error}", parent.display()))
                })?;
            }
            write_replacing(&path, contents).map_err(|error| {
                Failure::usage(format!("cannot write {}: {error}", path.display()))
            })?;
        }
        files.push(InstalledFile { path, action });
    }
    Ok(Outcome::success(&InstallReport {
        dry_run: false,
        directory,
        files,
    }))
}

/// Writes `contents` to a new file beside `path` and renames it over `path`: the rename replaces
/// the directory entry itself, so nothing is ever written through whatever `path` was.
fn write_replacing(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".pgk8s-skill-")
        .tempfile_in(parent)?;
    std::io::Write::write_all(&mut file, contents)?;
    file.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    file.persist(path).map_err(|error| error.error)?;
    Ok(())
}

//! `pgk8s backup`: `pg_dump -Fc` (or `pg_dumpall`) inside the pod, streamed through
//! `kubectl exec` into a temporary file that is renamed only when the dump succeeded, with a
//! SHA-256 manifest beside it.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::backup::{self, Manifest};
use crate::cli::BackupArgs;
use crate::config::Config;
use crate::dump::{self, DumpKind};
use crate::error::Failure;
use crate::output::{Outcome, Report, Text};

#[derive(Serialize)]
struct BackupReport {
    file: PathBuf,
    manifest_file: PathBuf,
    manifest: Manifest,
    duration_ms: u128,
}

impl Report for BackupReport {
    fn render(&self, text: &mut Text) {
        text.line(format!(
            "Backed up {} to {}",
            self.manifest.database,
            self.file.display()
        ));
        text.field("size", format!("{} bytes", self.manifest.size_bytes));
        text.field("sha256", &self.manifest.sha256);
        text.field("server", &self.manifest.server_version);
        text.field(
            "migration",
            self.manifest
                .migration_version
                .map_or("none".to_string(), |version| version.to_string()),
        );
        text.field("manifest", self.manifest_file.display());
    }
}

/// What `backup --dry-run` would do.
#[derive(Serialize)]
struct BackupPlan {
    dry_run: bool,
    database: String,
    program: &'static str,
    source: String,
    file: PathBuf,
    manifest_file: PathBuf,
}

impl Report for BackupPlan {
    fn render(&self, text: &mut Text) {
        text.line(format!(
            "Dry run, nothing was written: would dump {} ({}) from {} to {}, with its manifest {}.",
            self.database,
            self.program,
            self.source,
            self.file.display(),
            self.manifest_file.display()
        ));
    }
}

/// Runs `pgk8s backup`.
pub async fn run(args: &BackupArgs, config: &Config) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let created_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| default_file(config, &created_at, args.all));
    let directory = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !directory.is_dir() {
        return Err(Failure::usage(format!(
            "cannot write {}: {} is not a directory",
            file.display(),
            directory.display()
        ))
        .hint("create the directory first, or choose another -f/--file")
        .into());
    }
    // Neither the dump nor its manifest may replace a file that is there already (a link
    // included, even a dangling one).
    for existing in [file.clone(), backup::manifest_path(&file)] {
        if existing.symlink_metadata().is_ok() {
            return Err(Failure::usage(format!("{} already exists", existing.display()))
                .hint("choose another -f/--file, or move the old backup and its .json manifest away")
                .into());
        }
    }
    let transport = crate::release::pod_transport(config, "backup").await?;
    if args.dry_run {
        return Ok(Outcome::success(&BackupPlan {
            dry_run: true,
            database: if args.all {
                "*".to_string()
            } else {
                config.database.to_string()
            },
            program: if args.all {
                "pg_dumpall"
            } else {
                "pg_dump -Fc"
            },
            source: transport.describe(),
            manifest_file: backup::manifest_path(&file),
            file,
        }));
    }
    let kind = if args.all {
        DumpKind::Everything
    } else {
        DumpKind::Database
    };
    let manifest = dump::dump_to_file(config, &transport, &file, kind, &created_at).await?;
    let manifest_file = backup::manifest_path(&file);
    Ok(Outcome::success(&BackupReport {
        file,
        manifest_file,
        manifest,
        duration_ms: started.elapsed().as_millis(),
    }))
}

/// `<release>-<database>-<UTC timestamp>.dump` (`.sql` for pg_dumpall).
fn default_file(config: &Config, created_at: &str, all: bool) -> PathBuf {
    let stamp: String = created_at
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let (what, extension) = if all {
        ("all", "sql")
    } else {
        (config.database.as_str(), "dump")
    };
    PathBuf::from(format!("{}-{what}-{stamp}.{extension}", config.release))
}

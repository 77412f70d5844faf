//! `pgk8s backup`: `pg_dump -Fc` (or `pg_dumpall`) inside the pod, streamed through
//! `kubectl exec` into a temporary file that is renamed only when the dump succeeded, with a
//! SHA-256 manifest beside it.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::Context as _;
use serde::Serialize;

use crate::backup::{self, Manifest};
use crate::cli::BackupArgs;
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::migration_engine;
use crate::output::{Outcome, Report, Text};
use crate::session::Session;
use crate::sql_error::explain_exit;
use crate::transport::{Login, Mode, Transport};

/// How long the metadata query waits for the database.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

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
    let (server_version, migration_version) = metadata(config, &transport).await?;
    let (format, program, dump_args) = if args.all {
        (
            "pg_dumpall-sql",
            "pg_dumpall",
            vec!["-U".to_string(), "postgres".to_string()],
        )
    } else {
        (
            "pg_dump-custom",
            "pg_dump",
            vec![
                "-Fc".into(),
                "-U".into(),
                "postgres".into(),
                "-d".into(),
                config.database.to_string(),
            ],
        )
    };
    let command = transport.in_pod(
        Login::Superuser,
        Mode::ReadOnly,
        &config.username,
        program,
        &dump_args,
    )?;
    let mut partial = tempfile::Builder::new()
        .prefix(".pgk8s-backup-")
        .suffix(".partial")
        .tempfile_in(&directory)
        .with_context(|| format!("cannot create a temporary file in {}", directory.display()))?;
    let (size_bytes, sha256) = stream_to(command, partial.as_file_mut()).await?;
    if size_bytes == 0 {
        return Err(
            Failure::new(ExitCode::General, format!("{program} produced no output")).into(),
        );
    }
    partial.as_file().sync_all()?;
    partial.persist_noclobber(&file).map_err(|error| {
        anyhow::anyhow!(
            "cannot move the finished backup to {}: {}",
            file.display(),
            error.error
        )
    })?;
    let manifest = Manifest {
        format: format.to_string(),
        database: if args.all {
            "*".to_string()
        } else {
            config.database.to_string()
        },
        release: config.release.to_string(),
        namespace: config.namespace.to_string(),
        server_version,
        migration_version,
        size_bytes,
        sha256,
        created_at,
        pgk8s_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let manifest_file = backup::manifest_path(&file);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    options
        .open(&manifest_file)
        .and_then(|mut handle| {
            std::io::Write::write_all(
                &mut handle,
                (serde_json::to_string_pretty(&manifest)? + "\n").as_bytes(),
            )
        })
        .with_context(|| format!("cannot write {}", manifest_file.display()))?;
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

/// Server version and migration version, for the manifest (one read-only session).
async fn metadata(config: &Config, transport: &Transport) -> anyhow::Result<(String, Option<u64>)> {
    let mut session = Session::open_when_ready(
        || {
            transport.psql(
                Login::Superuser,
                Mode::ReadOnly,
                &config.database,
                &config.username,
            )
        },
        CONNECT_WAIT,
    )
    .await?;
    let version = session
        .query("SHOW server_version;")
        .await?
        .first()
        .and_then(|row| row.first())
        .cloned()
        .unwrap_or_default();
    let history = migration_engine::read_history(&mut session)
        .await?
        .unwrap_or_default();
    session.close().await?;
    Ok((version, history.iter().map(|row| row.version).max()))
}

/// Runs `command` and streams its stdout into `file`; returns size and SHA-256.
async fn stream_to(
    command: crate::process::Command,
    file: &mut std::fs::File,
) -> anyhow::Result<(u64, String)> {
    let mut running = command.spawn()?;
    let mut stdout = running
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut writer = tokio::fs::File::from_std(file.try_clone()?);
    let copied = backup::copy_hashing(&mut stdout, &mut writer).await;
    running.wait().await.map_err(explain_exit)?;
    Ok(copied?)
}

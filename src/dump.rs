//! Moving a database's contents through the pod: `pg_dump` streamed out into a local file with a
//! SHA-256 manifest beside it, and a file streamed back into `pg_restore` — with bounded memory
//! whatever the size. `backup`, `restore` and `upgrade` (which moves the data between majors)
//! share these.

use std::path::Path;

use anyhow::Context as _;

use crate::backup::{self, Manifest};
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::migration_engine;
use crate::session::Session;
use crate::sql_error::explain_exit;
use crate::transport::{Login, Mode, Transport};

/// How long the metadata query waits for the database.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a dump holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpKind {
    /// One database, `pg_dump -Fc` (a custom-format archive `restore` reads).
    Database,
    /// Roles and every database, `pg_dumpall` (plain SQL).
    Everything,
}

/// Dumps through `transport` into `file` (written to a temporary file beside it and renamed
/// only when the dump succeeded; neither `file` nor its manifest may exist) and writes the
/// manifest. Returns the manifest.
pub async fn dump_to_file(
    config: &Config,
    transport: &Transport,
    file: &Path,
    kind: DumpKind,
    created_at: &str,
) -> anyhow::Result<Manifest> {
    let directory = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let (server_version, migration_version) = metadata(config, transport).await?;
    let (format, program, dump_args) = if kind == DumpKind::Everything {
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
    partial.persist_noclobber(file).map_err(|error| {
        anyhow::anyhow!(
            "cannot move the finished backup to {}: {}",
            file.display(),
            error.error
        )
    })?;
    let manifest = Manifest {
        format: format.to_string(),
        database: if kind == DumpKind::Everything {
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
        created_at: created_at.to_string(),
        pgk8s_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let manifest_file = backup::manifest_path(file);
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
    Ok(manifest)
}

/// Restores a custom-format archive into the database: `pg_restore --clean --if-exists
/// --single-transaction`, as the superuser, so a failure leaves the database as it was.
pub async fn restore_from_file(
    config: &Config,
    transport: &Transport,
    file: &Path,
) -> anyhow::Result<()> {
    let restore_args: Vec<String> = [
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
        "-U",
        "postgres",
        "-d",
        config.database.as_str(),
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    stream_into(transport, config, file, &restore_args, Mode::ReadWrite).await?;
    Ok(())
}

/// The table of contents of a custom-format archive (`pg_restore -l`), read in the pod.
pub async fn list_archive(
    config: &Config,
    transport: &Transport,
    file: &Path,
) -> anyhow::Result<String> {
    stream_into(transport, config, file, &["-l".to_string()], Mode::ReadOnly).await
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

/// Streams the dump into `pg_restore ARGS` in the pod; returns what pg_restore printed.
async fn stream_into(
    transport: &Transport,
    config: &Config,
    file: &std::path::Path,
    restore_args: &[String],
    mode: Mode,
) -> anyhow::Result<String> {
    let command = transport.in_pod(
        Login::Superuser,
        mode,
        &config.username,
        "pg_restore",
        restore_args,
    )?;
    let mut running = command.stdin_piped().spawn()?;
    let mut stdin = running
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let mut stdout = running
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut source = tokio::fs::File::open(file).await?;
    let feed = async {
        let copied = backup::copy_hashing(&mut source, &mut stdin).await;
        drop(stdin);
        copied
    };
    let read = async {
        let mut listing = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut listing)
            .await
            .map(|_| listing)
    };
    let (fed, listing) = tokio::join!(feed, read);
    running.wait().await.map_err(|error| {
        explain_exit(error).context(format!(
            "pg_restore of {} failed; --single-transaction rolled it back",
            file.display()
        ))
    })?;
    fed?;
    Ok(String::from_utf8_lossy(&listing?).into_owned())
}

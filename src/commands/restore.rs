//! `pgk8s restore`: check the dump against its manifest (before anything is touched), confirm,
//! stream it through `kubectl exec` into `pg_restore --clean --if-exists --single-transaction`,
//! then verify the schema.

use std::time::Instant;

use serde::Serialize;

use crate::backup::{self, Manifest};
use crate::cli::RestoreArgs;
use crate::config::Config;
use crate::dump;
use crate::error::{ExitCode, Failure};
use crate::health::{self, VerifyReport};
use crate::migration_files::MigrationSet;
use crate::output::{Outcome, Report, Text};

#[derive(Serialize)]
struct RestoreReport {
    dry_run: bool,
    file: String,
    database: String,
    manifest: Manifest,
    entries: usize,
    tables: Vec<String>,
    duration_ms: u128,
    verify: Option<VerifyReport>,
}

impl Report for RestoreReport {
    fn render(&self, text: &mut Text) {
        if self.dry_run {
            text.line(format!(
                "Dry run: {} ({} archive entries, {} tables with data) would replace the contents of {}; nothing was changed.",
                self.file,
                self.entries,
                self.tables.len(),
                self.database
            ));
            for table in &self.tables {
                text.line(format!("  {table}"));
            }
            return;
        }
        text.line(format!(
            "Restored {} into {} in {} ms.",
            self.file, self.database, self.duration_ms
        ));
        if let Some(verify) = &self.verify {
            verify.render(text);
        }
    }
}

/// Runs `pgk8s restore`.
pub async fn run(args: &RestoreArgs, config: &Config) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let manifest = backup::check(&args.file).await?;
    if manifest.format != "pg_dump-custom" {
        return Err(Failure::usage(format!("{} is a {} backup; restore handles pg_dump custom archives", args.file.display(), manifest.format))
            .hint("replay a pg_dumpall SQL file by hand with `pgk8s psql -U postgres < FILE` on an empty cluster")
            .into());
    }
    let transport = crate::release::pod_transport(config, "restore").await?;
    let file_name = args.file.display().to_string();
    if args.dry_run {
        let listing = dump::list_archive(config, &transport, &args.file).await?;
        let entries: Vec<&str> = listing
            .lines()
            .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
            .collect();
        let tables = entries
            .iter()
            .filter(|line| line.contains(" TABLE DATA "))
            .filter_map(|line| line.split(" TABLE DATA ").nth(1))
            .map(|rest| {
                rest.split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect();
        return Ok(Outcome::success(&RestoreReport {
            dry_run: true,
            file: file_name,
            database: config.database.to_string(),
            entries: entries.len(),
            tables,
            manifest,
            duration_ms: started.elapsed().as_millis(),
            verify: None,
        }));
    }
    config.confirm(&format!(
        "replace the contents of database {} with {file_name}",
        config.database
    ))?;
    dump::restore_from_file(config, &transport, &args.file).await?;
    let set = MigrationSet::embedded();
    let report = health::verify(config, Some(&set), started).await?;
    let code = if report.healthy {
        ExitCode::Success
    } else {
        ExitCode::Unhealthy
    };
    Ok(Outcome::with_code(
        &RestoreReport {
            dry_run: false,
            file: file_name,
            database: config.database.to_string(),
            entries: 0,
            tables: Vec::new(),
            manifest,
            duration_ms: started.elapsed().as_millis(),
            verify: Some(report),
        },
        code,
    ))
}

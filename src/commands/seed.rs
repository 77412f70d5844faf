//! `pgk8s seed`: load the LearnFlow starter data (or `-f FILE`) idempotently.

use std::time::Duration;

use serde::Serialize;

use crate::cli::SeedArgs;
use crate::config::Config;
use crate::output::{Outcome, Report, Text};
use crate::seed::{self, ExistingRows, SeedScript, TableCount};
use crate::transport::Login;

use crate::release::{Connect, load_seed};
use crate::views;

/// How long seed waits for the database to accept connections.
const CONNECT_WAIT: Duration = Duration::from_secs(60);

/// What a seed run loaded.
#[derive(Serialize)]
pub struct SeedReport {
    dry_run: bool,
    database: String,
    transport: String,
    #[serde(serialize_with = "views::through::existing")]
    existing_rows: ExistingRows,
    files: Vec<SeedFile>,
    /// Row counts of the application tables after loading.
    #[serde(serialize_with = "views::through::tables")]
    pub tables: Vec<TableCount>,
}

#[derive(Serialize)]
struct SeedFile {
    file: String,
    checksum: String,
    bytes: u64,
}

impl Report for SeedReport {
    fn render(&self, text: &mut Text) {
        if self.dry_run {
            let existing = match self.existing_rows {
                ExistingRows::Keep => "rows that exist are left as they are",
                ExistingRows::Update => "rows that exist are updated",
            };
            text.line(format!(
                "Dry run, nothing was loaded: {} file(s) would go into {} in one transaction; {existing}.",
                self.files.len(),
                self.database,
            ));
        } else {
            text.line(format!(
                "Loaded {} seed file(s) into {} ({}):",
                self.files.len(),
                self.database,
                self.transport
            ));
        }
        for file in &self.files {
            text.line(format!("  {} ({} bytes)", file.file, file.bytes));
        }
        if !self.tables.is_empty() {
            let counts: Vec<String> = self
                .tables
                .iter()
                .map(|count| format!("{} {}", count.table, count.rows))
                .collect();
            text.line(format!("Rows: {}", counts.join(", ")));
        }
    }
}

/// Runs `pgk8s seed`.
pub async fn run(args: &SeedArgs, config: &Config) -> anyhow::Result<Outcome> {
    let scripts = match &args.file {
        Some(path) => vec![seed::from_file(path)?],
        None => seed::embedded(),
    };
    let existing = if args.update_existing {
        ExistingRows::Update
    } else {
        ExistingRows::Keep
    };
    let report = match args.dry_run {
        true => describe(config, &scripts, existing),
        false => {
            load(
                config,
                &scripts,
                existing,
                Login::app_or_admin(args.as_admin),
            )
            .await?
        }
    };
    Ok(Outcome::success(&report))
}

/// What a seed would load; no call is made.
fn describe(config: &Config, scripts: &[SeedScript], existing: ExistingRows) -> SeedReport {
    SeedReport {
        dry_run: true,
        database: config.database.to_string(),
        transport: String::from("none (dry run: no connection made)"),
        existing_rows: existing,
        files: scripts
            .iter()
            .map(|script| SeedFile {
                file: script.file().to_string(),
                checksum: script.checksum().to_string(),
                bytes: script.size_bytes(),
            })
            .collect(),
        tables: Vec::new(),
    }
}

/// Loads `scripts` into the database in one transaction and reports the table row counts.
async fn load(
    config: &Config,
    scripts: &[SeedScript],
    existing: ExistingRows,
    login: Login,
) -> anyhow::Result<SeedReport> {
    let mut report = describe(config, scripts, existing);
    report.dry_run = false;
    let connect = Connect {
        login,
        wait: CONNECT_WAIT,
    };
    let (transport, tables) = load_seed(config, scripts, existing, connect).await?;
    report.transport = transport.describe();
    report.tables = tables;
    Ok(report)
}

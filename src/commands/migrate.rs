//! `pgk8s migrate [up|down|status|baseline|repair]`: one psql session per run (one
//! `kubectl exec`), whatever the number of files.

use std::time::Instant;

use serde::Serialize;

use crate::cli::{MigrateAction, MigrateArgs, MigrateOptions, MigrateUpArgs};
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::migration_engine::{
    self, Applied, Direction, DownTarget, HistoryRow, UpOptions, VersionState, VersionStatus,
};
use crate::migration_files::{Migration, MigrationSet};
use crate::output::{CheckState, Outcome, Report, Text};
use crate::release::{
    Connect, MigratedUp, history_locked, history_read_only, migrate_up, open_primary,
};
use crate::transport::{Login, Mode, Transport};
use crate::views;

/// What a migrate run did (or, with --dry-run, would do).
#[derive(Serialize)]
pub struct MigrateReport {
    action: Action,
    dry_run: bool,
    database: String,
    transport: String,
    source: String,
    /// Migrations applied or reverted by this run, in order.
    #[serde(serialize_with = "views::through::applied")]
    pub applied: Vec<Applied>,
    planned: Vec<PlannedMigration>,
    /// The newest applied version afterwards.
    pub current_version: Option<u64>,
    pending: usize,
    duration_ms: u128,
    notes: Vec<String>,
}

/// What a migrate run did (`up`, `down`, `baseline`, `repair` in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Up,
    Down,
    Baseline,
    Repair,
}

/// A migration a dry run would apply or revert.
#[derive(Serialize)]
struct PlannedMigration {
    version: u64,
    file: String,
    checksum: String,
    no_transaction: bool,
}

impl Report for MigrateReport {
    fn render(&self, text: &mut Text) {
        let verb = match self.action {
            Action::Down => "Rolled back",
            Action::Baseline => "Baselined",
            Action::Repair => "Repaired",
            Action::Up => "Applied",
        };
        if self.dry_run {
            text.line(format!(
                "Dry run against {} ({}): {} migration(s) would run, nothing was changed.",
                self.database,
                self.transport,
                self.planned.len()
            ));
            for planned in &self.planned {
                let mode = if planned.no_transaction {
                    " [no transaction]"
                } else {
                    ""
                };
                text.line(format!(
                    "  {}  sha256:{}{mode}",
                    planned.file,
                    &planned.checksum[..12]
                ));
            }
        } else if self.applied.is_empty() {
            text.line(format!(
                "Nothing to do: {} is up to date ({}).",
                self.database, self.transport
            ));
        } else {
            // One line whatever the number of files: each file's own line went to stderr as
            // it ran, and `-o json` lists them with their timings.
            let files = match self.applied.as_slice() {
                [only] => only.file.clone(),
                [first, .., last] => format!("{} … {}", first.file, last.file),
                [] => String::new(),
            };
            text.line(format!(
                "{verb} {} migration(s) on {} ({}) in {} ms: {files}.",
                self.applied.len(),
                self.database,
                self.transport,
                self.duration_ms
            ));
        }
        match self.current_version {
            Some(version) => text.line(format!(
                "Current version: {version}; {} pending.",
                self.pending
            )),
            None => text.line(format!("No migration applied; {} pending.", self.pending)),
        }
        for note in &self.notes {
            text.line(format!("note: {note}"));
        }
    }
}

/// `migrate status`.
#[derive(Serialize)]
struct StatusReport {
    database: String,
    transport: String,
    source: String,
    current_version: Option<u64>,
    applied: usize,
    pending: usize,
    drifted: usize,
    missing: usize,
    #[serde(serialize_with = "views::through::versions")]
    migrations: Vec<VersionStatus>,
}

impl Report for StatusReport {
    fn render(&self, text: &mut Text) {
        text.line(format!(
            "Migrations of {} ({}), from {}:",
            self.database, self.transport, self.source
        ));
        for status in &self.migrations {
            let (state, label) = match status.state {
                VersionState::Applied => (CheckState::Ok, "applied"),
                VersionState::Baselined => (CheckState::Ok, "baseline"),
                VersionState::Pending => (CheckState::Skipped, "pending"),
                VersionState::Drifted => (CheckState::Fail, "DRIFTED"),
                VersionState::Missing => (CheckState::Warn, "file missing"),
            };
            let when = status
                .applied_at
                .as_deref()
                .map(|at| format!(" at {at}"))
                .unwrap_or_default();
            text.check(
                state,
                format!("{:03} {} — {label}{when}", status.version, status.name),
            );
        }
        text.line(format!(
            "{} applied, {} pending, {} drifted, {} missing.",
            self.applied, self.pending, self.drifted, self.missing
        ));
    }
}

/// How this run's session logs in (`--as-admin`) and how long it waits for the database.
fn connect(options: &MigrateOptions) -> Connect {
    Connect {
        login: Login::app_or_admin(options.as_admin),
        wait: options.wait,
    }
}

/// Runs `pgk8s migrate`.
pub async fn run(args: &MigrateArgs, config: &Config) -> anyhow::Result<Outcome> {
    let set = MigrationSet::load(args.options.migrations_dir.as_deref())?;
    // Each action that changes something has its own --dry-run; status has none.
    let with_dry_run = |dry_run: bool| MigrateOptions {
        dry_run,
        ..args.options.clone()
    };
    match &args.action {
        None if args.rollback => {
            let options = with_dry_run(args.up.dry_run);
            down(config, &set, &options, DownTarget::Steps(1)).await
        }
        None => up_command(config, &set, &with_dry_run(args.up.dry_run), &args.up).await,
        Some(MigrateAction::Up(up)) => {
            up_command(config, &set, &with_dry_run(up.dry_run), up).await
        }
        Some(MigrateAction::Down(down_args)) => {
            let target = match (down_args.target.to, down_args.target.steps) {
                (Some(version), _) => DownTarget::To(version),
                (None, steps) => DownTarget::Steps(steps.unwrap_or(1)),
            };
            down(config, &set, &with_dry_run(down_args.dry_run), target).await
        }
        Some(MigrateAction::Status(status_args)) => {
            status(config, &set, &args.options, status_args.exit_code).await
        }
        Some(MigrateAction::Baseline(baseline_args)) => {
            let options = with_dry_run(baseline_args.dry_run);
            baseline(config, &set, &options, baseline_args.version).await
        }
        Some(MigrateAction::Repair(repair_args)) => {
            repair(config, &set, &with_dry_run(repair_args.dry_run)).await
        }
    }
}

async fn up_command(
    config: &Config,
    set: &MigrationSet,
    options: &MigrateOptions,
    up_args: &MigrateUpArgs,
) -> anyhow::Result<Outcome> {
    let up_options = UpOptions {
        target: up_args.target,
        allow_out_of_order: up_args.allow_out_of_order,
        lock_timeout: options.lock_timeout,
    };
    migration_engine::check_target(set, up_options.target)?;
    let report = if options.dry_run {
        plan(config, set, connect(options), &up_options).await?
    } else {
        up(config, set, &up_options, connect(options)).await?
    };
    Ok(Outcome::success(&report))
}

/// Applies pending migrations: the whole run is one session (one `kubectl exec`).
async fn up(
    config: &Config,
    set: &MigrationSet,
    options: &UpOptions,
    connect: Connect,
) -> anyhow::Result<MigrateReport> {
    let started = Instant::now();
    let MigratedUp {
        transport,
        applied,
        history,
    } = migrate_up(config, set, options, connect).await?;
    Ok(report(
        Action::Up,
        config,
        &transport,
        set,
        applied,
        &history,
        started,
    ))
}

async fn plan(
    config: &Config,
    set: &MigrationSet,
    connect: Connect,
    options: &UpOptions,
) -> anyhow::Result<MigrateReport> {
    let (transport, history) = history_read_only(config, connect).await?;
    let planned = migration_engine::plan_up(set, &history, options)?;
    Ok(dry_run_report(
        Action::Up,
        config,
        &transport,
        set,
        &planned,
        &history,
    ))
}

async fn down(
    config: &Config,
    set: &MigrationSet,
    options: &MigrateOptions,
    target: DownTarget,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    if options.dry_run {
        let (transport, history) = history_read_only(config, connect(options)).await?;
        let planned = migration_engine::plan_down(set, &history, target)?;
        return Ok(Outcome::success(&dry_run_report(
            Action::Down,
            config,
            &transport,
            set,
            &planned,
            &history,
        )));
    }
    let what = match target {
        DownTarget::To(version) => format!(
            "roll back every migration above version {version} in {}",
            config.database
        ),
        DownTarget::Steps(steps) => format!(
            "roll back the newest {steps} migration(s) in {}",
            config.database
        ),
    };
    config.confirm(&what)?;
    let (mut session, transport, history) =
        history_locked(config, connect(options), options.lock_timeout).await?;
    let plan = migration_engine::plan_down(set, &history, target)?;
    let reverted = migration_engine::apply(&mut session, &plan, Direction::Down).await?;
    let history =
        migration_engine::confirmed_history(&mut session, &reverted, Direction::Down).await?;
    migration_engine::unlock(&mut session).await?;
    session.close().await?;
    Ok(Outcome::success(&report(
        Action::Down,
        config,
        &transport,
        set,
        reverted,
        &history,
        started,
    )))
}

async fn status(
    config: &Config,
    set: &MigrationSet,
    options: &MigrateOptions,
    exit_code: bool,
) -> anyhow::Result<Outcome> {
    let (transport, history) = history_read_only(config, connect(options)).await?;
    let migrations = migration_engine::statuses(set, &history);
    let count = |state: VersionState| {
        migrations
            .iter()
            .filter(|status| status.state == state)
            .count()
    };
    let report = StatusReport {
        database: config.database.to_string(),
        transport: transport.describe(),
        source: set.source.clone(),
        current_version: history.iter().map(|row| row.version).max(),
        applied: count(VersionState::Applied) + count(VersionState::Baselined),
        pending: count(VersionState::Pending),
        drifted: count(VersionState::Drifted),
        missing: count(VersionState::Missing),
        migrations,
    };
    let code = if exit_code && (report.pending > 0 || report.drifted > 0) {
        ExitCode::MigrationFailed
    } else {
        ExitCode::Success
    };
    Ok(Outcome::with_code(&report, code))
}

async fn baseline(
    config: &Config,
    set: &MigrationSet,
    options: &MigrateOptions,
    version: u64,
) -> anyhow::Result<Outcome> {
    if !set
        .migrations
        .iter()
        .any(|migration| migration.version <= version)
    {
        return Err(Failure::usage(format!(
            "no migration of {} has a version of {version} or below",
            set.source
        ))
        .hint("baseline at the version the existing schema corresponds to")
        .into());
    }
    let unrecorded_up_to_version = |history: &[HistoryRow]| -> Vec<&Migration> {
        set.migrations
            .iter()
            .filter(|migration| {
                migration.version <= version
                    && !history.iter().any(|row| row.version == migration.version)
            })
            .collect()
    };
    edit_history(
        config,
        set,
        options,
        HistoryEdit::Baseline,
        unrecorded_up_to_version,
    )
    .await
}

async fn repair(
    config: &Config,
    set: &MigrationSet,
    options: &MigrateOptions,
) -> anyhow::Result<Outcome> {
    if !options.dry_run {
        config.confirm(&format!(
            "re-record the checksums of changed migrations in {}",
            config.database
        ))?;
    }
    let drifted = |history: &[HistoryRow]| -> Vec<&Migration> {
        migration_engine::statuses(set, history)
            .iter()
            .filter(|status| status.state == VersionState::Drifted)
            .filter_map(|status| set.get(status.version))
            .collect()
    };
    edit_history(config, set, options, HistoryEdit::Repair, drifted).await
}

/// The two ways pgk8s writes history without running migrations.
#[derive(Clone, Copy)]
enum HistoryEdit {
    Baseline,
    Repair,
}

/// Under the lock, picks versions from the history and records them (or, in a dry run, lists
/// them without taking the lock).
async fn edit_history<'a>(
    config: &Config,
    set: &'a MigrationSet,
    options: &MigrateOptions,
    edit: HistoryEdit,
    pick: impl Fn(&[HistoryRow]) -> Vec<&'a Migration>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let action = match edit {
        HistoryEdit::Baseline => Action::Baseline,
        HistoryEdit::Repair => Action::Repair,
    };
    let mode = if options.dry_run {
        Mode::ReadOnly
    } else {
        Mode::ReadWrite
    };
    let (mut session, transport) = open_primary(config, connect(options), mode).await?;
    if !options.dry_run {
        migration_engine::lock(&mut session, options.lock_timeout).await?;
    }
    let history = migration_engine::read_history(&mut session)
        .await?
        .unwrap_or_default();
    let chosen = pick(&history);
    if options.dry_run {
        session.close().await?;
        return Ok(Outcome::success(&dry_run_report(
            action, config, &transport, set, &chosen, &history,
        )));
    }
    match edit {
        HistoryEdit::Baseline => migration_engine::record_baseline(&mut session, &chosen).await?,
        HistoryEdit::Repair => migration_engine::record_repair(&mut session, &chosen).await?,
    }
    let recorded: Vec<Applied> = chosen
        .iter()
        .map(|migration| as_applied(migration))
        .collect();
    let history =
        migration_engine::confirmed_history(&mut session, &recorded, Direction::Up).await?;
    migration_engine::unlock(&mut session).await?;
    session.close().await?;
    Ok(Outcome::success(&report(
        action, config, &transport, set, recorded, &history, started,
    )))
}

fn as_applied(migration: &Migration) -> Applied {
    Applied {
        version: migration.version,
        file: migration.up.file.clone(),
        checksum: migration.up.checksum.clone(),
        execution_ms: 0,
        no_transaction: migration.no_transaction,
    }
}

fn report(
    action: Action,
    config: &Config,
    transport: &Transport,
    set: &MigrationSet,
    applied: Vec<Applied>,
    history: &[HistoryRow],
    started: Instant,
) -> MigrateReport {
    MigrateReport {
        action,
        dry_run: false,
        database: config.database.to_string(),
        transport: transport.describe(),
        source: set.source.clone(),
        applied,
        planned: Vec::new(),
        current_version: history.iter().map(|row| row.version).max(),
        pending: pending_count(set, history),
        duration_ms: started.elapsed().as_millis(),
        notes: set.notes.clone(),
    }
}

fn dry_run_report(
    action: Action,
    config: &Config,
    transport: &Transport,
    set: &MigrationSet,
    planned: &[&Migration],
    history: &[HistoryRow],
) -> MigrateReport {
    let planned = planned
        .iter()
        .map(|migration| {
            let script = match action {
                Action::Down => migration.down.as_ref().unwrap_or(&migration.up),
                _ => &migration.up,
            };
            PlannedMigration {
                version: migration.version,
                file: script.file.clone(),
                checksum: script.checksum.clone(),
                no_transaction: migration.no_transaction,
            }
        })
        .collect();
    MigrateReport {
        action,
        dry_run: true,
        database: config.database.to_string(),
        transport: transport.describe(),
        source: set.source.clone(),
        applied: Vec::new(),
        planned,
        current_version: history.iter().map(|row| row.version).max(),
        pending: pending_count(set, history),
        duration_ms: 0,
        notes: set.notes.clone(),
    }
}

fn pending_count(set: &MigrationSet, history: &[HistoryRow]) -> usize {
    set.migrations
        .iter()
        .filter(|migration| !history.iter().any(|row| row.version == migration.version))
        .count()
}

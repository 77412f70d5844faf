//! The migration engine: history, locking, planning and applying, over one psql [`Session`].
//!
//! History lives in `pgk8s.schema_history`. A run takes a session-level advisory lock (polled
//! with `pg_try_advisory_lock` up to the lock timeout, so concurrent runs queue and each version
//! is applied exactly once), reads the history, checks every applied file's checksum, plans, and
//! applies each migration together with its history row in one transaction. Afterwards the
//! history is read again: success is what the table says, not what kubectl's exit status says.
//! Between migrations the session is reset, so a `SET search_path` or `SET ROLE` in one file
//! cannot change how the next one runs.
//!
//! Planning is pure ([`plan_up`], [`plan_down`], [`statuses`]) and unit-tested; the async
//! functions only move SQL and rows.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::migration_files::{Migration, MigrationSet, Script};
use crate::poll::Poll;
use crate::session::Session;
use crate::sql_error::SqlError;

/// The advisory lock key of migration runs ("pgk8migr" in ASCII).
pub const LOCK_KEY: i64 = 0x7067_6b38_6d69_6772;
/// How often a waiting run retries the lock.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// Creates the history table; runs under the lock, so concurrent first runs cannot race.
const HISTORY_DDL: &str = "CREATE SCHEMA IF NOT EXISTS pgk8s;
CREATE TABLE IF NOT EXISTS pgk8s.schema_history (
    version      bigint      PRIMARY KEY,
    name         text        NOT NULL,
    checksum     text        NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    execution_ms integer     NOT NULL,
    applied_by   text        NOT NULL DEFAULT current_user,
    kind         text        NOT NULL DEFAULT 'migration' CHECK (kind IN ('migration', 'baseline'))
);
COMMENT ON TABLE pgk8s.schema_history IS 'Migrations applied by pgk8s (one row per version)';";

/// Puts the session back as it started, between migrations. (`DISCARD ALL` would also drop
/// the advisory lock, so the parts are listed one by one.)
/// psql's `\;` joins the statements into one message: one server round trip instead of six.
const RESET_SESSION: &str = "RESET ROLE \\; RESET SESSION AUTHORIZATION \\; RESET ALL \\; DISCARD TEMP \\; DISCARD PLANS \\; DISCARD SEQUENCES;";

/// One row of `pgk8s.schema_history`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    /// Version.
    pub version: u64,
    /// Name from the file name.
    pub name: String,
    /// Checksum recorded when applied.
    pub checksum: String,
    /// When (UTC, RFC 3339).
    pub applied_at: String,
    /// How long it took.
    pub execution_ms: i64,
    /// Database user who applied it.
    pub applied_by: String,
    /// `migration`, or `baseline` for versions marked applied without running.
    pub kind: String,
}

/// The state of one version, for `migrate status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionState {
    /// Recorded, checksum matches.
    Applied,
    /// Marked applied by `baseline`.
    Baselined,
    /// Not recorded yet.
    Pending,
    /// Recorded, but the file changed since.
    Drifted,
    /// Recorded, but no file has this version any more.
    Missing,
}

/// One line of `migrate status`.
#[derive(Clone, Debug)]
pub struct VersionStatus {
    /// Version.
    pub version: u64,
    /// Name.
    pub name: String,
    /// State.
    pub state: VersionState,
    /// The file's checksum (absent for missing files).
    pub checksum: Option<String>,
    /// The recorded checksum (absent for pending versions).
    pub recorded_checksum: Option<String>,
    /// When it was applied.
    pub applied_at: Option<String>,
    /// How long it took.
    pub execution_ms: Option<i64>,
    /// Whether the file runs outside a transaction.
    pub no_transaction: bool,
}

/// A migration applied (or reverted) by this run.
#[derive(Clone, Debug)]
pub struct Applied {
    /// Version.
    pub version: u64,
    /// The file that ran.
    pub file: String,
    /// Its checksum.
    pub checksum: String,
    /// Server-side duration.
    pub execution_ms: i64,
    /// Whether it ran outside a transaction.
    pub no_transaction: bool,
}

/// Options of `migrate up`.
#[derive(Clone, Debug, Default)]
pub struct UpOptions {
    /// Stop after this version.
    pub target: Option<u64>,
    /// Apply pending versions lower than the newest applied one.
    pub allow_out_of_order: bool,
    /// How long to wait for the lock.
    pub lock_timeout: Duration,
}

/// How far `migrate down` goes.
#[derive(Clone, Copy, Debug)]
pub enum DownTarget {
    /// Revert every version above this one.
    To(u64),
    /// Revert this many versions.
    Steps(u32),
}

/// Per-version states, ascending; files and history merged.
pub fn statuses(set: &MigrationSet, history: &[HistoryRow]) -> Vec<VersionStatus> {
    let recorded: BTreeMap<u64, &HistoryRow> =
        history.iter().map(|row| (row.version, row)).collect();
    let mut versions: BTreeMap<u64, VersionStatus> = BTreeMap::new();
    for migration in &set.migrations {
        let row = recorded.get(&migration.version);
        let state = match row {
            None => VersionState::Pending,
            Some(row) if row.checksum != migration.up.checksum => VersionState::Drifted,
            Some(row) if row.kind == "baseline" => VersionState::Baselined,
            Some(_) => VersionState::Applied,
        };
        versions.insert(
            migration.version,
            VersionStatus {
                version: migration.version,
                name: migration.name.clone(),
                state,
                checksum: Some(migration.up.checksum.clone()),
                recorded_checksum: row.map(|row| row.checksum.clone()),
                applied_at: row.map(|row| row.applied_at.clone()),
                execution_ms: row.map(|row| row.execution_ms),
                no_transaction: migration.no_transaction,
            },
        );
    }
    for row in history.iter().filter(|row| set.get(row.version).is_none()) {
        versions.insert(
            row.version,
            VersionStatus {
                version: row.version,
                name: row.name.clone(),
                state: VersionState::Missing,
                checksum: None,
                recorded_checksum: Some(row.checksum.clone()),
                applied_at: Some(row.applied_at.clone()),
                execution_ms: Some(row.execution_ms),
                no_transaction: false,
            },
        );
    }
    versions.into_values().collect()
}

/// What `up` would apply, in order; fails on drift, out-of-order versions or a bad target.
pub fn plan_up<'a>(
    set: &'a MigrationSet,
    history: &[HistoryRow],
    options: &UpOptions,
) -> Result<Vec<&'a Migration>, MigrateError> {
    check_target(set, options.target)?;
    check_drift(set, history)?;
    let newest_applied = history.iter().map(|row| row.version).max();
    let applied: Vec<u64> = history.iter().map(|row| row.version).collect();
    let pending: Vec<&Migration> = set
        .migrations
        .iter()
        .filter(|migration| !applied.contains(&migration.version))
        .filter(|migration| {
            options
                .target
                .is_none_or(|target| migration.version <= target)
        })
        .collect();
    if !options.allow_out_of_order
        && let Some(newest) = newest_applied
        && let Some(old) = pending.iter().find(|migration| migration.version < newest)
    {
        return Err(MigrateError::OutOfOrder {
            file: old.up.file.clone(),
            newest,
        });
    }
    Ok(pending)
}

/// Fails unless `target` (if any) is a version of `set`; checked before any call.
pub fn check_target(set: &MigrationSet, target: Option<u64>) -> Result<(), MigrateError> {
    match target {
        Some(target) if set.get(target).is_none() => Err(MigrateError::UnknownTarget {
            target,
            source_name: set.source.clone(),
        }),
        _ => Ok(()),
    }
}

/// What `down` would revert, newest first; fails when a down script is missing.
pub fn plan_down<'a>(
    set: &'a MigrationSet,
    history: &[HistoryRow],
    target: DownTarget,
) -> Result<Vec<&'a Migration>, MigrateError> {
    let mut applied: Vec<u64> = history.iter().map(|row| row.version).collect();
    applied.sort_unstable_by(|a, b| b.cmp(a));
    let chosen: Vec<u64> = match target {
        DownTarget::To(version) => applied
            .into_iter()
            .filter(|applied| *applied > version)
            .collect(),
        DownTarget::Steps(steps) => applied.into_iter().take(steps as usize).collect(),
    };
    chosen
        .into_iter()
        .map(|version| {
            let migration = set
                .get(version)
                .ok_or(MigrateError::MissingFile { version })?;
            if migration.down.is_none() {
                return Err(MigrateError::NoDownFile {
                    file: migration.up.file.clone(),
                    down: format!("{:03}_{}.down.sql", migration.version, migration.name),
                });
            }
            Ok(migration)
        })
        .collect()
}

fn check_drift(set: &MigrationSet, history: &[HistoryRow]) -> Result<(), MigrateError> {
    let drifted: Vec<String> = history
        .iter()
        .filter_map(|row| {
            let migration = set.get(row.version)?;
            (migration.up.checksum != row.checksum).then(|| {
                format!(
                    "{} (recorded {}, file {})",
                    migration.up.file,
                    short(&row.checksum),
                    short(&migration.up.checksum)
                )
            })
        })
        .collect();
    if drifted.is_empty() {
        return Ok(());
    }
    Err(MigrateError::Drift {
        files: drifted.join("; "),
    })
}

fn short(checksum: &str) -> &str {
    &checksum[..checksum.len().min(12)]
}

/// Reads the history; None when the table does not exist yet.
pub async fn read_history(session: &mut Session) -> anyhow::Result<Option<Vec<HistoryRow>>> {
    let exists = session
        .query("SELECT to_regclass('pgk8s.schema_history') IS NOT NULL;")
        .await?;
    if exists
        .first()
        .and_then(|row| row.first())
        .map(String::as_str)
        != Some("t")
    {
        return Ok(None);
    }
    let rows = session
        .query(
            "SELECT version, name, checksum, \
             to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
             execution_ms, applied_by, kind FROM pgk8s.schema_history ORDER BY version;",
        )
        .await?;
    rows.into_iter()
        .map(|row| {
            let [
                version,
                name,
                checksum,
                applied_at,
                execution_ms,
                applied_by,
                kind,
            ]: [String; 7] = row.try_into().map_err(|row: Vec<String>| {
                anyhow::anyhow!("unexpected history row with {} fields", row.len())
            })?;
            Ok(HistoryRow {
                version: version.parse()?,
                name,
                checksum,
                applied_at,
                execution_ms: execution_ms.parse()?,
                applied_by,
                kind,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Some)
}

/// Takes the migration lock, waiting up to `timeout`; then makes sure the history table exists.
pub async fn lock(session: &mut Session, timeout: Duration) -> anyhow::Result<()> {
    crate::deadline::step("waiting for the migration lock (another migrate run holds it)");
    let mut poll = Poll::new(timeout, LOCK_POLL, "another migration run holds the lock");
    loop {
        let rows = session
            .query(&format!("SELECT pg_try_advisory_lock({LOCK_KEY});"))
            .await?;
        if rows.first().and_then(|row| row.first()).map(String::as_str) == Some("t") {
            break;
        }
        if !poll.again().await {
            return Err(lock_timeout(session, timeout).await);
        }
    }
    session.query(HISTORY_DDL).await?;
    Ok(())
}

async fn lock_timeout(session: &mut Session, timeout: Duration) -> anyhow::Error {
    let holder_sql = format!(
        "SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), \
         to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), coalesce(a.state, '?') \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {} AND l.objid = {} AND l.objsubid = 1;",
        (LOCK_KEY >> 32) as u32,
        (LOCK_KEY & 0xffff_ffff) as u32
    );
    let holder = match session.query(&holder_sql).await {
        Ok(rows) => rows
            .first()
            .map(|row| {
                format!(
                    "pid {}, application {}, connected since {}, {}",
                    row[0], row[1], row[2], row[3]
                )
            })
            .unwrap_or_else(|| "released just now".to_string()),
        Err(_) => "unknown".to_string(),
    };
    MigrateError::LockTimeout {
        waited: timeout,
        holder,
    }
    .into()
}

/// Releases the lock (ending the session would release it too).
pub async fn unlock(session: &mut Session) -> anyhow::Result<()> {
    session
        .query(&format!("SELECT pg_advisory_unlock({LOCK_KEY});"))
        .await?;
    Ok(())
}

/// Which way [`apply`] runs migrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Run up scripts and record them.
    Up,
    /// Run down scripts and remove their records.
    Down,
}

/// Runs `migrations` in order, each atomically with its history change (unless it is a
/// no-transaction file). All of them go to psql in one pipelined write, so the path to the pod
/// is crossed once; psql stops at the first failure, which names its file and line.
pub async fn apply(
    session: &mut Session,
    migrations: &[&Migration],
    direction: Direction,
) -> anyhow::Result<Vec<Applied>> {
    crate::deadline::step("applying migrations");
    let mut steps = Vec::with_capacity(migrations.len());
    for migration in migrations {
        steps.push(Step::new(migration, direction)?);
    }
    let batches: Vec<&str> = steps.iter().map(|step| step.batch.as_str()).collect();
    let pipelined = session.pipeline(&batches).await;
    let mut applied = Vec::with_capacity(steps.len());
    for (step, rows) in steps.iter().zip(&pipelined.results) {
        let execution_ms = rows
            .last()
            .and_then(|row| row.first())
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        tracing::info!(
            "{} {} ({execution_ms} ms)",
            if direction == Direction::Up {
                "applied"
            } else {
                "reverted"
            },
            step.script.file
        );
        applied.push(Applied {
            version: step.version,
            file: step.script.file.clone(),
            checksum: step.script.checksum.clone(),
            execution_ms,
            no_transaction: step.outside_transaction,
        });
    }
    match pipelined.failure {
        None => Ok(applied),
        Some(error) => {
            let index = applied.len().min(steps.len().saturating_sub(1));
            let step = &steps[index];
            let first_line = pipelined.first_lines[index] + step.header_lines;
            Err(script_failure(
                error,
                step.script,
                first_line,
                step.outside_transaction,
            ))
        }
    }
}

/// One migration's batch: header (BEGIN, start time), the script, the history change, COMMIT,
/// and the session reset.
struct Step<'a> {
    version: u64,
    script: &'a Script,
    outside_transaction: bool,
    batch: String,
    header_lines: usize,
}

impl<'a> Step<'a> {
    fn new(migration: &'a Migration, direction: Direction) -> anyhow::Result<Step<'a>> {
        let (script, outside_transaction) = match direction {
            Direction::Up => (&migration.up, migration.no_transaction),
            Direction::Down => (
                migration
                    .down
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("{} has no down script", migration.up.file))?,
                false,
            ),
        };
        // Inside a transaction `now()` is its start; outside one, a psql variable keeps it.
        // BEGIN travels in one message with the file's first statement (`\;`), and the
        // history change, COMMIT and the session reset in one more: a migration costs the
        // server round trips of its own statements plus one.
        let (header, started, commit) = if outside_transaction {
            (
                "SELECT clock_timestamp() AS pgk8s_started \\gset\n",
                ":'pgk8s_started'::timestamptz",
                "",
            )
        } else {
            ("BEGIN \\;\n", "now()", "COMMIT \\; ")
        };
        let elapsed =
            format!("(extract(epoch FROM clock_timestamp() - {started}) * 1000)::integer");
        let record = match direction {
            Direction::Up => format!(
                "INSERT INTO pgk8s.schema_history (version, name, checksum, execution_ms, applied_by, kind) \
                 VALUES ({}, {}, {}, {elapsed}, current_user, 'migration') RETURNING execution_ms",
                migration.version,
                literal(&migration.name),
                literal(&migration.up.checksum)
            ),
            Direction::Down => format!(
                "DELETE FROM pgk8s.schema_history WHERE version = {} RETURNING {elapsed}",
                migration.version
            ),
        };
        let terminator = if script.needs_terminator() { ";" } else { "" };
        Ok(Step {
            version: migration.version,
            script,
            outside_transaction,
            header_lines: header.matches('\n').count(),
            // The history change, COMMIT and the session reset travel as one message (`\;`).
            batch: format!(
                "{header}{}\n{terminator}\n{record} \\; {commit}{RESET_SESSION}\n",
                script.text
            ),
        })
    }
}

/// What PostgreSQL says when `statement_timeout` (set from the command's deadline) stops a
/// statement.
const STATEMENT_TIMEOUT: &str = "canceling statement due to statement timeout";

fn script_failure(
    error: anyhow::Error,
    script: &Script,
    first_line: usize,
    outside_transaction: bool,
) -> anyhow::Error {
    let consequence = if outside_transaction {
        "it ran outside a transaction, so statements before the failing one stay applied: check the database by hand, then fix the file and run `pgk8s migrate` again"
    } else {
        "this migration was rolled back; earlier ones stay applied. Fix the file and run `pgk8s migrate` again"
    };
    let script_lines = script.text.lines().count().max(1);
    match error.downcast_ref::<SqlError>() {
        Some(SqlError::Statement { message, .. }) if message.contains(STATEMENT_TIMEOUT) => {
            let during = format!(
                "applying {} (the server cancelled it at the deadline)",
                script.file
            );
            crate::deadline::expired(Some(&during))
                .hint(consequence)
                .into()
        }
        Some(SqlError::Statement {
            line,
            message,
            context,
        }) => {
            let location = line
                .and_then(|line| line.checked_sub(first_line))
                .filter(|offset| *offset < script_lines)
                .map(|offset| format!(" at line {}", offset + 1))
                .unwrap_or_default();
            let context = context
                .first()
                .map(|line| format!(" ({})", line.trim()))
                .unwrap_or_default();
            MigrateError::ScriptFailed {
                file: script.file.clone(),
                location,
                message: format!("{message}{context}"),
                consequence,
            }
            .into()
        }
        Some(_) => error,
        None => error.context(MigrateError::LostSession {
            file: script.file.clone(),
        }),
    }
}

/// Re-reads the history after a change and checks that it shows exactly that change: kubectl's
/// exit code alone is no proof.
pub async fn confirmed_history(
    session: &mut Session,
    changed: &[Applied],
    direction: Direction,
) -> anyhow::Result<Vec<HistoryRow>> {
    let history = read_history(session).await?.unwrap_or_default();
    confirm(&history, changed, direction)?;
    Ok(history)
}

/// Records `migrations` as applied without running them (`migrate baseline`).
pub async fn record_baseline(
    session: &mut Session,
    migrations: &[&Migration],
) -> anyhow::Result<()> {
    let mut sql = String::from("BEGIN;\n");
    for migration in migrations {
        sql.push_str(&format!(
            "INSERT INTO pgk8s.schema_history (version, name, checksum, execution_ms, kind) VALUES ({}, {}, {}, 0, 'baseline');\n",
            migration.version,
            literal(&migration.name),
            literal(&migration.up.checksum)
        ));
    }
    sql.push_str("COMMIT;");
    session.query(&sql).await?;
    Ok(())
}

/// Re-records the checksums of `migrations` (`migrate repair`).
pub async fn record_repair(session: &mut Session, migrations: &[&Migration]) -> anyhow::Result<()> {
    let mut sql = String::from("BEGIN;\n");
    for migration in migrations {
        sql.push_str(&format!(
            "UPDATE pgk8s.schema_history SET checksum = {} WHERE version = {};\n",
            literal(&migration.up.checksum),
            migration.version
        ));
    }
    sql.push_str("COMMIT;");
    session.query(&sql).await?;
    Ok(())
}

/// Confirms from the history table that `expected` versions are recorded (after `Up`) or gone
/// (after `Down`).
pub fn confirm(
    history: &[HistoryRow],
    expected: &[Applied],
    direction: Direction,
) -> Result<(), MigrateError> {
    let present = direction == Direction::Up;
    for applied in expected {
        let row = history.iter().find(|row| row.version == applied.version);
        let ok = match (direction, row) {
            (Direction::Up, Some(row)) => row.checksum == applied.checksum,
            (Direction::Down, None) => true,
            _ => false,
        };
        if !ok {
            return Err(MigrateError::NotConfirmed {
                file: applied.file.clone(),
                expected: if present { "applied" } else { "reverted" },
            });
        }
    }
    Ok(())
}

/// Why a migration run failed or was refused.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A pending version is older than the newest applied one.
    #[error("migration {file} is pending but older than the newest applied version {newest}")]
    OutOfOrder {
        /// The pending file.
        file: String,
        /// The newest applied version.
        newest: u64,
    },
    /// `--target` names no version of the set.
    #[error("--target {target} is not a version of {source_name}")]
    UnknownTarget {
        /// The version asked for.
        target: u64,
        /// Where the migrations come from.
        source_name: String,
    },
    /// An applied version has no file any more.
    #[error("version {version} is applied but has no migration file")]
    MissingFile {
        /// The version.
        version: u64,
    },
    /// Rolling back needs a down file that does not exist.
    #[error("cannot roll back {file}: there is no {down}")]
    NoDownFile {
        /// The up file.
        file: String,
        /// The missing down file.
        down: String,
    },
    /// Applied migrations changed since they ran.
    #[error("applied migration changed since it ran: {files}")]
    Drift {
        /// Each file with its recorded and current checksum.
        files: String,
    },
    /// Another run held the migration lock for too long.
    #[error("another migration run held the lock for over {} ({holder})", humantime::format_duration(*.waited))]
    LockTimeout {
        /// How long this run waited.
        waited: Duration,
        /// Who holds it.
        holder: String,
    },
    /// A statement of a migration failed.
    #[error("{file} failed{location}: {message}")]
    ScriptFailed {
        /// The file.
        file: String,
        /// ` at line N`, when psql said.
        location: String,
        /// PostgreSQL's error and context.
        message: String,
        /// What the failure left behind.
        consequence: &'static str,
    },
    /// The session ended while a migration ran.
    #[error("lost the database session while running {file}")]
    LostSession {
        /// The file that was running.
        file: String,
    },
    /// The history does not show what ran.
    #[error("{file} ran, but the history table does not show it as {expected}")]
    NotConfirmed {
        /// The file.
        file: String,
        /// `applied` or `reverted`.
        expected: &'static str,
    },
}

/// A SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> MigrationSet {
        MigrationSet::from_files(
            "test".to_string(),
            [
                ("001_a.up.sql", "create table a();"),
                ("001_a.down.sql", "drop table a;"),
                ("002_b.up.sql", "create table b();"),
                ("002_b.down.sql", "drop table b;"),
                ("003_c.sql", "create table c();"),
            ]
            .iter()
            .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()))
            .collect(),
        )
        .unwrap()
    }

    fn row(set: &MigrationSet, version: u64) -> HistoryRow {
        let migration = set.get(version).unwrap();
        HistoryRow {
            version,
            name: migration.name.clone(),
            checksum: migration.up.checksum.clone(),
            applied_at: "2026-01-01T00:00:00Z".to_string(),
            execution_ms: 1,
            applied_by: "learnflow".to_string(),
            kind: "migration".to_string(),
        }
    }

    fn versions(plan: &[&Migration]) -> Vec<u64> {
        plan.iter().map(|migration| migration.version).collect()
    }

    #[test]
    fn pending_versions_are_planned_in_order_up_to_the_target() {
        let set = set();
        let history = [row(&set, 1)];
        assert_eq!(
            versions(&plan_up(&set, &history, &UpOptions::default()).unwrap()),
            [2, 3]
        );
        let to_two = UpOptions {
            target: Some(2),
            ..UpOptions::default()
        };
        assert_eq!(versions(&plan_up(&set, &history, &to_two).unwrap()), [2]);
        let unknown = UpOptions {
            target: Some(9),
            ..UpOptions::default()
        };
        assert!(matches!(
            plan_up(&set, &history, &unknown),
            Err(MigrateError::UnknownTarget { target: 9, .. })
        ));
    }

    #[test]
    fn drift_names_the_file_and_both_checksums() {
        let set = set();
        let mut changed = row(&set, 1);
        changed.checksum = "0123456789abcdef".repeat(4);
        let failure = plan_up(&set, &[changed], &UpOptions::default()).unwrap_err();
        assert!(matches!(failure, MigrateError::Drift { .. }));
        assert!(
            failure
                .to_string()
                .contains("001_a.up.sql (recorded 0123456789ab, file"),
            "{failure}"
        );
    }

    #[test]
    fn out_of_order_needs_permission() {
        let set = set();
        let history = [row(&set, 1), row(&set, 3)];
        let failure = plan_up(&set, &history, &UpOptions::default()).unwrap_err();
        assert!(
            failure
                .to_string()
                .contains("002_b.up.sql is pending but older than the newest applied version 3")
        );
        let allowed = UpOptions {
            allow_out_of_order: true,
            ..UpOptions::default()
        };
        assert_eq!(versions(&plan_up(&set, &history, &allowed).unwrap()), [2]);
    }

    #[test]
    fn down_goes_newest_first_and_refuses_without_a_down_file() {
        let set = set();
        let history = [row(&set, 1), row(&set, 2)];
        assert_eq!(
            versions(&plan_down(&set, &history, DownTarget::Steps(1)).unwrap()),
            [2]
        );
        assert_eq!(
            versions(&plan_down(&set, &history, DownTarget::To(0)).unwrap()),
            [2, 1]
        );
        let with_three = [row(&set, 1), row(&set, 2), row(&set, 3)];
        let failure = plan_down(&set, &with_three, DownTarget::Steps(1)).unwrap_err();
        assert!(
            failure.to_string().contains("there is no 003_c.down.sql"),
            "{failure}"
        );
    }

    #[test]
    fn statuses_merge_files_and_history() {
        let set = set();
        let mut drifted = row(&set, 2);
        drifted.checksum = "x".repeat(64);
        let mut gone = row(&set, 1);
        gone.version = 9;
        let states: Vec<(u64, VersionState)> = statuses(&set, &[row(&set, 1), drifted, gone])
            .iter()
            .map(|status| (status.version, status.state))
            .collect();
        assert_eq!(
            states,
            [
                (1, VersionState::Applied),
                (2, VersionState::Drifted),
                (3, VersionState::Pending),
                (9, VersionState::Missing)
            ]
        );
    }

    #[test]
    fn literals_double_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
    }
}

//! Seed data: the embedded LearnFlow starter set (`migrations/seed/*.sql`) or a user's file,
//! loaded in one transaction through one psql session.
//!
//! Seed files are idempotent: every insert is an upsert on a natural key whose update only
//! happens when the psql variable `pgk8s_update_existing` is true (`--update-existing`), so by
//! default a second run changes nothing.

use std::path::Path;

use serde::Serialize;

use crate::error::{ExitCode, Failure};
use crate::migrations::{EMBEDDED, Script};
use crate::sql::{Session, SqlError};

/// The embedded seed files, in load order.
pub fn embedded() -> Vec<Script> {
    let mut files: Vec<Script> = EMBEDDED
        .get_dir("seed")
        .map(|dir| {
            dir.files()
                .filter(|file| {
                    file.path()
                        .extension()
                        .is_some_and(|extension| extension == "sql")
                })
                .map(|file| {
                    let name = file
                        .path()
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    Script::new(&name, file.contents()).expect("the embedded seed files are valid")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort_by(|a, b| a.file.cmp(&b.file));
    files
}

/// A user's seed file (`seed -f FILE`), checked like a migration.
pub fn from_file(path: &Path) -> Result<Script, Failure> {
    let bytes = std::fs::read(path).map_err(|error| {
        Failure::usage(format!("cannot read seed file {}: {error}", path.display()))
            .hint("pass the path of a readable SQL file")
    })?;
    Script::new(&path.display().to_string(), &bytes)
}

/// Row counts of every table in the `public` schema (the application's tables; pgk8s's own
/// history lives in the `pgk8s` schema and is not counted).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TableCount {
    /// Table name.
    pub table: String,
    /// Exact row count.
    pub rows: i64,
}

/// One query for the exact row count of every application table.
pub const TABLE_COUNTS_SQL: &str = "SELECT table_name, \
    (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text \
    FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name;";

/// Reads [`TableCount`]s.
pub async fn table_counts(session: &mut Session) -> anyhow::Result<Vec<TableCount>> {
    let rows = session.query(TABLE_COUNTS_SQL).await?;
    Ok(rows
        .into_iter()
        .filter(|row| row.len() == 2)
        .map(|row| TableCount {
            table: row[0].clone(),
            rows: row[1].parse().unwrap_or(0),
        })
        .collect())
}

/// What a seed does with rows that already exist (`--update-existing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExistingRows {
    /// Leave them as they are (the default).
    Keep,
    /// Update them to the seed values.
    Update,
}

/// Loads `scripts` in one transaction; a failure rolls everything back and names file and line.
pub async fn load(
    session: &mut Session,
    scripts: &[Script],
    existing: ExistingRows,
) -> anyhow::Result<()> {
    let update_existing = existing == ExistingRows::Update;
    session
        .query(&format!(
            "\\set pgk8s_update_existing {update_existing}\nBEGIN;"
        ))
        .await?;
    for script in scripts {
        let first_line = session.lines_sent() + 1;
        let terminator = if script.needs_terminator() { ";" } else { "" };
        let batch = format!("{}\n{terminator}\n", script.text);
        if let Err(error) = session.query(&batch).await {
            return Err(seed_failure(error, script, first_line));
        }
    }
    session.query("COMMIT;").await?;
    Ok(())
}

fn seed_failure(error: anyhow::Error, script: &Script, first_line: usize) -> anyhow::Error {
    let Some(SqlError::Statement { line, message, .. }) = error.downcast_ref::<SqlError>() else {
        return error;
    };
    let location = line
        .and_then(|line| line.checked_sub(first_line))
        .map(|offset| format!(" at line {}", offset + 1))
        .unwrap_or_default();
    let hint = if message.contains("does not exist") {
        "the tables may not exist yet: run `pgk8s migrate` first; nothing was loaded"
    } else {
        "the whole seed was rolled back; fix the file and run it again"
    };
    Failure::new(
        ExitCode::MigrationFailed,
        format!("seed {} failed{location}: {message}", script.file),
    )
    .hint(hint)
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_seed_files_load_in_dependency_order() {
        let files: Vec<String> = embedded().into_iter().map(|script| script.file).collect();
        assert_eq!(
            files,
            [
                "001_curriculum.sql",
                "002_users.sql",
                "003_exercises.sql",
                "004_progress.sql"
            ]
        );
    }
}

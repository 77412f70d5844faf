//! Seed data: the embedded LearnFlow starter set (`migrations/seed/*.sql`) or a user's file,
//! loaded in one transaction through one psql session.
//!
//! Seed files are idempotent: every insert is an upsert on a natural key whose update only
//! happens when the psql variable `pgk8s_update_existing` is true (`--update-existing`), so by
//! default a second run changes nothing.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{ExitCode, Failure};
use crate::migration_files::{EMBEDDED, Script, normalize, refuse_session_takeover};
use crate::session::Session;
use crate::sql_error::SqlError;
use crate::sql_lexer::Lexer;

/// The embedded seed files, in load order.
pub fn embedded() -> Vec<SeedScript> {
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
    files.into_iter().map(SeedScript::Embedded).collect()
}

/// A seed script: held in memory (the embedded set), or a user's file streamed from disk.
pub enum SeedScript {
    /// One of the embedded LearnFlow files.
    Embedded(Script),
    /// A user's file, checked without being held in memory and streamed when loaded.
    File(SeedFile),
}

/// A user's seed file (`seed -f FILE`), read once to check it (constant memory, whatever its
/// size) and once more to stream it into the session.
pub struct SeedFile {
    path: PathBuf,
    /// As the user named it.
    pub file: String,
    /// SHA-256 of the normalised text, hex.
    pub checksum: String,
    /// Size on disk.
    pub size_bytes: u64,
    starts_with_bom: bool,
    terminated: bool,
}

impl SeedScript {
    /// The file name.
    pub fn file(&self) -> &str {
        match self {
            SeedScript::Embedded(script) => &script.file,
            SeedScript::File(file) => &file.file,
        }
    }

    /// SHA-256 of the normalised text.
    pub fn checksum(&self) -> &str {
        match self {
            SeedScript::Embedded(script) => &script.checksum,
            SeedScript::File(file) => &file.checksum,
        }
    }

    /// Size in bytes.
    pub fn size_bytes(&self) -> u64 {
        match self {
            SeedScript::Embedded(script) => script.text.len() as u64,
            SeedScript::File(file) => file.size_bytes,
        }
    }
}

/// The longest line a seed file may have: lines are checked one at a time.
const SEED_LINE_MAX: u64 = 64 << 20;

/// Checks a user's seed file (`seed -f FILE`) as a migration is checked — UTF-8, not empty, no
/// unterminated quote or comment, no psql meta-command or `COPY … FROM STDIN`, no statement
/// that ends the seed's transaction — reading it
/// line by line.
pub fn from_file(path: &Path) -> Result<SeedScript, Failure> {
    use std::io::{BufRead, Read};
    let shown = path.display().to_string();
    let unreadable = |why: String| {
        Failure::usage(format!("cannot read seed file {shown}: {why}"))
            .hint("pass the path of a readable SQL file")
    };
    let file = crate::input::open_regular(path).map_err(unreadable)?;
    let mut reader = std::io::BufReader::new(file);
    let mut lexer = Lexer::default();
    let mut hasher = Sha256::new();
    let (mut size_bytes, mut starts_with_bom, mut blank) = (0u64, false, true);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(SEED_LINE_MAX + 1)
            .read_until(b'\n', &mut line)
            .map_err(|error| unreadable(error.to_string()))?;
        if read == 0 {
            break;
        }
        if read as u64 > SEED_LINE_MAX {
            return Err(unreadable(format!(
                "a line is longer than {} MiB",
                SEED_LINE_MAX >> 20
            )));
        }
        let mut bytes = line.as_slice();
        if size_bytes == 0
            && let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF")
        {
            starts_with_bom = true;
            bytes = rest;
        }
        let text = normalize(bytes).map_err(|offset| {
            Failure::usage(format!(
                "{shown} is not valid UTF-8 (first bad byte at offset {})",
                size_bytes + offset as u64
            ))
            .hint("save the file as UTF-8")
        })?;
        size_bytes += read as u64;
        blank &= text.trim().is_empty();
        hasher.update(text.as_bytes());
        lexer.feed(&text);
    }
    if blank {
        return Err(
            Failure::usage(format!("{shown} is empty")).hint("write the SQL, or pass another file")
        );
    }
    if let Some(problem) = lexer.unterminated() {
        return Err(Failure::usage(format!("{shown} ends inside {problem}"))
            .hint("close the quote or comment; psql would otherwise read the rest of the session into it"));
    }
    refuse_session_takeover(&shown, &lexer)?;
    if let Some(statement) = lexer.transaction_control() {
        return Err(Failure::usage(format!(
            "{shown} contains `{}`, which would end the seed's transaction",
            statement.to_uppercase()
        ))
        .hint("remove it: pgk8s loads every seed file in one transaction, so a failure leaves nothing half-loaded"));
    }
    Ok(SeedScript::File(SeedFile {
        path: path.to_path_buf(),
        file: shown,
        checksum: hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
        size_bytes,
        starts_with_bom,
        terminated: lexer.terminated(),
    }))
}

/// Row counts of every table in the `public` schema (the application's tables; pgk8s's own
/// history lives in the `pgk8s` schema and is not counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCount {
    /// Table name.
    pub table: String,
    /// Exact row count.
    pub rows: i64,
}

/// The application's tables: name, and the name quoted for SQL.
const APPLICATION_TABLES_SQL: &str = "SELECT table_name, format('%I.%I', table_schema, table_name) \
    FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' \
    ORDER BY table_name;";

/// Reads [`TableCount`]s of the application's tables.
pub async fn table_counts(session: &mut Session) -> anyhow::Result<Vec<TableCount>> {
    Ok(count_rows(session, APPLICATION_TABLES_SQL)
        .await?
        .into_iter()
        .map(|(table, rows)| TableCount { table, rows })
        .collect())
}

/// Exact row counts of the tables `list_sql` names (rows of a label and the table's name quoted
/// for SQL), in two queries whatever their number: the list, then one `count(*)` per table
/// joined by `UNION ALL`. (Plain SQL: `query_to_xml` would need a server built with libxml.)
pub async fn count_rows(
    session: &mut Session,
    list_sql: &str,
) -> anyhow::Result<Vec<(String, i64)>> {
    let tables = session.query(list_sql).await?;
    let counts: Vec<String> = tables
        .iter()
        .filter_map(|row| match row.as_slice() {
            [label, table] => Some(format!(
                "SELECT {}, count(*) FROM {table}",
                crate::migration_engine::literal(label)
            )),
            _ => None,
        })
        .collect();
    if counts.is_empty() {
        return Ok(Vec::new());
    }
    let rows = session
        .query(&format!("{} ORDER BY 1;", counts.join(" UNION ALL ")))
        .await?;
    rows.into_iter()
        .map(|row| match row.as_slice() {
            [label, count] => Ok((label.clone(), count.parse()?)),
            _ => Err(anyhow::anyhow!("unexpected row count result")),
        })
        .collect()
}

/// What a seed does with rows that already exist (`--update-existing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistingRows {
    /// Leave them as they are (the default).
    Keep,
    /// Update them to the seed values.
    Update,
}

/// Loads `scripts` in one transaction; a failure rolls everything back and names file and line.
pub async fn load(
    session: &mut Session,
    scripts: &[SeedScript],
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
        let loaded = match script {
            SeedScript::Embedded(script) => {
                let terminator = if script.needs_terminator() { ";" } else { "" };
                session
                    .query(&format!("{}\n{terminator}\n", script.text))
                    .await
            }
            SeedScript::File(file) => {
                let terminator = if file.terminated { "" } else { ";" };
                let mut reader = tokio::fs::File::open(&file.path).await?;
                if file.starts_with_bom {
                    let mut bom = [0u8; 3];
                    tokio::io::AsyncReadExt::read_exact(&mut reader, &mut bom).await?;
                }
                session
                    .query_streamed(&mut reader, &format!("\n{terminator}\n"))
                    .await
            }
        };
        if let Err(error) = loaded {
            return Err(seed_failure(error, script.file(), first_line));
        }
    }
    session.query("COMMIT;").await?;
    Ok(())
}

fn seed_failure(error: anyhow::Error, file: &str, first_line: usize) -> anyhow::Error {
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
        format!("seed {file} failed{location}: {message}"),
    )
    .hint(hint)
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_seed_files_load_in_dependency_order() {
        let files: Vec<String> = embedded()
            .iter()
            .map(|script| script.file().to_string())
            .collect();
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

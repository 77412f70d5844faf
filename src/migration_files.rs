//! The migration files: discovery, validation and checksums. Pure: nothing here touches a
//! database (that is [`crate::migration_engine`]).
//!
//! Files are `NNN_name.up.sql` with an optional `NNN_name.down.sql`, or up-only `NNN_name.sql`.
//! Versions are numbers (`001` and `1` are the same version) and must be unique; gaps are fine
//! and only noted. Checksums are SHA-256 over the text with a UTF-8 BOM removed and CRLF turned
//! into LF, so an editor's line endings never look like drift. Every problem is found here,
//! before anything runs.

use std::collections::BTreeMap;
use std::path::Path;

use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use crate::error::Failure;
use crate::sql_lexer::{Lexer, SessionTakeover};

/// The LearnFlow migrations and seed data, compiled into the binary.
pub static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/migrations");

/// The tables the embedded LearnFlow migrations create (what `verify --check-schema` expects).
pub const LEARNFLOW_TABLES: [&str; 6] = [
    "curriculum",
    "exercises",
    "progress",
    "struggle_alerts",
    "submissions",
    "users",
];

/// The first line that makes a migration run outside a transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- pgk8s:no-transaction";
/// The largest version the history table's `bigint` column holds.
pub const MAX_VERSION: u64 = i64::MAX as u64;
/// Migration files larger than this are refused: bulk data belongs in `pgk8s seed -f` or psql.
pub const MAX_SCRIPT_BYTES: usize = 32 * 1024 * 1024;

/// One SQL file, normalised.
#[derive(Clone, Debug)]
pub struct Script {
    /// File name, e.g. `002_users.up.sql`.
    pub file: String,
    /// The text (BOM removed, LF line endings).
    pub text: String,
    /// SHA-256 of the text, hex.
    pub checksum: String,
}

/// One version: its up script and, if written, its down script.
#[derive(Clone, Debug)]
pub struct Migration {
    /// The version number.
    pub version: u64,
    /// The name part of the file name.
    pub name: String,
    /// The script that applies it.
    pub up: Script,
    /// The script that reverts it.
    pub down: Option<Script>,
    /// Whether the up script starts with `-- pgk8s:no-transaction`.
    pub no_transaction: bool,
}

/// Every migration of a directory (or of the embedded set), in version order.
#[derive(Clone, Debug)]
pub struct MigrationSet {
    /// Where the files came from: `embedded` or the directory.
    pub source: String,
    /// The migrations, ascending by version.
    pub migrations: Vec<Migration>,
    /// Observations that are not errors (gaps in the numbering).
    pub notes: Vec<String>,
}

impl MigrationSet {
    /// The embedded LearnFlow migrations.
    pub fn embedded() -> MigrationSet {
        let files = EMBEDDED
            .files()
            .map(|file| (file.path().display().to_string(), file.contents().to_vec()))
            .collect();
        MigrationSet::from_files("embedded".to_string(), files)
            .expect("the embedded migrations are valid")
    }

    /// The embedded set, or the one in `dir` when given.
    pub fn load(dir: Option<&Path>) -> Result<MigrationSet, Failure> {
        match dir {
            Some(dir) => MigrationSet::from_dir(dir),
            None => Ok(MigrationSet::embedded()),
        }
    }

    /// Reads every `*.sql` file directly inside `dir` (subdirectories such as `seed/` are not
    /// migrations). Symlinks must stay inside the directory.
    pub fn from_dir(dir: &Path) -> Result<MigrationSet, Failure> {
        let shown = dir.display();
        let hint = "pass a directory of NNN_name.up.sql / NNN_name.down.sql files with -m/--migrations-dir";
        let root = dir.canonicalize().map_err(|error| {
            Failure::usage(format!(
                "migrations directory {shown} cannot be opened: {error}"
            ))
            .hint(hint)
        })?;
        let entries = std::fs::read_dir(&root).map_err(|error| {
            Failure::usage(format!(
                "migrations directory {shown} cannot be read: {error}"
            ))
            .hint(hint)
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|error| Failure::usage(format!("reading {shown}: {error}")))?;
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if !file_name.ends_with(".sql") || path.is_dir() {
                continue;
            }
            let resolved = path.canonicalize().map_err(|error| {
                Failure::usage(format!("migration {file_name} cannot be opened: {error}"))
            })?;
            if resolved.parent() != Some(root.as_path()) {
                return Err(Failure::usage(format!(
                    "migration {file_name} is a link to {}, outside the migrations directory",
                    resolved.display()
                ))
                .hint("copy the file into the directory instead of linking to it"));
            }
            let size = resolved
                .metadata()
                .map(|metadata| metadata.len())
                .unwrap_or(0);
            if size > MAX_SCRIPT_BYTES as u64 {
                return Err(too_large(&file_name, size as usize));
            }
            let bytes =
                crate::input::read_regular(&resolved, MAX_SCRIPT_BYTES as u64).map_err(|why| {
                    Failure::usage(format!("migration {file_name} cannot be read: {why}"))
                        .hint("migrations are regular .sql files in the directory")
                })?;
            files.push((file_name, bytes));
        }
        if files.is_empty() {
            return Err(
                Failure::usage(format!("migrations directory {shown} has no .sql files"))
                    .hint(hint),
            );
        }
        MigrationSet::from_files(root.display().to_string(), files)
    }

    /// Builds a set from `(file name, bytes)` pairs; names inside subdirectories are skipped.
    pub fn from_files(
        source: String,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<MigrationSet, Failure> {
        let mut ups: BTreeMap<u64, (String, Script)> = BTreeMap::new();
        let mut downs: BTreeMap<u64, (String, Script)> = BTreeMap::new();
        for (path, bytes) in files {
            if path.contains('/') || !path.ends_with(".sql") {
                continue;
            }
            let parsed = FileName::parse(&path)?;
            if bytes.len() > MAX_SCRIPT_BYTES {
                return Err(too_large(&path, bytes.len()));
            }
            let script = Script::new(&path, &bytes)?;
            let target = if parsed.down { &mut downs } else { &mut ups };
            if let Some((_, existing)) = target.get(&parsed.version) {
                return Err(Failure::usage(format!(
                    "migrations {} and {path} have the same version {}",
                    existing.file, parsed.version
                ))
                .hint("give every migration a unique version number"));
            }
            target.insert(parsed.version, (parsed.name, script));
        }
        let mut migrations = Vec::new();
        for (version, (name, up)) in &ups {
            let down = match downs.remove(version) {
                Some((down_name, down)) if &down_name != name => {
                    return Err(Failure::usage(format!(
                        "{} does not match {} (same version, different name)",
                        down.file, up.file
                    ))
                    .hint("name the down file exactly like its up file"));
                }
                Some((_, down)) => Some(down),
                None => None,
            };
            let no_transaction =
                up.text.lines().next().map(str::trim) == Some(NO_TRANSACTION_MARKER);
            if !no_transaction {
                for script in std::iter::once(up).chain(down.as_ref()) {
                    refuse_transaction_control(script)?;
                }
            }
            migrations.push(Migration {
                version: *version,
                name: name.clone(),
                no_transaction,
                up: up.clone(),
                down,
            });
        }
        if let Some((_, (_, orphan))) = downs.into_iter().next() {
            return Err(
                Failure::usage(format!("{} has no matching up migration", orphan.file))
                    .hint("add the .up.sql file, or remove the stray .down.sql"),
            );
        }
        let notes = migrations
            .windows(2)
            .filter(|pair| pair[1].version > pair[0].version + 1)
            .map(|pair| {
                format!(
                    "versions {} to {} are not used (gaps are allowed)",
                    pair[0].version + 1,
                    pair[1].version - 1
                )
            })
            .collect();
        Ok(MigrationSet {
            source,
            migrations,
            notes,
        })
    }

    /// The migration with `version`.
    pub fn get(&self, version: u64) -> Option<&Migration> {
        self.migrations
            .iter()
            .find(|migration| migration.version == version)
    }
}

impl Script {
    /// Normalises and checks one file: UTF-8, not empty, no unterminated quote or comment, no
    /// psql meta-command or `COPY … FROM STDIN`.
    pub fn new(file: &str, bytes: &[u8]) -> Result<Script, Failure> {
        let text = normalize(bytes).map_err(|offset| {
            Failure::usage(format!(
                "{file} is not valid UTF-8 (first bad byte at offset {offset})"
            ))
            .hint("save the file as UTF-8")
        })?;
        if text.trim().is_empty() {
            return Err(Failure::usage(format!("{file} is empty"))
                .hint("write the SQL, or delete the file"));
        }
        let lexer = Lexer::of(&text);
        if let Some(problem) = lexer.unterminated() {
            return Err(Failure::usage(format!("{file} ends inside {problem}"))
                .hint("close the quote or comment; psql would otherwise read the rest of the session into it"));
        }
        refuse_session_takeover(file, &lexer)?;
        Ok(Script {
            file: file.to_string(),
            checksum: checksum(&text),
            text,
        })
    }

    /// Whether the last statement lacks its `;` (pgk8s then adds one).
    pub fn needs_terminator(&self) -> bool {
        !Lexer::of(&self.text).terminated()
    }
}

/// SHA-256 (hex) of normalised text.
pub fn checksum(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Removes a UTF-8 BOM and turns CRLF into LF. On invalid UTF-8, the offset of the bad byte.
pub fn normalize(bytes: &[u8]) -> Result<String, usize> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|error| error.valid_up_to())?;
    Ok(text.replace("\r\n", "\n"))
}

/// A migration that commits or rolls back by itself cannot run inside the transaction pgk8s
/// wraps it in with its history row: its first part would commit, and a later failure would be
/// reported as rolled back although it was not.
fn refuse_transaction_control(script: &Script) -> Result<(), Failure> {
    match Lexer::of(&script.text).transaction_control() {
        None => Ok(()),
        Some(statement) => Err(Failure::usage(format!(
            "{} contains `{}`, which would end pgk8s's transaction around the migration",
            script.file,
            statement.to_uppercase()
        ))
        .hint(format!(
            "remove it (each migration already runs in one transaction with its history row), \
             or start the file with `{NO_TRANSACTION_MARKER}` to run it without one"
        ))),
    }
}

/// pgk8s sends a file to psql as SQL, inside one session that also carries its own
/// bookkeeping: a psql meta-command (`\set`, `\i`, `\copy`, ...) or a `COPY … FROM STDIN`
/// would act on that session instead (change how errors stop it, or read the rest of it as
/// rows), so such a file is refused before anything runs.
pub fn refuse_session_takeover(file: &str, lexer: &Lexer) -> Result<(), Failure> {
    match lexer.session_takeover() {
        None => Ok(()),
        Some(SessionTakeover::MetaCommand { command, line }) => Err(Failure::usage(format!(
            "{file} line {line}: `\\{command}` is a psql meta-command, not SQL"
        ))
        .hint(
            "write it as SQL (SET, set_config(), CREATE ...); run psql meta-commands yourself with `pgk8s psql`",
        )),
        Some(SessionTakeover::CopyFromStdin { line }) => Err(Failure::usage(format!(
            "{file} line {line}: `COPY … FROM STDIN` would read the rest of pgk8s's psql session as rows"
        ))
        .hint("write the rows as INSERT statements, or load a CSV with `pgk8s psql` and \\copy")),
    }
}

fn too_large(file: &str, size: usize) -> Failure {
    Failure::usage(format!(
        "{file} is {} MiB; migrations are limited to {} MiB",
        size / (1024 * 1024),
        MAX_SCRIPT_BYTES / (1024 * 1024)
    ))
    .hint("load bulk data with `pgk8s seed -f FILE` or `pgk8s psql`, and keep schema changes small")
}

/// A parsed `NNN_name[.up|.down].sql`.
struct FileName {
    version: u64,
    name: String,
    down: bool,
}

impl FileName {
    fn parse(file: &str) -> Result<FileName, Failure> {
        let invalid = || {
            Failure::usage(format!("migration file name {file:?} is not NNN_name.up.sql, NNN_name.down.sql or NNN_name.sql"))
                .hint("rename it, e.g. 008_add_badges.up.sql")
        };
        let (stem, down) = if let Some(stem) = file.strip_suffix(".down.sql") {
            (stem, true)
        } else if let Some(stem) = file.strip_suffix(".up.sql") {
            (stem, false)
        } else {
            (file.strip_suffix(".sql").ok_or_else(invalid)?, false)
        };
        let (digits, name) = stem.split_once('_').ok_or_else(invalid)?;
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || !name_ok {
            return Err(invalid());
        }
        let version: u128 = digits.parse().map_err(|_| invalid())?;
        if version > u128::from(MAX_VERSION) {
            return Err(Failure::usage(format!(
                "migration file {file:?} has version {version}, larger than the history table's bigint allows ({MAX_VERSION})"
            ))
            .hint("number migrations with fewer digits, e.g. 008_ or a date like 20261202_"));
        }
        Ok(FileName {
            version: version as u64,
            name: name.to_string(),
            down,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitCode;

    fn set(files: &[(&str, &str)]) -> Result<MigrationSet, Failure> {
        MigrationSet::from_files(
            "test".to_string(),
            files
                .iter()
                .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()))
                .collect(),
        )
    }

    fn error(files: &[(&str, &str)]) -> String {
        let failure = set(files).expect_err("should be rejected");
        assert_eq!(failure.code, ExitCode::Usage);
        failure.message
    }

    #[test]
    fn the_embedded_learnflow_set_is_complete() {
        let set = MigrationSet::embedded();
        let versions: Vec<u64> = set
            .migrations
            .iter()
            .map(|migration| migration.version)
            .collect();
        assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7]);
        assert!(
            set.migrations
                .iter()
                .all(|migration| migration.down.is_some())
        );
        assert_eq!(set.get(5).unwrap().name, "submissions");
        assert!(
            set.get(4).unwrap().name == "exercises",
            "exercises must precede submissions"
        );
    }

    #[test]
    fn up_down_and_up_only_files_pair_by_version() {
        let set = set(&[
            ("001_a.up.sql", "create table a();"),
            ("001_a.down.sql", "drop table a;"),
            ("3_b.sql", "create table b();"),
            ("README.md", "ignored"),
            ("seed/001_x.sql", "ignored too"),
        ])
        .unwrap();
        assert_eq!(set.migrations.len(), 2);
        assert!(set.migrations[0].down.is_some() && set.migrations[1].down.is_none());
        assert_eq!(
            set.notes,
            ["versions 2 to 2 are not used (gaps are allowed)"]
        );
    }

    #[test]
    fn bad_sets_are_rejected_before_anything_runs() {
        assert!(error(&[("001_a.up.sql", "x;"), ("1_b.up.sql", "y;")]).contains("same version 1"));
        assert!(error(&[("001_a.sql", "x;"), ("001_a.up.sql", "y;")]).contains("same version"));
        assert!(error(&[("a_b.sql", "x;")]).contains("is not NNN_name"));
        assert!(error(&[("001.sql", "x;")]).contains("is not NNN_name"));
        assert!(error(&[("001_a.down.sql", "x;")]).contains("no matching up"));
        assert!(
            error(&[("001_a.up.sql", "x;"), ("001_b.down.sql", "y;")]).contains("does not match")
        );
        assert!(error(&[("001_a.sql", "  \n")]).contains("is empty"));
        assert!(error(&[("001_a.sql", "select 'open;")]).contains("quoted string"));
        assert!(error(&[("001_a.sql", "/* open")]).contains("comment"));
        assert!(error(&[("001_a.sql", "do $body$ begin")]).contains("dollar-quoted"));
        let invalid = MigrationSet::from_files(
            "t".into(),
            vec![("001_a.sql".into(), vec![b's', 0xff, b';'])],
        );
        assert!(invalid.unwrap_err().message.contains("not valid UTF-8"));
    }

    #[test]
    fn checksums_ignore_bom_and_crlf_only() {
        let plain = Script::new("a.sql", b"select 1;\nselect 2;\n").unwrap();
        let windows = Script::new("a.sql", b"\xEF\xBB\xBFselect 1;\r\nselect 2;\r\n").unwrap();
        let changed = Script::new("a.sql", b"select 1;\nselect 3;\n").unwrap();
        assert_eq!(plain.checksum, windows.checksum);
        assert_ne!(plain.checksum, changed.checksum);
        assert_eq!(plain.checksum.len(), 64);
    }

    #[test]
    fn the_lexer_knows_where_statements_end() {
        assert!(
            Script::new("a.sql", b"select 1")
                .unwrap()
                .needs_terminator()
        );
        assert!(
            !Script::new("a.sql", b"select 1; -- done\n")
                .unwrap()
                .needs_terminator()
        );
        assert!(
            !Script::new("a.sql", b"select ';' ;")
                .unwrap()
                .needs_terminator()
        );
        assert!(
            Script::new("a.sql", b"select $$;$$")
                .unwrap()
                .needs_terminator()
        );
        assert!(
            !Script::new(
                "a.sql",
                b"create function f() returns int as $f$ select 1; $f$ language sql;"
            )
            .unwrap()
            .needs_terminator()
        );
    }

    #[test]
    fn no_transaction_marker_is_read_from_the_first_line() {
        let set = set(&[(
            "001_idx.sql",
            "-- pgk8s:no-transaction\ncreate index concurrently i on t (c);",
        )])
        .unwrap();
        assert!(set.migrations[0].no_transaction);
    }
}

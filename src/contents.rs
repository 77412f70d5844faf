//! What a database holds — every table's exact row count, the migration history, the roles and
//! databases a copy of the application database leaves behind — read in one session, and how
//! two readings differ. A major upgrade and a move to another engine prove their copy with it.

use std::time::Duration;

use anyhow::Context as _;

use crate::chart;
use crate::config::Config;
use crate::migration_engine::{self, literal};
use crate::release::{Connect, open_primary};
use crate::transport::{Login, Mode};

/// How long reading waits for the database to accept connections (a pod that was just started
/// may still be coming up).
const CONNECT_WAIT: Duration = Duration::from_secs(60);

/// What a database holds, to compare two copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contents {
    /// `server_version_num` (e.g. 170006).
    pub server_version_num: u32,
    /// Every table (`schema.table`, quoted as SQL needs) with its exact row count.
    pub tables: Vec<(String, u64)>,
    /// The migration history: version and checksum.
    pub history: Vec<(u64, String)>,
    /// Roles and databases the move does not carry (it moves the application database; the
    /// chart creates its two roles again from the Secret).
    pub not_carried: Vec<String>,
}

impl Contents {
    /// The PostgreSQL major that serves the database.
    pub fn major(&self) -> u32 {
        self.server_version_num / 10_000
    }

    /// The total number of rows.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, rows)| rows).sum()
    }
}

/// Reads the contents in one read-only superuser session: the server's version, every table's
/// exact row count, the migration history, and the roles and databases a move leaves behind.
pub async fn contents(config: &Config) -> anyhow::Result<Contents> {
    let connect = Connect {
        login: Login::Superuser,
        wait: crate::deadline::cap(CONNECT_WAIT),
    };
    let (mut session, _) = open_primary(config, connect, Mode::ReadOnly).await?;
    let version = session
        .query("SELECT current_setting('server_version_num');")
        .await?;
    let server_version_num = first_field(&version)
        .parse()
        .context("reading server_version_num")?;
    let tables = crate::seed::count_rows(
        &mut session,
        "SELECT format('%I.%I', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1;",
    )
    .await?
    .into_iter()
    .map(|(table, rows)| Ok((table, u64::try_from(rows)?)))
    .collect::<anyhow::Result<Vec<_>>>()?;
    let history = migration_engine::read_history(&mut session)
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(|row| (row.version, row.checksum))
        .collect();
    let kept = [
        literal(chart::SUPERUSER),
        literal(config.username.as_str()),
        literal(chart::REPLICATION_USER),
    ]
    .join(", ");
    let left = session
        .query(&format!(
            "SELECT 'role ' || rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname NOT IN ({kept}) \
             UNION ALL SELECT 'database ' || datname FROM pg_database \
             WHERE datname NOT IN ('postgres', 'template0', 'template1', {}) ORDER BY 1;",
            literal(config.database.as_str())
        ))
        .await?;
    session.close().await?;
    Ok(Contents {
        server_version_num,
        tables,
        history,
        not_carried: left
            .into_iter()
            .filter_map(|row| row.into_iter().next())
            .collect(),
    })
}

fn first_field(rows: &[Vec<String>]) -> &str {
    rows.first()
        .and_then(|row| row.first())
        .map_or("", String::as_str)
}

/// How `after` differs from `before`: tables missing, added or with other row counts, and a
/// migration history that is not the same. Empty when the move kept everything.
pub fn differences(before: &Contents, after: &Contents) -> Vec<String> {
    let mut found = Vec::new();
    for (table, rows) in &before.tables {
        match after.tables.iter().find(|(name, _)| name == table) {
            None => found.push(format!("table {table} is missing")),
            Some((_, now)) if now != rows => {
                found.push(format!("table {table} has {now} rows, had {rows}"));
            }
            Some(_) => {}
        }
    }
    for (table, _) in &after.tables {
        if !before.tables.iter().any(|(name, _)| name == table) {
            found.push(format!("table {table} was not there before"));
        }
    }
    if before.history != after.history {
        found.push(format!(
            "the migration history differs ({} entries before, {} after)",
            before.history.len(),
            after.history.len()
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(tables: &[(&str, u64)], history: &[u64]) -> Contents {
        Contents {
            server_version_num: 170_006,
            tables: tables
                .iter()
                .map(|(name, rows)| (name.to_string(), *rows))
                .collect(),
            history: history.iter().map(|v| (*v, format!("c{v}"))).collect(),
            not_carried: Vec::new(),
        }
    }

    #[test]
    fn differences_name_every_table_and_the_history() {
        let before = contents(&[("public.users", 3), ("public.progress", 5)], &[1, 2]);
        assert!(differences(&before, &before.clone()).is_empty());
        let after = contents(&[("public.users", 3), ("public.extra", 0)], &[1]);
        let found = differences(&before, &after);
        assert_eq!(
            found,
            [
                "table public.progress is missing",
                "table public.extra was not there before",
                "the migration history differs (2 entries before, 1 after)",
            ]
        );
        let fewer = contents(&[("public.users", 2), ("public.progress", 5)], &[1, 2]);
        assert_eq!(
            differences(&before, &fewer),
            ["table public.users has 2 rows, had 3"]
        );
        assert_eq!(before.major(), 17);
        assert_eq!(before.rows(), 8);
    }
}

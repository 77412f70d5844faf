//! Exit codes and classified failures: the one place where an error becomes a number.
//!
//! Modules at the edges return typed errors (`process::ProcessError`, [`Failure`]); commands add
//! context with `anyhow`. [`classify`] walks the cause chain once, at the top, and picks the code.
//! Nothing else in the crate decides how the process exits.

use serde::Serialize;

/// The documented exit codes (README, SKILL.md, `references/troubleshooting.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "u8")]
pub enum ExitCode {
    /// Everything worked.
    Success,
    /// Unexpected or unclassified error.
    General,
    /// No context, API server down, or access forbidden.
    ClusterUnreachable,
    /// helm or kubectl (or psql for `--database-url`) missing or too old.
    ToolMissing,
    /// A deploy, wait or command ran past its deadline.
    Timeout,
    /// `verify` found problems.
    Unhealthy,
    /// PVC Pending, pod unschedulable or OOMKilled.
    InsufficientResources,
    /// SQL error, checksum drift, lock timeout, out-of-order migration.
    MigrationFailed,
    /// The database did not accept a connection.
    DatabaseUnreachable,
    /// A destructive action needs `--yes`, or the cluster is in an unsafe state.
    Refused,
    /// Invalid flags or input, caught before any call was made.
    Usage,
    /// Stopped by Ctrl-C (SIGINT).
    Interrupted,
    /// Stopped by SIGTERM.
    Terminated,
    /// The exit status of a program pgk8s ran in the foreground for the user (`pgk8s psql`).
    Child(u8),
}

impl ExitCode {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::General => 1,
            ExitCode::ClusterUnreachable => 2,
            ExitCode::ToolMissing => 3,
            ExitCode::Timeout => 4,
            ExitCode::Unhealthy => 5,
            ExitCode::InsufficientResources => 6,
            ExitCode::MigrationFailed => 7,
            ExitCode::DatabaseUnreachable => 8,
            ExitCode::Refused => 9,
            ExitCode::Usage => 64,
            ExitCode::Interrupted => 130,
            ExitCode::Terminated => 143,
            ExitCode::Child(code) => code,
        }
    }
}

impl From<ExitCode> for u8 {
    fn from(code: ExitCode) -> u8 {
        code.code()
    }
}

/// A failure that knows its exit code and, where one exists, how to fix it.
///
/// The message is one lowercase line without a final period; the hint is a full sentence.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// How the process exits when this failure reaches the top.
    pub code: ExitCode,
    /// What failed and why, on one line.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with `code` and `message` and no hint yet.
    pub fn new(code: ExitCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Attaches the fix a user should try.
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// A usage error (exit 64): bad input caught before anything ran.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(ExitCode::Usage, message)
    }
}

/// The exit code and hint for an error, taken from the first classified error in its chain.
pub fn classify(error: &anyhow::Error) -> (ExitCode, Option<String>) {
    // anyhow's own downcast also finds a Failure or SqlError attached as context.
    if let Some(failure) = error.downcast_ref::<Failure>() {
        return (failure.code, failure.hint.clone());
    }
    if let Some(sql_error) = error.downcast_ref::<crate::sql_error::SqlError>() {
        return (sql_error.exit_code(), sql_error.hint());
    }
    for cause in error.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return (failure.code, failure.hint.clone());
        }
        if let Some(process_error) = cause.downcast_ref::<crate::process::ProcessError>() {
            return (process_error.exit_code(), process_error.hint());
        }
        if let Some(sql_error) = cause.downcast_ref::<crate::sql_error::SqlError>() {
            return (sql_error.exit_code(), sql_error.hint());
        }
        if cause.downcast_ref::<clap::Error>().is_some() {
            return (ExitCode::Usage, None);
        }
    }
    (ExitCode::General, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn documented_codes_are_stable() {
        let table = [
            (ExitCode::Success, 0),
            (ExitCode::General, 1),
            (ExitCode::ClusterUnreachable, 2),
            (ExitCode::ToolMissing, 3),
            (ExitCode::Timeout, 4),
            (ExitCode::Unhealthy, 5),
            (ExitCode::InsufficientResources, 6),
            (ExitCode::MigrationFailed, 7),
            (ExitCode::DatabaseUnreachable, 8),
            (ExitCode::Refused, 9),
            (ExitCode::Usage, 64),
            (ExitCode::Interrupted, 130),
            (ExitCode::Terminated, 143),
        ];
        for (code, number) in table {
            assert_eq!(code.code(), number, "{code:?}");
        }
    }

    #[test]
    fn classification_finds_a_failure_under_context() {
        let error =
            Err::<(), _>(Failure::new(ExitCode::Refused, "pvc left over").hint("use --yes"))
                .context("deploy failed")
                .unwrap_err();
        assert_eq!(
            classify(&error),
            (ExitCode::Refused, Some("use --yes".to_string()))
        );
    }

    #[test]
    fn unclassified_errors_are_general() {
        let error = anyhow::anyhow!("something odd");
        assert_eq!(classify(&error), (ExitCode::General, None));
    }
}

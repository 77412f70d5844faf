//! The documented exit codes, and [`Failure`]: a command's explicit verdict (a usage error, a
//! refusal) with its code and hint. This module is the bottom of the crate and imports nothing
//! from it; the mapping of every other error to a code lives at the top, in
//! [`crate::exit_status`].

use serde::Serialize;

/// The documented exit codes (README, SKILL.md, `skill/references/troubleshooting.md`).
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! What a failed psql means: a statement error (exit 7, with its line), a refused login
//! (exit 8, permanent), a connection that may still heal (exit 8, retried), a missing pod — sorted
//! from psql's and kubectl's stderr.

use crate::process::ProcessError;

/// A failure reported by psql itself.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// psql could not connect or log in.
    #[error("database connection failed: {message}")]
    Connect {
        /// psql's message.
        message: String,
    },
    /// The server refused the login (wrong password, unknown role or database): permanent, so
    /// never retried.
    #[error("database login failed: {message}")]
    Authentication {
        /// psql's message.
        message: String,
    },
    /// The pod psql was to run in does not exist.
    #[error("database connection failed: pod {pod} does not exist")]
    NoPod {
        /// The pod name.
        pod: String,
        /// The failed exec.
        source: ProcessError,
    },
    /// The pod exists but its PostgreSQL container does not run (restarting, not started).
    #[error("database connection failed: the PostgreSQL container is not running")]
    ContainerNotRunning {
        /// The failed exec.
        source: ProcessError,
    },
    /// A statement failed; psql stopped.
    #[error("{message}")]
    Statement {
        /// Line of the session's input where psql stopped, when it said.
        line: Option<usize>,
        /// The PostgreSQL error, e.g. `ERROR:  relation "x" does not exist`.
        message: String,
        /// The lines psql printed after the error (statement context).
        context: Vec<String>,
    },
}

/// Turns a failed psql (or kubectl exec) into the right error.
pub fn explain_exit(error: ProcessError) -> anyhow::Error {
    let tail = error.stderr_tail().to_vec();
    if let Some(index) = tail
        .iter()
        .position(|line| line.contains("ERROR:") || line.contains("FATAL:  "))
    {
        let line_text = &tail[index];
        if line_text.starts_with("psql: error:") || line_text.contains("connection to server") {
            return connect_error(line_text).into();
        }
        return SqlError::Statement {
            line: error_line_number(line_text),
            message: clean_psql_message(line_text),
            context: tail[index + 1..].to_vec(),
        }
        .into();
    }
    if let Some(line) = tail
        .iter()
        .find(|line| line.starts_with("psql: error:") || line.contains("could not connect"))
    {
        return connect_error(line).into();
    }
    let error = match crate::kube::cluster_error(error) {
        Ok(kube_error) => return kube_error.into(),
        Err(error) => error,
    };
    let stderr = error.stderr_text();
    if let Some(pod) = stderr
        .lines()
        .find(|line| line.contains("NotFound") && line.contains("pods \""))
        .and_then(|line| line.split('"').nth(1))
    {
        return SqlError::NoPod {
            pod: pod.to_string(),
            source: error,
        }
        .into();
    }
    const NOT_RUNNING: [&str; 4] = [
        "container not found",
        "is not running",
        "cannot exec into a container",
        "unable to upgrade connection",
    ];
    if NOT_RUNNING.iter().any(|needle| stderr.contains(needle)) {
        return SqlError::ContainerNotRunning { source: error }.into();
    }
    error.into()
}

/// Messages of login failures that no amount of waiting heals.
const PERMANENT_LOGIN_FAILURES: [&str; 4] = [
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "authentication failed",
];

/// A connection failure: permanent when the server refused the login itself.
fn connect_error(line: &str) -> SqlError {
    let message = clean_psql_message(line);
    if PERMANENT_LOGIN_FAILURES
        .iter()
        .any(|needle| message.contains(needle))
    {
        SqlError::Authentication { message }
    } else {
        SqlError::Connect { message }
    }
}

fn error_line_number(line: &str) -> Option<usize> {
    // psql:<stdin>:42: ERROR:  ...
    let rest = line.strip_prefix("psql:")?;
    let mut parts = rest.splitn(3, ':');
    parts.next()?;
    parts.next()?.trim().parse().ok()
}

fn clean_psql_message(line: &str) -> String {
    let message = match line.find("ERROR:").or_else(|| line.find("FATAL:")) {
        Some(start) => &line[start..],
        None => line.trim_start_matches("psql: error: "),
    };
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn failed(stderr: &[&str]) -> ProcessError {
        ProcessError::Failed {
            command: "kubectl exec".to_string(),
            status: std::process::ExitStatus::from_raw(3 << 8),
            stderr_tail: stderr.iter().map(|line| line.to_string()).collect(),
            stdout: Vec::new(),
        }
    }

    #[test]
    fn statement_errors_keep_line_and_message() {
        let error = explain_exit(failed(&[
            "psql:<stdin>:42: ERROR:  syntax error at or near \"CRATE\"",
            "LINE 1: CRATE TABLE x();",
        ]));
        let Some(SqlError::Statement {
            line,
            message,
            context,
        }) = error.downcast_ref::<SqlError>()
        else {
            panic!("{error:#}")
        };
        assert_eq!(*line, Some(42));
        assert_eq!(message, "ERROR: syntax error at or near \"CRATE\"");
        assert_eq!(context, &["LINE 1: CRATE TABLE x();"]);
    }

    #[test]
    fn refused_logins_missing_pods_and_stopped_containers_are_told_apart() {
        let refused = explain_exit(failed(&[
            "psql: error: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"postgres\"",
        ]));
        assert!(matches!(
            refused.downcast_ref::<SqlError>(),
            Some(SqlError::Authentication { .. })
        ));
        let starting = explain_exit(failed(&[
            "psql: error: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the database system is starting up",
        ]));
        assert!(matches!(
            starting.downcast_ref::<SqlError>(),
            Some(SqlError::Connect { .. })
        ));
        let missing_pod = explain_exit(failed(&[
            "Error from server (NotFound): pods \"postgresql-0\" not found",
        ]));
        assert!(matches!(
            missing_pod.downcast_ref::<SqlError>(),
            Some(SqlError::NoPod { pod, .. }) if pod == "postgresql-0"
        ));
        let stopped = explain_exit(failed(&[
            "error: unable to upgrade connection: container not found (\"postgresql\")",
        ]));
        assert!(matches!(
            stopped.downcast_ref::<SqlError>(),
            Some(SqlError::ContainerNotRunning { .. })
        ));
    }
}

//! `--timeout`: one deadline for the whole command, and the step it was spent on.
//!
//! The deadline starts when the command is dispatched. Everything below asks this module what
//! remains: the process runner caps every child it waits for, helm gets it as its own `--timeout`, psql
//! sessions get it as the server's `statement_timeout` (so a statement stops on time even if
//! pgk8s itself is killed), and `run.rs` stops the command when it passes. Commands name the
//! step under way with [`step`], so a timeout says what it interrupted.
//!
//! Foreground commands that run until the user stops them (`psql`, `logs -f`, `port-forward`)
//! have no deadline.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{ExitCode, Failure};

/// How long a child may take to report a failure after the server cancelled its statement at
/// the deadline, before pgk8s stops it itself.
pub const REPORT_GRACE: Duration = Duration::from_secs(3);

struct Deadline {
    at: Instant,
    total: Duration,
}

static DEADLINE: OnceLock<Deadline> = OnceLock::new();
static STEP: Mutex<&'static str> = Mutex::new("starting");

/// Starts the command's deadline: `total` from now. Later calls change nothing.
pub fn start(total: Duration) {
    let _ = DEADLINE.set(Deadline {
        at: Instant::now() + total,
        total,
    });
}

/// When the command must be done, if it has a deadline.
pub fn at() -> Option<Instant> {
    DEADLINE.get().map(|deadline| deadline.at)
}

/// The time left, if the command has a deadline (zero once it has passed).
pub fn remaining() -> Option<Duration> {
    at().map(|at| at.saturating_duration_since(Instant::now()))
}

/// `limit`, shortened to what the deadline leaves.
pub fn cap(limit: Duration) -> Duration {
    remaining().map_or(limit, |remaining| limit.min(remaining))
}

/// Names the step under way, for the message if the deadline passes during it.
pub fn step(what: &'static str) {
    *STEP.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = what;
}

/// The step under way.
pub fn current_step() -> &'static str {
    *STEP.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The failure when the deadline passed (exit 4), naming `during` (or the current step).
pub fn expired(during: Option<&str>) -> Failure {
    let total = DEADLINE
        .get()
        .map_or(Duration::ZERO, |deadline| deadline.total);
    let during = during.map_or_else(|| current_step().to_string(), str::to_string);
    Failure::new(
        ExitCode::Timeout,
        format!(
            "timed out after {} while {during}",
            humantime::format_duration(total)
        ),
    )
    .hint("--timeout is the deadline for the whole command: raise it (e.g. --timeout 10m), or find what is slow with -v")
}

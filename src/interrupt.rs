//! Ctrl-C, SIGTERM and the deadline: when pgk8s stops, and what it finishes first.
//!
//! By default a stop is immediate: `run.rs` drops the running future, which kills its children,
//! and the process exits 130 (SIGINT), 143 (SIGTERM) or 4 (the `--timeout` deadline passed, see
//! [`crate::deadline`]). Two things must not be cut short, and register here:
//! - a [`Shield`] marks a critical section (the password changed in the database but not yet in
//!   the Secret): the signal is held until the section ends, then the command stops;
//! - a child that can clean up after itself (helm rolling back an interrupted upgrade) gets the
//!   signal forwarded and up to [`FORWARD_GRACE`] to exit before pgk8s gives up on it.
//!
//! `kill -9` cannot be shielded; the multi-step commands record their intent first so that the
//! next run can finish or undo what was cut short.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::ExitCode;

/// How long a child that received a forwarded signal may take to exit.
pub const FORWARD_GRACE: Duration = Duration::from_secs(60);

static SHIELDS: AtomicUsize = AtomicUsize::new(0);
/// The signal received (2 or 15), 0 while none has arrived.
static RECEIVED: AtomicU8 = AtomicU8::new(0);
static FORWARDED: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static RELEASED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Holds a received signal back while alive. Take one around steps that must complete together.
#[must_use = "the section is shielded only while the guard lives"]
pub struct Shield {
    what: &'static str,
}

/// Shields `what` from Ctrl-C and SIGTERM until the guard is dropped.
pub fn shield(what: &'static str) -> Shield {
    SHIELDS.fetch_add(1, Ordering::SeqCst);
    Shield { what }
}

impl Drop for Shield {
    fn drop(&mut self) {
        if SHIELDS.fetch_sub(1, Ordering::SeqCst) == 1 && received().is_some() {
            tracing::warn!("{} finished; stopping now", self.what);
        }
        RELEASED.notify_waiters();
    }
}

/// A child process that receives the signals pgk8s gets, instead of being killed by them.
pub struct Forwarded {
    pid: u32,
}

/// Forwards signals to `pid` until the returned guard is dropped (when the child has exited).
pub fn forward_to(pid: u32) -> Forwarded {
    lock_forwarded().push(pid);
    Forwarded { pid }
}

impl Drop for Forwarded {
    fn drop(&mut self) {
        lock_forwarded().retain(|pid| *pid != self.pid);
        RELEASED.notify_waiters();
    }
}

/// The exit code of the signal received so far, if any.
pub fn received() -> Option<ExitCode> {
    match RECEIVED.load(Ordering::SeqCst) {
        2 => Some(ExitCode::Interrupted),
        15 => Some(ExitCode::Terminated),
        _ => None,
    }
}

/// Why a command was stopped before it finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C (exit 130) or SIGTERM (exit 143).
    Signal(ExitCode),
    /// The `--timeout` deadline passed (exit 4).
    Deadline,
}

/// Resolves when the command should stop: after Ctrl-C or SIGTERM, or once the deadline (plus
/// the grace a child needs to report the server's cancellation) has passed — and then only once
/// no shield is held and every forwarded child has exited (or had [`FORWARD_GRACE`] to).
pub async fn stop_requested() -> Stop {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    let deadline = async {
        match crate::deadline::at() {
            Some(at) => {
                tokio::time::sleep_until((at + crate::deadline::REPORT_GRACE).into()).await;
            }
            None => std::future::pending().await,
        }
    };
    let (stop, number) = tokio::select! {
        _ = interrupt.recv() => (Stop::Signal(ExitCode::Interrupted), 2),
        _ = terminate.recv() => (Stop::Signal(ExitCode::Terminated), 15),
        () = deadline => (Stop::Deadline, 15),
    };
    if let Stop::Signal(_) = stop {
        RECEIVED.store(number, Ordering::SeqCst);
    }
    let children = lock_forwarded().clone();
    for pid in &children {
        send(*pid, number);
    }
    if !children.is_empty() {
        tracing::warn!(
            "stopping: letting helm finish or roll back (up to {}s)",
            FORWARD_GRACE.as_secs()
        );
        let _ =
            tokio::time::timeout(FORWARD_GRACE, wait_until(|| lock_forwarded().is_empty())).await;
    }
    if SHIELDS.load(Ordering::SeqCst) > 0 {
        tracing::warn!("stopping once the step under way is complete (it must not be cut in half)");
        wait_until(|| SHIELDS.load(Ordering::SeqCst) == 0).await;
    }
    stop
}

async fn wait_until(done: impl Fn() -> bool) {
    loop {
        let released = RELEASED.notified();
        if done() {
            return;
        }
        released.await;
    }
}

fn send(pid: u32, number: u8) {
    let signal = if number == 2 {
        rustix::process::Signal::INT
    } else {
        rustix::process::Signal::TERM
    };
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

fn lock_forwarded() -> std::sync::MutexGuard<'static, Vec<u32>> {
    FORWARDED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

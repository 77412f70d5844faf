//! Waiting for something to become true — the one shape of every retry loop (a database that is
//! still starting, the migration lock another run holds, `verify --wait`): an interval, a limit
//! that never reaches past the command's deadline, and one note on stderr when waiting begins.
//!
//! ```text
//! let mut poll = Poll::new(limit, every, "the database is not ready yet");
//! loop {
//!     if try_once().await? { break; }
//!     if !poll.again().await { return Err(gave_up()); }
//! }
//! ```

use std::time::{Duration, Instant};

/// A retry schedule in progress.
pub struct Poll {
    until: Instant,
    every: Duration,
    waiting_for: &'static str,
    announced: bool,
}

impl Poll {
    /// Tries for up to `limit` (cut to what the command's deadline leaves), every `every`;
    /// `waiting_for` says what, once, when the first retry begins.
    pub fn new(limit: Duration, every: Duration, waiting_for: &'static str) -> Poll {
        Poll {
            until: Instant::now() + crate::deadline::cap(limit),
            every,
            waiting_for,
            announced: false,
        }
    }

    /// Sleeps until the next attempt and returns true; false (at once) when that attempt would
    /// start past the limit.
    pub async fn again(&mut self) -> bool {
        if Instant::now() + self.every >= self.until {
            return false;
        }
        if !self.announced {
            let left = self.until.saturating_duration_since(Instant::now());
            tracing::info!(
                "{}; trying again for up to {}",
                self.waiting_for,
                humantime::format_duration(Duration::from_secs(left.as_secs().max(1)))
            );
            self.announced = true;
        }
        tokio::time::sleep(self.every).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn it_retries_within_the_limit_then_gives_up() {
        let mut poll = Poll::new(Duration::from_millis(50), Duration::from_millis(20), "test");
        let mut attempts = 1;
        while poll.again().await {
            attempts += 1;
        }
        assert!((2..=3).contains(&attempts), "{attempts}");
        let mut none = Poll::new(Duration::ZERO, Duration::from_millis(20), "test");
        assert!(!none.again().await);
    }
}

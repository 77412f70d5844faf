//! `pgk8s verify`: is the release healthy? One `helm status`, one `kubectl get` of every kind
//! that matters, the credentials Secret and one read-only psql session — then a checklist, issues
//! with hints, an exit code. With `--wait`, again until healthy.

use std::time::{Duration, Instant};

use crate::cli::VerifyArgs;
use crate::config::Config;
use crate::error::ExitCode;
use crate::health::verify;
use crate::migration_files::MigrationSet;
use crate::output::Outcome;
use crate::poll::Poll;

/// How often `--wait` looks again.
const WAIT_POLL: Duration = Duration::from_secs(2);

/// Runs `pgk8s verify`.
pub async fn run(args: &VerifyArgs, config: &Config) -> anyhow::Result<Outcome> {
    let set = match args.check_schema {
        true => Some(MigrationSet::load(args.migrations_dir.as_deref())?),
        false => None,
    };
    let started = Instant::now();
    let mut poll = Poll::new(
        args.wait.unwrap_or_default(),
        WAIT_POLL,
        "the release is not healthy yet",
    );
    loop {
        let report = verify(config, set.as_ref(), started).await?;
        let code = report.exit_code();
        if code == ExitCode::Success || !poll.again().await {
            return Ok(Outcome::with_code(&report, code));
        }
        tracing::debug!("not healthy yet: {}", report.summary());
    }
}

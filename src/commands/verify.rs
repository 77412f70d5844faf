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

/// How often `--wait` looks again.
const WAIT_POLL: Duration = Duration::from_secs(2);

/// Runs `pgk8s verify`.
pub async fn run(args: &VerifyArgs, config: &Config) -> anyhow::Result<Outcome> {
    let set = match args.check_schema {
        true => Some(MigrationSet::load(args.migrations_dir.as_deref())?),
        false => None,
    };
    let started = Instant::now();
    let deadline = args.wait.map(|wait| started + wait);
    loop {
        let report = verify(config, set.as_ref(), started).await?;
        let code = report.exit_code();
        match deadline {
            Some(deadline)
                if code != ExitCode::Success && Instant::now() + WAIT_POLL < deadline =>
            {
                tracing::info!("not healthy yet ({}); checking again", report.summary());
                tokio::time::sleep(WAIT_POLL).await;
            }
            _ => return Ok(Outcome::with_code(&report, code)),
        }
    }
}

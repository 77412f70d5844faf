//! `pgk8s logs`: the PostgreSQL container's logs, streamed line by line with every password of
//! the release redacted.

use tokio::io::AsyncBufReadExt;

use crate::chart;
use crate::cli::LogsArgs;
use crate::config::Config;
use crate::error::ExitCode;
use crate::kube::LogRequest;
use crate::output::{Outcome, print_raw};
use crate::release::find_primary;

/// Runs `pgk8s logs`.
pub async fn run(args: &LogsArgs, config: &Config) -> anyhow::Result<Outcome> {
    let kube = config.kube();
    let primary = find_primary(&kube, &config.release).await?;
    // Know the passwords before reading a line, so none can be printed: read the Secret the pod
    // actually mounts (reading it registers every value with the redactor).
    let secret = primary
        .secret
        .unwrap_or_else(|| chart::credentials_secret(&config.release));
    kube.get(&[&format!("secret/{secret}")]).await?;
    let mut running = kube
        .logs(
            &primary.pod,
            primary.engine.container(),
            LogRequest {
                follow: args.follow,
                tail: args.tail,
                previous: args.previous,
            },
        )
        .spawn()?;
    let stdout = running
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("kubectl logs has no stdout"))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        print_raw(&format!("{line}\n"))?;
    }
    running.wait().await.map_err(crate::kube::classify)?;
    Ok(Outcome::streamed(ExitCode::Success))
}

//! `pgk8s logs`: the PostgreSQL container's logs, streamed line by line with every password of
//! the release redacted.

use tokio::io::AsyncBufReadExt;

use crate::chart::{self, Names};
use crate::cli::LogsArgs;
use crate::context::Context;
use crate::error::ExitCode;
use crate::kube::LogRequest;
use crate::output::{Outcome, print_raw};

/// Runs `pgk8s logs`.
pub async fn run(args: &LogsArgs, context: &Context) -> anyhow::Result<Outcome> {
    let kube = context.kube();
    let secret = format!("secret/{}", Names::new(&context.release, false).secret);
    let secret_refs = [secret.as_str()];
    let (pod, secrets) = tokio::join!(super::primary_pod(context), kube.get(&secret_refs));
    let pod = pod?;
    // Know the passwords before reading a line, so none can be printed.
    for object in secrets? {
        for key in [
            chart::SUPERUSER_PASSWORD_KEY,
            chart::APP_PASSWORD_KEY,
            chart::REPLICATION_PASSWORD_KEY,
        ] {
            if let Some(value) = object.secret_value(key) {
                crate::redact::register(&value);
            }
        }
    }
    let mut running = kube
        .logs(
            &pod,
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

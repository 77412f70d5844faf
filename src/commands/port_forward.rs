//! `pgk8s port-forward`: `kubectl port-forward` to the primary service, restarted when it drops,
//! in the foreground until Ctrl-C. Prints the connection settings once the forward is up.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::io::AsyncBufReadExt;

use crate::chart;
use crate::cli::PortForwardArgs;
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::output::{Outcome, Report, Text};
use crate::redact::REDACTED;
use crate::release::{find_endpoints, read_secret};

/// Local port tried first.
const PREFERRED_PORT: u16 = 5432;
/// Consecutive failed starts after which pgk8s gives up.
const MAX_FAILED_STARTS: u32 = 3;
/// Pause before reconnecting.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

#[derive(Serialize)]
struct ForwardReport {
    service: String,
    namespace: String,
    host: String,
    port: u16,
    database: String,
    username: String,
    url: String,
    env: Vec<String>,
}

impl Report for ForwardReport {
    fn render(&self, text: &mut Text) {
        text.line(format!(
            "Forwarding {}:{} to service {} in {} (Ctrl-C stops; drops reconnect).",
            self.host, self.port, self.service, self.namespace
        ));
        text.field("url", &self.url);
        text.line(format!("export {}", self.env.join(" ")));
    }
}

/// Runs `pgk8s port-forward`.
pub async fn run(args: &PortForwardArgs, config: &Config) -> anyhow::Result<Outcome> {
    let kube = config.kube();
    let endpoints = find_endpoints(&kube, &config.release).await?;
    let service = endpoints.service.clone();
    let password = if args.show_password {
        read_secret(&kube, &endpoints.secret(&config.release))
            .await?
            .secret_value(chart::password_key(config.username.as_str()))
    } else {
        None
    };
    let port = args.port.unwrap_or_else(free_local_port);
    let report = report(
        config,
        &service,
        port,
        password.as_ref().map(|password| password.expose_secret()),
    );
    let mut announced = false;
    let mut failed_starts = 0;
    loop {
        let started = forward_once(config, &service, port, || {
            if !announced {
                announced = true;
                let outcome = Outcome::success(&report);
                let outcome = if password.is_some() {
                    outcome.revealing_secrets()
                } else {
                    outcome
                };
                outcome.print(config.format, config.style)?;
            }
            Ok(())
        })
        .await?;
        failed_starts = if started { 0 } else { failed_starts + 1 };
        if failed_starts >= MAX_FAILED_STARTS {
            return Err(Failure::new(
                ExitCode::DatabaseUnreachable,
                format!("kubectl port-forward to {service} keeps failing"),
            )
            .hint("check the pod with `pgk8s verify`; run with -v to see kubectl's errors")
            .into());
        }
        tracing::warn!("the port-forward to {service} ended; reconnecting");
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// Runs one `kubectl port-forward` until it exits. Calls `on_ready` once it forwards; returns
/// whether it ever did.
async fn forward_once(
    config: &Config,
    service: &str,
    port: u16,
    mut on_ready: impl FnMut() -> std::io::Result<()>,
) -> anyhow::Result<bool> {
    let mut running = config.kube().port_forward(service, port).spawn()?;
    let stdout = running
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("kubectl port-forward has no stdout"))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut ready = false;
    while let Some(line) = lines.next_line().await? {
        tracing::debug!("kubectl: {line}");
        if !ready && line.starts_with("Forwarding from") {
            ready = true;
            on_ready()?;
        }
    }
    if let Err(error) = running.wait().await {
        tracing::warn!("{error}");
    }
    Ok(ready)
}

fn report(config: &Config, service: &str, port: u16, password: Option<&str>) -> ForwardReport {
    let host = "127.0.0.1".to_string();
    let mut env = vec![
        format!("PGHOST={host}"),
        format!("PGPORT={port}"),
        format!("PGDATABASE={}", config.database),
        format!("PGUSER={}", config.username),
    ];
    if let Some(password) = password {
        env.push(format!(
            "PGPASSWORD={}",
            shlex::try_quote(password)
                .map(|quoted| quoted.into_owned())
                .unwrap_or_default()
        ));
    }
    ForwardReport {
        service: service.to_string(),
        namespace: config.namespace.to_string(),
        url: format!(
            "postgresql://{}:{}@{host}:{port}/{}",
            config.username,
            password.map_or(REDACTED.to_string(), crate::redact::percent_encode),
            config.database
        ),
        host,
        port,
        database: config.database.to_string(),
        username: config.username.to_string(),
        env,
    }
}

/// 5432 when it is free here, else any free port.
fn free_local_port() -> u16 {
    let bind = |port| {
        std::net::TcpListener::bind(("127.0.0.1", port))
            .ok()
            .and_then(|listener| listener.local_addr().ok())
    };
    bind(PREFERRED_PORT)
        .or_else(|| bind(0))
        .map_or(PREFERRED_PORT, |address| address.port())
}

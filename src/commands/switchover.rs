//! `pgk8s switchover --to INSTANCE`: a planned primary change of a CloudNativePG cluster. The
//! operator promotes the instance (as `kubectl cnpg promote` asks it to); pgk8s waits until the
//! new primary serves and reads the migration history there, so the caller knows the schema is
//! still current.

use std::time::Instant;

use serde::Serialize;

use crate::cli::SwitchoverArgs;
use crate::cnpg::ClusterState;
use crate::cnpg_cluster;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{ExitCode, Failure};
use crate::output::{Outcome, Report, Text};
use crate::release::{Connect, history_read_only};
use crate::transport::Login;

#[derive(Serialize)]
struct SwitchoverReport {
    cluster: String,
    namespace: String,
    from: String,
    to: String,
    switched: bool,
    current_version: Option<u64>,
    migrations_applied: usize,
    duration_ms: u128,
}

impl Report for SwitchoverReport {
    fn render(&self, text: &mut Text) {
        if !self.switched {
            text.line(format!(
                "{} is the primary of cluster {} already: nothing to do.",
                self.to, self.cluster
            ));
            return;
        }
        text.line(format!(
            "Cluster {}: primary is now {} (was {}), after {:.1} s; migrations at version {}.",
            self.cluster,
            self.to,
            self.from,
            self.duration_ms as f64 / 1000.0,
            self.current_version
                .map_or("(none)".to_string(), |version| version.to_string())
        ));
    }
}

/// Runs `pgk8s switchover`.
pub async fn run(args: &SwitchoverArgs, config: &Config) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let kube = config.kube();
    let cluster = cnpg_cluster::find_cluster(&kube, &config.release)
        .await?
        .ok_or_else(|| {
            Failure::new(
                ExitCode::General,
                format!(
                    "no CloudNativePG cluster {} in namespace {}",
                    config.release, config.namespace
                ),
            )
            .hint("switchover changes the primary of a CloudNativePG cluster; a release of the Bitnami chart has one primary only")
        })?;
    let state = ClusterState::of(&cluster);
    if state.hibernating {
        return Err(Failure::new(
            ExitCode::Refused,
            format!(
                "cluster {} is hibernated: its instances are stopped",
                config.release
            ),
        )
        .hint("resume it with `pgk8s deploy --engine cnpg` (its volumes kept the data), then switch over")
        .into());
    }
    let from = state.current_primary.clone().unwrap_or_default();
    let to = cnpg_cluster::instance_name(&config.release, &args.to);
    let mut report = SwitchoverReport {
        cluster: config.release.to_string(),
        namespace: config.namespace.to_string(),
        from: from.clone(),
        to: to.clone(),
        switched: false,
        current_version: None,
        migrations_applied: 0,
        duration_ms: 0,
    };
    if from == to {
        return Ok(Outcome::success(&report));
    }
    let instances = kube
        .get_labelled("pods", &crate::cnpg::instance_selector(&config.release))
        .await?;
    if !instances.iter().any(|pod| pod.metadata.name == to) {
        let names: Vec<&str> = instances
            .iter()
            .map(|pod| pod.metadata.name.as_str())
            .collect();
        return Err(Failure::usage(format!(
            "cluster {} has no instance {to} (its instances: {})",
            config.release,
            names.join(", ")
        ))
        .hint("pass --to with one of them, e.g. --to 2")
        .into());
    }
    if !state.healthy() {
        return Err(Failure::new(
            ExitCode::Refused,
            format!(
                "cluster {} is not healthy ({}): a switchover now could leave it without a primary",
                config.release,
                state.summary()
            ),
        )
        .hint("wait until `pgk8s verify` is healthy, then switch over")
        .into());
    }
    cnpg_cluster::switch_over(config, &kube, &to).await?;
    report.switched = true;
    report.duration_ms = started.elapsed().as_millis();
    let connect = Connect {
        login: Login::Superuser,
        wait: crate::deadline::cap(std::time::Duration::from_secs(60)),
    };
    let pinned = config.for_release(config.release.clone(), Engine::Cnpg);
    let (_, history) = history_read_only(&pinned, connect).await?;
    report.current_version = history.last().map(|row| row.version);
    report.migrations_applied = history.len();
    Ok(Outcome::success(&report))
}

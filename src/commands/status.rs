//! `pgk8s status`: one screen about the release — chart, revision, pods, volumes, server,
//! database size, connections, migration version. One `helm status`, one `kubectl get`, one
//! read-only psql session.

use serde::Serialize;

use crate::cnpg::ClusterState;
use crate::cnpg_cluster;
use crate::config::Config;
use crate::diagnose::{ClaimState, PodState};
use crate::engine::Engine;
use crate::error::{ExitCode, Failure};
use crate::helm::ReleaseStatus;
use crate::migration_engine;
use crate::output::{Outcome, Report, Text};
use crate::release::observe;
use crate::session::Session;
use crate::transport::{Login, Mode};
use crate::views;

#[derive(Serialize)]
struct StatusReport {
    #[serde(serialize_with = "views::through::release")]
    release: ReleaseStatus,
    namespace: String,
    #[serde(serialize_with = "views::through::pods")]
    pods: Vec<PodState>,
    #[serde(serialize_with = "views::through::volumes")]
    volumes: Vec<ClaimState>,
    database: String,
    database_reachable: bool,
    server_version: Option<String>,
    started_at: Option<String>,
    database_size_bytes: Option<u64>,
    connections: Option<u64>,
    max_connections: Option<u64>,
    migration_version: Option<u64>,
    /// A CloudNativePG cluster's instances and primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    instances: Option<String>,
}

impl Report for StatusReport {
    fn render(&self, text: &mut Text) {
        let release = &self.release;
        text.line(format!(
            "Release {} in {}: {} (revision {}, chart {})",
            release.name,
            self.namespace,
            release.status,
            release.revision,
            release.chart.as_deref().unwrap_or("?")
        ));
        if let Some(instances) = &self.instances {
            text.field("instances", instances);
        }
        for pod in &self.pods {
            let ready = if pod.ready { "ready" } else { "NOT READY" };
            let why = pod
                .waiting_reason
                .as_deref()
                .map(|reason| format!(", {reason}"))
                .unwrap_or_default();
            text.field(
                "pod",
                format!(
                    "{} {} {ready}, {} restarts{why}",
                    pod.name, pod.phase, pod.restarts
                ),
            );
        }
        for volume in &self.volumes {
            text.field(
                "volume",
                format!(
                    "{} {} {} ({})",
                    volume.name,
                    volume.phase,
                    volume.size.as_deref().unwrap_or("?"),
                    volume.storage_class.as_deref().unwrap_or("default class")
                ),
            );
        }
        if !self.database_reachable {
            text.field("database", format!("{} not reachable", self.database));
            return;
        }
        text.field(
            "server",
            format!(
                "PostgreSQL {}",
                self.server_version.as_deref().unwrap_or("?")
            ),
        );
        if let Some(started) = &self.started_at {
            text.field("started", started);
        }
        text.field(
            "database",
            format!(
                "{} ({} bytes)",
                self.database,
                self.database_size_bytes.unwrap_or(0)
            ),
        );
        text.field(
            "connections",
            format!(
                "{} of {}",
                self.connections.unwrap_or(0),
                self.max_connections.unwrap_or(0)
            ),
        );
        text.field(
            "migrations",
            self.migration_version
                .map_or("none applied".to_string(), |version| {
                    format!("version {version}")
                }),
        );
    }
}

/// Runs `pgk8s status`.
pub async fn run(config: &Config) -> anyhow::Result<Outcome> {
    let observed = observe(&config.kube(), &config.helm(), &config.release).await?;
    // No chart release: perhaps a CloudNativePG cluster (one more call, only then).
    let cluster = match &observed.release {
        Some(_) => None,
        None => cnpg_cluster::find_cluster(&config.kube(), &config.release)
            .await?
            .map(|cluster| ClusterState::of(&cluster)),
    };
    let release = observed.release.or_else(|| {
        cluster.as_ref().map(|cluster| ReleaseStatus {
            name: config.release.to_string(),
            revision: 0,
            status: cluster.shown_phase(),
            chart: Some(format!("CloudNativePG, {}", cluster.image)),
            updated: None,
            values: serde_json::Value::Null,
        })
    });
    let Some(release) = release else {
        return Err(Failure::new(
            ExitCode::General,
            format!(
                "release {} is not installed in namespace {}",
                config.release, config.namespace
            ),
        )
        .hint(format!(
            "deploy it with `pgk8s deploy -n {}`",
            config.namespace
        ))
        .into());
    };
    let mut report = StatusReport {
        release,
        namespace: config.namespace.to_string(),
        pods: observed.state.pods,
        volumes: observed.state.claims,
        database: config.database.to_string(),
        database_reachable: false,
        server_version: None,
        started_at: None,
        database_size_bytes: None,
        connections: None,
        max_connections: None,
        migration_version: None,
        instances: cluster.as_ref().map(|cluster| {
            format!(
                "{}, primary {}",
                cluster.summary(),
                cluster.current_primary.as_deref().unwrap_or("?")
            )
        }),
    };
    let transport = match &observed.primary {
        Some(primary) => primary.transport(config),
        None => config.transport_for("", Engine::Bitnami),
    };
    let command = || {
        transport.psql(
            Login::Superuser,
            Mode::ReadOnly,
            &config.database,
            &config.username,
        )
    };
    if (observed.primary.is_some() || config.database_url.is_some())
        && let Ok(mut session) = Session::open_when_ready(command, std::time::Duration::ZERO).await
    {
        let rows = session
            .query(
                "SELECT current_setting('server_version'), \
                 to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                 pg_database_size(current_database()), \
                 (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()), \
                 current_setting('max_connections');",
            )
            .await?;
        if let Some(row) = rows.first().filter(|row| row.len() == 5) {
            report.database_reachable = true;
            report.server_version = Some(row[0].clone());
            report.started_at = Some(row[1].clone());
            report.database_size_bytes = row[2].parse().ok();
            report.connections = row[3].parse().ok();
            report.max_connections = row[4].parse().ok();
        }
        let history = migration_engine::read_history(&mut session)
            .await?
            .unwrap_or_default();
        report.migration_version = history.iter().map(|row| row.version).max();
        session.close().await?;
    }
    Ok(Outcome::success(&report))
}

//! What healthy means for a release, checked once: the release deployed, its pods running and
//! ready, volumes bound, a service, the database accepting the application user, and (with a
//! migration set) the schema and migrations current — as a checklist and issues with hints.
//! `verify` repeats it until healthy; `restore` runs it after restoring.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::cnpg::ClusterState;
use crate::config::Config;
use crate::diagnose::Issue;
use crate::error::ExitCode;
use crate::migration_engine::{self, VersionState};
use crate::migration_files::{LEARNFLOW_TABLES, MigrationSet};
use crate::output::{CheckState, Report, Text};
use crate::release::{Observation, crash_log, observe};
use crate::seed;
use crate::session::Session;
use crate::sql_error::SqlError;
use crate::transport::{Login, Mode, Transport};
use crate::views;

/// How long the database check waits for psql to connect.
const CONNECT_WAIT: Duration = Duration::from_secs(0);

/// The result of one verification.
#[derive(Clone, Serialize)]
pub struct VerifyReport {
    /// True when every check passed.
    pub healthy: bool,
    release: String,
    namespace: String,
    release_status: Option<String>,
    pods_running: u32,
    expected_pods: u32,
    pvc_bound: bool,
    service_present: bool,
    /// Whether psql could connect and run `SELECT 1`.
    pub database_connected: bool,
    server_version: Option<String>,
    tables_count: Option<usize>,
    expected_tables: Vec<String>,
    missing_tables: Vec<String>,
    migrations_pending: Option<usize>,
    migrations_drifted: Option<usize>,
    current_version: Option<u64>,
    /// A CloudNativePG cluster's instances, primary and replication.
    #[serde(skip_serializing_if = "Option::is_none")]
    high_availability: Option<HighAvailability>,
    checks: Vec<Check>,
    /// The problems found, each with its code and fix.
    #[serde(serialize_with = "views::through::issues")]
    pub issues: Vec<Issue>,
    elapsed_ms: u128,
}

/// What a CloudNativePG cluster adds to a verification: the instances, which one is primary,
/// how each replica streams, and whether a failover could happen now.
#[derive(Clone, Serialize)]
pub struct HighAvailability {
    instances: u32,
    ready_instances: u32,
    phase: String,
    current_primary: Option<String>,
    replicas: Vec<Replica>,
    /// A ready replica that streams exists, so the operator could promote one now.
    failover_ready: bool,
}

/// One replica as the primary sees it (`pg_stat_replication`).
#[derive(Clone, Serialize)]
struct Replica {
    name: String,
    state: String,
    replay_lag_bytes: Option<i64>,
}

/// How one check came out (`ok`, `fail`, `skip` in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum CheckStatus {
    Ok,
    Fail,
    Skip,
}

/// One line of the checklist.
#[derive(Clone, Serialize)]
struct Check {
    name: &'static str,
    status: CheckStatus,
    detail: String,
}

impl Report for VerifyReport {
    fn render(&self, text: &mut Text) {
        let verdict = if self.healthy { "healthy" } else { "UNHEALTHY" };
        text.line(format!(
            "Release {} in namespace {}: {verdict}",
            self.release, self.namespace
        ));
        for check in &self.checks {
            let state = match check.status {
                CheckStatus::Ok => CheckState::Ok,
                CheckStatus::Fail => CheckState::Fail,
                CheckStatus::Skip => CheckState::Skipped,
            };
            text.check(state, format!("{}: {}", check.name, check.detail));
        }
        if let Some(ha) = &self.high_availability {
            let replicas: Vec<String> = ha
                .replicas
                .iter()
                .map(|replica| {
                    format!(
                        "{} {} (replay lag {} B)",
                        replica.name,
                        replica.state,
                        replica
                            .replay_lag_bytes
                            .map_or("?".to_string(), |lag| lag.to_string())
                    )
                })
                .collect();
            text.field(
                "instances",
                format!(
                    "{}/{} ready, primary {}; failover possible now: {}",
                    ha.ready_instances,
                    ha.instances,
                    ha.current_primary.as_deref().unwrap_or("?"),
                    if ha.failover_ready { "yes" } else { "no" }
                ),
            );
            if !replicas.is_empty() {
                text.field("replicas", replicas.join(", "));
            }
        }
        for issue in &self.issues {
            text.line(format!("  {}: {}", issue.code, issue.message));
            text.line(format!("    hint: {}", issue.hint));
        }
    }
}

/// Verifies once. `set` enables the schema and migration checks.
pub async fn verify(
    config: &Config,
    set: Option<&MigrationSet>,
    started: Instant,
) -> anyhow::Result<VerifyReport> {
    let Observation {
        release,
        state,
        primary,
    } = observe(&config.kube(), &config.helm(), &config.release).await?;
    let mut report = VerifyReport {
        healthy: false,
        release: config.release.to_string(),
        namespace: config.namespace.to_string(),
        release_status: release.as_ref().map(|release| release.status.clone()),
        pods_running: state.ready_pods(),
        expected_pods: state.expected_pods.max(state.pods.len() as u32),
        pvc_bound: state.claims_bound(),
        service_present: state
            .services
            .iter()
            .any(|service| !service.ends_with("-hl")),
        database_connected: false,
        server_version: None,
        tables_count: None,
        expected_tables: Vec::new(),
        missing_tables: Vec::new(),
        migrations_pending: None,
        migrations_drifted: None,
        current_version: None,
        high_availability: None,
        checks: Vec::new(),
        issues: state.issues(),
        elapsed_ms: 0,
    };
    // No chart release: perhaps a CloudNativePG cluster (one more call, only then).
    let cluster = match &release {
        Some(_) => None,
        None => crate::cnpg_cluster::find_cluster(&config.kube(), &config.release)
            .await?
            .map(|cluster| ClusterState::of(&cluster)),
    };
    // A crash loop's log may name its cause; read it only then (one more call).
    let crashing = report
        .issues
        .iter()
        .position(|issue| issue.code == "crash_loop");
    if let (Some(index), Some(primary)) = (crashing, &primary) {
        let log = crash_log(&config.kube(), &primary.pod).await;
        if let Some(mismatch) = report.issues[index].from_crash_log(&log) {
            report.issues[index] = mismatch;
        }
    }
    if let Some(cluster) = &cluster {
        // The operator's volumes and services carry its label, not the chart's.
        let objects = config
            .kube()
            .get_labelled(
                "pvc,services",
                &crate::cnpg::cluster_selector(&config.release),
            )
            .await?;
        let claims: Vec<&crate::kube::Object> = objects
            .iter()
            .filter(|object| object.kind == "PersistentVolumeClaim")
            .collect();
        report.pvc_bound =
            !claims.is_empty() && claims.iter().all(|claim| claim.status["phase"] == "Bound");
        report.service_present = objects.iter().any(|object| {
            object.kind == "Service"
                && object.metadata.name == crate::cnpg::rw_service(&config.release)
        });
        report.release_status = Some(cluster.shown_phase());
        report.expected_pods = cluster.instances;
        report.pods_running = cluster.ready;
        report.high_availability = Some(HighAvailability {
            instances: cluster.instances,
            ready_instances: cluster.ready,
            phase: cluster.shown_phase(),
            current_primary: cluster.current_primary.clone(),
            replicas: Vec::new(),
            failover_ready: false,
        });
        if cluster.hibernating {
            report.issues.insert(
                0,
                Issue::unhealthy(
                    "cluster_hibernated",
                    format!("cluster {} is hibernated: no instance runs", config.release),
                    "resume it with `pgk8s deploy --engine cnpg` (its volumes kept the data)",
                ),
            );
        } else if !cluster.healthy() {
            report.issues.insert(
                0,
                Issue::unhealthy(
                    "cluster_not_healthy",
                    format!("cluster {}: {}", config.release, cluster.summary()),
                    "wait with `pgk8s verify --wait 2m`; `kubectl get cluster,pods,events` shows what the operator is doing",
                ),
            );
        }
    } else if release.is_none() {
        report.issues.insert(
            0,
            Issue::unhealthy(
                "release_missing",
                format!(
                    "release {} is not installed in namespace {}",
                    config.release, config.namespace
                ),
                format!("deploy it with `pgk8s deploy -n {}`", config.namespace),
            ),
        );
    } else if report.release_status.as_deref() != Some("deployed") {
        report.issues.insert(
            0,
            Issue::unhealthy(
                "release_not_deployed",
                format!(
                    "release status is {}",
                    report.release_status.as_deref().unwrap_or("unknown")
                ),
                "re-run `pgk8s deploy`; see `helm history` for what failed".to_string(),
            ),
        );
    }
    let transport = match (&config.database_url, &primary) {
        (Some(_), _) => Some(config.transport_for("", crate::engine::Engine::Bitnami)),
        (None, Some(primary)) => Some(primary.transport(config)),
        (None, None) => None,
    };
    let secret_name = primary
        .as_ref()
        .and_then(|primary| primary.secret.clone())
        .unwrap_or_else(|| crate::chart::credentials_secret(&config.release));
    let kube = config.kube();
    let secret_refs = [format!("secret/{secret_name}")];
    let secret_refs: Vec<&str> = secret_refs.iter().map(String::as_str).collect();
    let (secret, database) = tokio::join!(kube.get(&secret_refs), async {
        match &transport {
            Some(transport) => check_database(config, transport, set, &mut report).await,
            None => Ok(()),
        }
    });
    database?;
    if let (Some(cluster), Some(transport), Some(ha)) =
        (&cluster, &transport, report.high_availability.as_mut())
        && report.database_connected
        && cluster.instances > 1
    {
        ha.replicas = replicas(config, transport).await?;
        ha.failover_ready = ha
            .replicas
            .iter()
            .any(|replica| replica.state == "streaming");
        if !ha.failover_ready {
            report.issues.push(Issue::unhealthy(
                "no_streaming_replica",
                format!(
                    "cluster {} has {} instances but no replica streams from the primary: a failover now would lose the primary's latest writes or find no candidate",
                    config.release, cluster.instances
                ),
                "see `pgk8s logs` of the replicas and `kubectl get cluster`",
            ));
        }
    }
    let secret = secret.context("reading the credentials Secret")?;
    for key in secret
        .iter()
        .flat_map(|secret| crate::secrets::interrupted_rotations(&secret.data))
    {
        report.issues.push(Issue::unhealthy(
            "rotation_interrupted",
            format!("Secret {secret_name} holds {key}: a password rotation was interrupted"),
            "finish or undo it with `pgk8s rotate-password` (for the role whose key is pending)",
        ));
    }
    if let Some(record) = secret
        .first()
        .map(crate::major_upgrade::Record::read)
        .transpose()?
        .flatten()
    {
        let refusal = record.refusal(&config.release);
        report.issues.push(Issue::unhealthy(
            "upgrade_interrupted",
            refusal.message,
            refusal.hint.unwrap_or_default(),
        ));
    }
    if release
        .as_ref()
        .is_some_and(|release| release.status == "deployed")
        && state.statefulsets == 0
    {
        report.issues.push(Issue::unhealthy(
            "statefulset_missing",
            format!(
                "release {} has no StatefulSet: its pods run unmanaged, and nothing starts them again if they stop",
                config.release
            ),
            "run `pgk8s deploy` again with the release's flags: helm creates the StatefulSet, which adopts the running pods",
        ));
    }
    report.checks = checks(&report);
    report.healthy = report.issues.is_empty();
    report.elapsed_ms = started.elapsed().as_millis();
    Ok(report)
}

/// The replicas the primary streams to, with how far behind each replays (the superuser sees
/// every column of `pg_stat_replication`).
async fn replicas(config: &Config, transport: &Transport) -> anyhow::Result<Vec<Replica>> {
    let command = || {
        transport.psql(
            Login::Superuser,
            Mode::ReadOnly,
            &config.database,
            &config.username,
        )
    };
    let mut session = Session::open_when_ready(command, CONNECT_WAIT).await?;
    let rows = session
        .query(
            "SELECT application_name, state, \
             pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint \
             FROM pg_stat_replication ORDER BY application_name;",
        )
        .await?;
    session.close().await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match row.as_slice() {
            [name, state, lag] => Some(Replica {
                name: name.clone(),
                state: state.clone(),
                replay_lag_bytes: lag.parse().ok(),
            }),
            _ => None,
        })
        .collect())
}

/// Connects once (read-only) and reads version, tables and migration history.
async fn check_database(
    config: &Config,
    transport: &Transport,
    set: Option<&MigrationSet>,
    report: &mut VerifyReport,
) -> anyhow::Result<()> {
    let command = || {
        transport.psql(
            Login::App,
            Mode::ReadOnly,
            &config.database,
            &config.username,
        )
    };
    let mut session = match Session::open_when_ready(command, CONNECT_WAIT).await {
        Ok(session) => session,
        Err(error) => {
            if crate::exit_status::classify(&error).code == ExitCode::ClusterUnreachable {
                return Err(error);
            }
            let (message, hint) = match error.downcast_ref::<SqlError>() {
                Some(sql_error @ SqlError::Authentication { .. }) => (
                    sql_error.to_string(),
                    Some(crate::exit_status::authentication_hint()),
                ),
                Some(sql_error) => (sql_error.to_string(), None),
                None => (format!("{error:#}"), None),
            };
            report.issues.push(Issue {
                code: "database_unreachable",
                message,
                hint: hint.unwrap_or_else(|| "check `pgk8s logs`; if the password was changed outside pgk8s, restore the Secret".to_string()),
                exit: ExitCode::DatabaseUnreachable,
            });
            return Ok(());
        }
    };
    report.database_connected = true;
    report.server_version = session
        .query("SHOW server_version;")
        .await?
        .first()
        .and_then(|row| row.first())
        .cloned();
    let tables = seed::table_counts(&mut session).await?;
    report.tables_count = Some(tables.len());
    if let Some(set) = set {
        if set.source == "embedded" {
            report.expected_tables = LEARNFLOW_TABLES
                .iter()
                .map(|table| table.to_string())
                .collect();
            report.missing_tables = report
                .expected_tables
                .iter()
                .filter(|expected| !tables.iter().any(|table| &table.table == *expected))
                .cloned()
                .collect();
        }
        let history = migration_engine::read_history(&mut session)
            .await?
            .unwrap_or_default();
        let statuses = migration_engine::statuses(set, &history);
        let count = |state: VersionState| {
            statuses
                .iter()
                .filter(|status| status.state == state)
                .count()
        };
        report.migrations_pending = Some(count(VersionState::Pending));
        report.migrations_drifted = Some(count(VersionState::Drifted));
        report.current_version = history.iter().map(|row| row.version).max();
        if !report.missing_tables.is_empty() {
            report.issues.push(Issue::unhealthy(
                "tables_missing",
                format!("missing table(s): {}", report.missing_tables.join(", ")),
                "apply the migrations with `pgk8s migrate`",
            ));
        }
        if count(VersionState::Pending) > 0 {
            report.issues.push(Issue::unhealthy(
                "migrations_pending",
                format!("{} migration(s) pending", count(VersionState::Pending)),
                "apply them with `pgk8s migrate`",
            ));
        }
        if count(VersionState::Drifted) > 0 {
            report.issues.push(Issue::unhealthy(
                "migrations_drifted",
                format!(
                    "{} applied migration(s) changed since they ran",
                    count(VersionState::Drifted)
                ),
                "see `pgk8s migrate status`; restore the files or run `pgk8s migrate repair --yes`",
            ));
        }
    }
    session.close().await?;
    Ok(())
}

fn checks(report: &VerifyReport) -> Vec<Check> {
    let check = |name, ok: bool, detail: String| Check {
        name,
        status: if ok {
            CheckStatus::Ok
        } else {
            CheckStatus::Fail
        },
        detail,
    };
    let skipped = |name, detail: &str| Check {
        name,
        status: CheckStatus::Skip,
        detail: detail.to_string(),
    };
    let mut checks = vec![
        check(
            "release",
            matches!(
                report.release_status.as_deref(),
                Some("deployed" | crate::cnpg::HEALTHY_PHASE)
            ),
            report
                .release_status
                .clone()
                .unwrap_or_else(|| "not installed".into()),
        ),
        check(
            "pods",
            report.expected_pods > 0 && report.pods_running == report.expected_pods,
            format!(
                "{}/{} running and ready",
                report.pods_running, report.expected_pods
            ),
        ),
        check(
            "volumes",
            report.pvc_bound,
            if report.pvc_bound {
                "bound".into()
            } else {
                "not bound".into()
            },
        ),
        check(
            "service",
            report.service_present,
            if report.service_present {
                "present".into()
            } else {
                "missing".into()
            },
        ),
        check(
            "database",
            report.database_connected,
            match &report.server_version {
                Some(version) => format!("accepts connections (PostgreSQL {version})"),
                None => "not reachable".into(),
            },
        ),
    ];
    match (report.migrations_pending, report.migrations_drifted) {
        (Some(pending), Some(drifted)) => {
            let tables = report.tables_count.unwrap_or(0);
            let expected = if report.expected_tables.is_empty() {
                format!("{tables} tables")
            } else {
                format!(
                    "{}/{} LearnFlow tables",
                    report.expected_tables.len() - report.missing_tables.len(),
                    report.expected_tables.len()
                )
            };
            checks.push(check("schema", report.missing_tables.is_empty(), expected));
            checks.push(check(
                "migrations",
                pending == 0 && drifted == 0,
                format!(
                    "version {}, {pending} pending, {drifted} drifted",
                    report
                        .current_version
                        .map_or("none".to_string(), |version| version.to_string())
                ),
            ));
        }
        _ if report.database_connected => {
            checks.push(skipped("schema", "not checked (add --check-schema)"))
        }
        _ => checks.push(skipped("schema", "database not reachable")),
    }
    checks
}

impl VerifyReport {
    /// The exit code of this result: 0 healthy, 8 when the database is the only problem,
    /// else 5.
    pub fn exit_code(&self) -> ExitCode {
        if self.healthy {
            return ExitCode::Success;
        }
        let only_database = self
            .issues
            .iter()
            .all(|issue| issue.exit == ExitCode::DatabaseUnreachable);
        if only_database {
            ExitCode::DatabaseUnreachable
        } else {
            ExitCode::Unhealthy
        }
    }

    /// The codes of the issues found, for progress lines.
    pub fn summary(&self) -> String {
        self.issues
            .iter()
            .map(|issue| issue.code)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

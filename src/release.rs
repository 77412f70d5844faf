//! The database under `-n/-r`: which objects belong to the release, where its primary runs, how
//! to open a session on it, and what runs on it after a deploy. Every command goes through here;
//! none finds a pod, lists a release's objects or opens a session by itself.
//!
//! A release's objects are selected by its labels (`app.kubernetes.io/instance=<release>`,
//! `app.kubernetes.io/name=postgresql`) and, for data volumes, by the exact names its
//! StatefulSets give them — never by a name prefix, because `postgresql` is a prefix of
//! `postgresql-test`, a neighbour's release in the same namespace.

use std::time::Duration;

use anyhow::Context as _;

use crate::chart::{self, COMPONENT_LABEL, Names, Topology, release_selector};
use crate::config::Config;
use crate::diagnose::ReleaseState;
use crate::engine::Engine;
use crate::error::{ExitCode, Failure};
use crate::helm::{Helm, ReleaseStatus};
use crate::kube::{Kube, Object};
use crate::migration_engine::{self, Applied, Direction, HistoryRow, UpOptions};
use crate::migration_files::MigrationSet;
use crate::names::ReleaseName;
use crate::seed::{self, ExistingRows, SeedScript, TableCount};
use crate::session::Session;
use crate::sql_error::SqlError;
use crate::transport::{Login, Mode, Transport, login_user};

/// A data volume claim owned by the release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataClaim {
    /// The claim's name.
    pub name: String,
    /// The topology whose StatefulSet created it.
    pub topology: Topology,
}

/// Whether `object` carries the release's labels.
pub fn owns(release: &ReleaseName, object: &Object) -> bool {
    object.label(chart::INSTANCE_LABEL) == Some(release.as_str())
        && object.label(chart::NAME_LABEL) == Some(chart::NAME_LABEL_VALUE)
}

/// The release's data claims among `objects`: labelled as the release's and named exactly as
/// one of its StatefulSets names its claims.
pub fn data_claims(release: &ReleaseName, objects: &[Object]) -> Vec<DataClaim> {
    let names = Names::new(release, Topology::Standalone);
    objects
        .iter()
        .filter(|object| object.kind == "PersistentVolumeClaim" && owns(release, object))
        .filter_map(|claim| {
            names
                .data_claim_topology(&claim.metadata.name)
                .map(|topology| DataClaim {
                    name: claim.metadata.name.clone(),
                    topology,
                })
        })
        .collect()
}

/// The release's state among the objects of a `kubectl get pods,pvc,statefulsets,services,
/// events`: those carrying its labels (data claims also by their exact names), and the warning
/// events about them.
pub fn release_state(objects: &[Object], release: &ReleaseName) -> ReleaseState {
    let claim_names: Vec<String> = data_claims(release, objects)
        .into_iter()
        .map(|claim| claim.name)
        .collect();
    let claims: Vec<&Object> = objects
        .iter()
        .filter(|object| {
            object.kind == "PersistentVolumeClaim" && claim_names.contains(&object.metadata.name)
        })
        .collect();
    let owned: Vec<&Object> = objects
        .iter()
        .filter(|object| {
            owns(release, object)
                && matches!(object.kind.as_str(), "Pod" | "StatefulSet" | "Service")
        })
        .collect();
    let owned_names: Vec<&str> = owned
        .iter()
        .chain(&claims)
        .map(|object| object.metadata.name.as_str())
        .collect();
    // A pod helm's rollback deleted is still named by its events.
    let names = Names::new(release, Topology::Standalone);
    let warnings = objects
        .iter()
        .filter(|object| object.kind == "Event" && object.type_name.as_deref() == Some("Warning"))
        .filter_map(|event| {
            let involved = event.involved_object.as_ref()?;
            let about = involved.name.as_str();
            let gone_pod = involved.kind == "Pod" && names.pod_topology(about).is_some();
            (owned_names.contains(&about) || gone_pod).then(|| {
                format!(
                    "{about}: {}: {}",
                    event.reason.as_deref().unwrap_or("Warning"),
                    event.message.as_deref().unwrap_or_default()
                )
            })
        })
        .collect();
    ReleaseState::of_owned(owned, claims, warnings)
}

/// Lists the release's data claims (one `kubectl get pvc -l …`).
pub async fn list_data_claims(
    kube: &Kube,
    release: &ReleaseName,
) -> anyhow::Result<Vec<DataClaim>> {
    let claims = kube.get_labelled("pvc", &release_selector(release)).await?;
    Ok(data_claims(release, &claims))
}

/// The pod serving as the release's primary, and the Secret it mounts.
#[derive(Clone, Debug)]
pub struct Primary {
    /// Pod name.
    pub pod: String,
    /// The Secret mounted as the chart's password files, when the pod spec names one.
    pub secret: Option<String>,
    /// The engine that runs it.
    pub engine: Engine,
}

impl Primary {
    /// The primary `pod` of either engine.
    fn of(pod: &Object) -> Primary {
        Primary {
            pod: pod.metadata.name.clone(),
            secret: mounted_secret(pod),
            engine: Engine::of_pod(pod),
        }
    }

    /// Where SQL runs: this pod (or `--database-url`).
    pub fn transport(&self, config: &Config) -> Transport {
        config.transport_for(&self.pod, self.engine)
    }
}

/// Whether `pod` is the primary of `release`, whichever engine runs it.
fn is_primary_of(release: &ReleaseName, pod: &Object) -> bool {
    pod.kind == "Pod" && owns(release, pod) && Engine::of_pod(pod).is_primary(pod)
}

/// Finds the release's primary pod by its labels (one `kubectl get pods -l …`): the chart's
/// `component=primary`, or CloudNativePG's `instanceRole=primary` (its pods carry the release's
/// instance and name labels too).
pub async fn find_primary(kube: &Kube, release: &ReleaseName) -> anyhow::Result<Primary> {
    let pods = kube
        .get_labelled("pods", &release_selector(release))
        .await?;
    let pod = pods
        .iter()
        .find(|pod| is_primary_of(release, pod))
        .ok_or_else(|| {
            no_pod(
                release,
                kube.namespace().as_str(),
                "no pod carries the primary's labels",
            )
        })?;
    Ok(Primary::of(pod))
}

/// The Secret a chart pod mounts as its password files.
pub fn mounted_secret(pod: &Object) -> Option<String> {
    pod.spec["volumes"].as_array()?.iter().find_map(|volume| {
        (volume["name"] == chart::PASSWORD_VOLUME)
            .then(|| volume["secret"]["secretName"].as_str().map(str::to_string))
            .flatten()
    })
}

/// What clients connect to: the release's primary service, its primary pod (when one exists)
/// and the credentials Secret that pod mounts.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// The primary's client service (not the headless one).
    pub service: String,
    /// The primary pod, when one exists.
    pub primary: Option<Primary>,
}

impl Endpoints {
    /// The Secret the release reads its passwords from: the one its primary mounts, else the one
    /// pgk8s creates by default.
    pub fn secret(&self, release: &ReleaseName) -> String {
        self.primary
            .as_ref()
            .and_then(|primary| primary.secret.clone())
            .unwrap_or_else(|| chart::credentials_secret(release))
    }
}

/// Finds the release's primary service and pod in one `kubectl get services,pods -l …`: the
/// chart's primary service, or a CloudNativePG cluster's `<release>-rw`.
pub async fn find_endpoints(kube: &Kube, release: &ReleaseName) -> anyhow::Result<Endpoints> {
    let objects = kube
        .get_labelled("services,pods", &release_selector(release))
        .await?;
    let primary = objects
        .iter()
        .find(|object| is_primary_of(release, object))
        .map(Primary::of);
    let chart_service = objects
        .iter()
        .find(|object| {
            object.kind == "Service"
                && object.label(COMPONENT_LABEL) == Some("primary")
                && object.spec["clusterIP"] != "None"
        })
        .map(|service| service.metadata.name.clone());
    let service = match (&primary, chart_service) {
        (_, Some(service)) => service,
        (Some(primary), None) if primary.engine == Engine::Cnpg => crate::cnpg::rw_service(release),
        _ => {
            return Err(ReleaseError::NoService {
                release: release.clone(),
                namespace: kube.namespace().to_string(),
            }
            .into());
        }
    };
    Ok(Endpoints { service, primary })
}

/// Reads the credentials Secret named `name` (one `kubectl get`); its values are registered
/// for redaction as they are parsed.
pub async fn read_secret(kube: &Kube, name: &str) -> anyhow::Result<Object> {
    kube.get(&[&format!("secret/{name}")])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ReleaseError::SecretMissing {
                name: name.to_string(),
                namespace: kube.namespace().to_string(),
            }
            .into()
        })
}

/// The last log lines of a crashed chart pod's previous container (empty when they cannot be
/// read): the server's own words for why it stopped.
pub async fn crash_log(kube: &Kube, pod: &str) -> String {
    let command = kube
        .logs(
            pod,
            chart::CONTAINER,
            crate::kube::LogRequest {
                tail: Some(10),
                previous: true,
                ..crate::kube::LogRequest::default()
            },
        )
        .timeout(Duration::from_secs(20));
    match command.capture().await {
        Ok(captured) => captured.stdout_text(),
        Err(_) => String::new(),
    }
}

/// The command that prints a password from the Secret, for users who want to read it themselves.
pub fn password_command(secret: &str, namespace: &str, key: &str) -> String {
    format!("kubectl get secret {secret} -n {namespace} -o jsonpath='{{.data.{key}}}' | base64 -d")
}

/// What one `helm status` and one `kubectl get` say about the release.
pub struct Observation {
    /// The release, if installed.
    pub release: Option<crate::helm::ReleaseStatus>,
    /// Its pods, claims and services.
    pub state: ReleaseState,
    /// The primary pod, if it exists.
    pub primary: Option<Primary>,
}

/// Reads the release and its objects, concurrently.
pub async fn observe(
    kube: &Kube,
    helm: &Helm,
    release: &ReleaseName,
) -> anyhow::Result<Observation> {
    let (status, objects) = tokio::join!(
        helm.status(release),
        kube.get(&["statefulsets,pods,pvc,services,events"])
    );
    let status = status.context("reading the release")?;
    let objects = objects.context("reading the release's pods and volumes")?;
    let state = release_state(&objects, release);
    let primary = objects
        .iter()
        .find(|object| is_primary_of(release, object))
        .map(Primary::of);
    Ok(Observation {
        release: status,
        state,
        primary,
    })
}

/// A release an interrupted run left `pending-install` or `pending-upgrade` blocks every helm
/// operation. Once it has been pending longer than this command's `--timeout` (so no run that
/// started it can still be waiting), undo it: uninstall a release that never got deployed (its
/// volumes stay), roll back an upgrade. Returns the release as it is afterwards; a release that
/// is not pending is returned as it was.
pub async fn settle_pending(
    config: &Config,
    helm: &Helm,
    release: Option<ReleaseStatus>,
) -> anyhow::Result<Option<ReleaseStatus>> {
    let release = match release {
        Some(release) if release.is_pending() => release,
        settled => return Ok(settled),
    };
    let age = release.age().unwrap_or_default();
    if age < config.timeout {
        return Err(Failure::new(
            ExitCode::Refused,
            format!(
                "release {} has been {} for {}: another pgk8s run may still be working on it",
                config.release,
                release.status,
                humantime::format_duration(Duration::from_secs(age.as_secs()))
            ),
        )
        .hint(format!(
            "wait for it to finish; if it was interrupted, run the command again after {} and pgk8s undoes the half-done step",
            humantime::format_duration(config.timeout)
        ))
        .into());
    }
    if release.status == "pending-install" {
        tracing::warn!(
            "release {} was left pending-install by an interrupted run; uninstalling it (its volumes are kept) before installing again",
            config.release
        );
        helm.uninstall(&config.release, config.timeout).await?;
        return Ok(None);
    }
    tracing::warn!(
        "release {} was left {} by an interrupted run; rolling it back to the last deployed revision",
        config.release,
        release.status
    );
    helm.rollback(&config.release, config.timeout).await?;
    helm.status(&config.release)
        .await
        .context("reading the release after the rollback")
}

/// The release's primary pod, whichever engine runs it (one `kubectl get` by label).
pub async fn primary(config: &Config) -> anyhow::Result<Primary> {
    find_primary(&config.kube(), &config.release).await
}

/// The primary pod as a transport, for commands that run programs in it (pg_dump, pg_restore);
/// `--database-url` cannot serve them, which is refused before any call.
pub async fn pod_transport(config: &Config, command: &str) -> anyhow::Result<Transport> {
    if config.database_url.is_some() {
        return Err(Failure::usage(format!(
            "{command} runs pg_dump/pg_restore inside the pod; --database-url cannot be used"
        ))
        .hint("unset PGK8S_DATABASE_URL (or drop --database-url) for this command")
        .into());
    }
    Ok(primary(config).await?.transport(config))
}

/// How a session reaches the database: as whom, and how long to wait for it to accept.
#[derive(Clone, Copy, Debug)]
pub struct Connect {
    /// The role to log in as.
    pub login: Login,
    /// How long to retry while the database is not ready.
    pub wait: Duration,
}

/// Opens a psql session on the release's primary, retrying while the database starts up to
/// `wait`. The chart's standalone pod name is tried first without a lookup (so a migration run
/// stays one `kubectl exec`); when that pod does not exist, the pod labelled as the primary
/// (the chart's replicated layout, or a CloudNativePG cluster). With `--engine cnpg` the lookup
/// comes first.
pub async fn open_primary(
    config: &Config,
    connect: Connect,
    mode: Mode,
) -> anyhow::Result<(Session, Transport)> {
    let Connect { login, wait } = connect;
    let open = |transport: Transport| async move {
        let command = || transport.psql(login, mode, &config.database, &config.username);
        Session::open_when_ready(command, wait)
            .await
            .map(|session| (session, transport.clone()))
    };
    let standalone = Names::new(&config.release, Topology::Standalone).primary_pod;
    let opened = if config.engine == Some(Engine::Cnpg) && config.database_url.is_none() {
        open(primary(config).await?.transport(config)).await
    } else {
        match open(config.transport_for(&standalone, Engine::Bitnami)).await {
            // Not the chart's standalone pod: the primary by its labels, whichever engine (the
            // chart's replicated layout, or a CloudNativePG cluster).
            Err(error) if config.database_url.is_none() && is_missing_pod(&error) => {
                match find_primary(&config.kube(), &config.release).await {
                    Ok(found) => open(found.transport(config)).await,
                    Err(_) => Err(no_pod(
                        &config.release,
                        config.namespace.as_str(),
                        &format!("looked for {standalone} and a pod labelled as the primary"),
                    )
                    .into()),
                }
            }
            result => result,
        }
    };
    opened.map_err(|error| {
        if !matches!(
            error.downcast_ref::<SqlError>(),
            Some(SqlError::Authentication { .. })
        ) {
            return error;
        }
        let (user, key) = login_user(login, &config.username);
        let source = match &config.database_url {
            Some(_) => "the password in --database-url".to_string(),
            None => format!("the password under Secret key `{key}` mounted in the pod"),
        };
        error.context(format!("logging in as {user} with {source}"))
    })
}

fn is_missing_pod(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<SqlError>(),
        Some(SqlError::NoPod { .. })
    )
}

/// The history, read in a read-only session that is closed again (dry runs, status).
pub async fn history_read_only(
    config: &Config,
    connect: Connect,
) -> anyhow::Result<(Transport, Vec<HistoryRow>)> {
    let (mut session, transport) = open_primary(config, connect, Mode::ReadOnly).await?;
    let history = migration_engine::read_history(&mut session)
        .await?
        .unwrap_or_default();
    session.close().await?;
    Ok((transport, history))
}

/// A writable session holding the migration lock, and the history read under it.
pub async fn history_locked(
    config: &Config,
    connect: Connect,
    lock_timeout: Duration,
) -> anyhow::Result<(Session, Transport, Vec<HistoryRow>)> {
    let (mut session, transport) = open_primary(config, connect, Mode::ReadWrite).await?;
    migration_engine::lock(&mut session, lock_timeout).await?;
    let history = migration_engine::read_history(&mut session)
        .await?
        .unwrap_or_default();
    Ok((session, transport, history))
}

/// What applying the pending migrations did.
pub struct MigratedUp {
    /// Where the SQL ran.
    pub transport: Transport,
    /// The migrations applied, in order.
    pub applied: Vec<Applied>,
    /// The history afterwards.
    pub history: Vec<HistoryRow>,
}

/// Applies the pending migrations of `set`: the whole run is one session (one `kubectl exec`)
/// holding the migration lock, confirmed against the history afterwards.
pub async fn migrate_up(
    config: &Config,
    set: &MigrationSet,
    options: &UpOptions,
    connect: Connect,
) -> anyhow::Result<MigratedUp> {
    let (mut session, transport, history) =
        history_locked(config, connect, options.lock_timeout).await?;
    let plan = migration_engine::plan_up(set, &history, options)?;
    let applied = migration_engine::apply(&mut session, &plan, Direction::Up).await?;
    let history =
        migration_engine::confirmed_history(&mut session, &applied, Direction::Up).await?;
    migration_engine::unlock(&mut session).await?;
    session.close().await?;
    Ok(MigratedUp {
        transport,
        applied,
        history,
    })
}

/// Loads seed `scripts` in one transaction and returns where they ran and the table row counts.
pub async fn load_seed(
    config: &Config,
    scripts: &[SeedScript],
    existing: ExistingRows,
    connect: Connect,
) -> anyhow::Result<(Transport, Vec<TableCount>)> {
    crate::deadline::step("loading the seed data");
    let (mut session, transport) = open_primary(config, connect, Mode::ReadWrite).await?;
    seed::load(&mut session, scripts, existing).await?;
    let tables = seed::table_counts(&mut session).await?;
    session.close().await?;
    Ok((transport, tables))
}

/// What runs on a release once it is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterDeploy {
    /// Nothing (`--skip-migrations`).
    Nothing,
    /// Apply the pending migrations.
    Migrate,
    /// Apply the pending migrations, then load the embedded seed data (`--seed`).
    MigrateAndSeed,
}

/// What ran after the deploy.
pub struct AfterDeployDone {
    /// Migrations applied by this deploy.
    pub applied: Vec<Applied>,
    /// The newest applied version afterwards.
    pub current_version: Option<u64>,
    /// Table row counts after seeding, when seeded.
    pub seeded_tables: Option<Vec<TableCount>>,
}

/// How long the post-deploy migration waits for connections and for the lock.
const POST_DEPLOY_WAIT: Duration = Duration::from_secs(120);

/// Runs the post-deploy steps: migrations of `set` (loaded unless `--skip-migrations`), then
/// seed data, as the application user.
pub async fn after_deploy(
    config: &Config,
    set: Option<&MigrationSet>,
    steps: AfterDeploy,
) -> anyhow::Result<AfterDeployDone> {
    let mut done = AfterDeployDone {
        applied: Vec::new(),
        current_version: None,
        seeded_tables: None,
    };
    let Some(set) = set.filter(|_| steps != AfterDeploy::Nothing) else {
        return Ok(done);
    };
    let options = UpOptions {
        lock_timeout: POST_DEPLOY_WAIT,
        ..UpOptions::default()
    };
    let connect = Connect {
        login: Login::App,
        wait: POST_DEPLOY_WAIT,
    };
    let migrated = migrate_up(config, set, &options, connect).await?;
    done.current_version = migrated.history.iter().map(|row| row.version).max();
    done.applied = migrated.applied;
    if steps == AfterDeploy::MigrateAndSeed {
        let (_, tables) = load_seed(config, &seed::embedded(), ExistingRows::Keep, connect).await?;
        done.seeded_tables = Some(tables);
    }
    Ok(done)
}

/// The failure when the release has no PostgreSQL pod (exit 8).
pub fn no_pod(release: &ReleaseName, namespace: &str, detail: &str) -> ReleaseError {
    ReleaseError::NoPod {
        release: release.clone(),
        namespace: namespace.to_string(),
        detail: detail.to_string(),
    }
}

/// What the release layer could not find.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// No pod of the release runs PostgreSQL.
    #[error(
        "database connection failed: release {release} has no PostgreSQL pod in namespace {namespace} ({detail})"
    )]
    NoPod {
        /// The release.
        release: ReleaseName,
        /// Its namespace.
        namespace: String,
        /// Where pgk8s looked.
        detail: String,
    },
    /// The release has no client service.
    #[error("release {release} has no service in namespace {namespace}")]
    NoService {
        /// The release.
        release: ReleaseName,
        /// Its namespace.
        namespace: String,
    },
    /// The credentials Secret does not exist.
    #[error("Secret {name} not found in namespace {namespace}")]
    SecretMissing {
        /// The Secret.
        name: String,
        /// Its namespace.
        namespace: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str, instance: &str) -> String {
        format!(
            r#"{{"kind":"PersistentVolumeClaim","metadata":{{"name":"{name}","labels":{{"app.kubernetes.io/instance":"{instance}","app.kubernetes.io/name":"postgresql"}}}}}}"#
        )
    }

    #[test]
    fn a_neighbours_claims_are_never_the_releases() {
        let list = format!(
            r#"{{"items":[{},{},{},{}]}}"#,
            claim("data-postgresql-0", "postgresql"),
            claim("data-postgresql-test-0", "postgresql-test"),
            claim("data-postgresql-primary-0", "postgresql"),
            // Right name, wrong labels: a hand-made claim that happens to match.
            claim("data-postgresql-1", "someone-else"),
        );
        let objects = crate::kube::parse_objects(list.as_bytes()).unwrap();
        let release: ReleaseName = "postgresql".parse().unwrap();
        assert_eq!(
            data_claims(&release, &objects),
            [
                DataClaim {
                    name: "data-postgresql-0".into(),
                    topology: Topology::Standalone
                },
                DataClaim {
                    name: "data-postgresql-primary-0".into(),
                    topology: Topology::Replication
                },
            ]
        );
    }

    #[test]
    fn the_mounted_secret_is_read_from_the_pod_spec() {
        let pod = r#"{"kind":"Pod","metadata":{"name":"postgresql-0"},"spec":{"volumes":[{"name":"empty-dir","emptyDir":{}},{"name":"postgresql-password","secret":{"secretName":"team-secret"}}]}}"#;
        let objects = crate::kube::parse_objects(pod.as_bytes()).unwrap();
        assert_eq!(mounted_secret(&objects[0]).as_deref(), Some("team-secret"));
    }
}

//! `pgk8s deploy --engine cnpg`: a CloudNativePG `Cluster` with `--instances N`, its
//! application user's password in a `kubernetes.io/basic-auth` Secret pgk8s generates (reused on
//! redeploy; a leftover volume without it is refused), a wait until every instance is ready,
//! then migrations (and seed data on request) in the primary.

use serde::Serialize;

use super::{Connection, PostDeploy, after_deploy_steps, render_connection};
use crate::chart::credentials_secret;
use crate::cli::DeployArgs;
use crate::cnpg::{self, ClusterSpec, ClusterState};
use crate::cnpg_cluster;
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::kube::{NamespaceView, Object};
use crate::manifests::{ListManifest, Manifest, NamespaceManifest, SecretManifest};
use crate::migration_files::MigrationSet;
use crate::operator;
use crate::output::{CheckState, Outcome, Report, Text};
use crate::profile::{self, Explicit};
use crate::release::after_deploy;

#[derive(Serialize)]
struct CnpgDeployReport {
    engine: &'static str,
    dry_run: bool,
    release: String,
    namespace: String,
    instances: u8,
    ready_instances: Option<u32>,
    primary: Option<String>,
    host: String,
    port: u16,
    database: String,
    username: String,
    secret: String,
    secret_action: &'static str,
    cluster_action: &'static str,
    operator_action: &'static str,
    /// The Cluster resource (a dry run's plan; it holds no secret).
    manifest: Option<serde_json::Value>,
    migrations: PostDeploy,
    password_command: String,
}

impl Report for CnpgDeployReport {
    fn render(&self, text: &mut Text) {
        if self.dry_run {
            text.line(format!(
                "Dry run: nothing was changed. Plan for CloudNativePG cluster {} in namespace {}:",
                self.release, self.namespace
            ));
            text.check(
                CheckState::Skipped,
                "pre-flight checks (cluster reachable, operator and its CRD) run at deploy time",
            );
            text.field(
                "secret",
                format!(
                    "{} (kubernetes.io/basic-auth; values never shown)",
                    self.secret
                ),
            );
            text.field("migrations", self.migrations.describe());
            text.line("  cluster:");
            let yaml = serde_yaml::to_string(&self.manifest).unwrap_or_default();
            for line in yaml.lines() {
                text.line(format!("    {line}"));
            }
            return;
        }
        text.line(format!(
            "CloudNativePG cluster {} is ready in namespace {} ({}): {}/{} instances, primary {}.",
            self.release,
            self.namespace,
            self.cluster_action,
            self.ready_instances.unwrap_or(0),
            self.instances,
            self.primary.as_deref().unwrap_or("?")
        ));
        render_connection(
            text,
            Connection {
                host: &self.host,
                port: self.port,
                database: &self.database,
                username: &self.username,
                replicas: None,
                secret: &self.secret,
                secret_action: self.secret_action,
                migrations: &self.migrations,
                password_command: &self.password_command,
            },
        );
    }
}

/// Runs `pgk8s deploy --engine cnpg`.
pub async fn run(args: &DeployArgs, config: &Config) -> anyhow::Result<Outcome> {
    let mut spec = resolve(args, config)?;
    let migrations = match args.skip_migrations {
        true => None,
        false => Some(MigrationSet::load(args.migrations_dir.as_deref())?),
    };
    let steps = after_deploy_steps(args);
    let mut manifest = spec.manifest();
    let mut report = CnpgDeployReport {
        engine: "cnpg",
        dry_run: args.dry_run,
        release: config.release.to_string(),
        namespace: config.namespace.to_string(),
        instances: spec.instances,
        ready_instances: None,
        primary: None,
        host: format!(
            "{}.{}.svc.cluster.local",
            cnpg::rw_service(&config.release),
            config.namespace
        ),
        port: crate::chart::PORT,
        database: config.database.to_string(),
        username: config.username.to_string(),
        secret: spec.secret.clone(),
        secret_action: "would be created, or reused if it exists",
        cluster_action: "planned",
        operator_action: "checked at deploy time",
        manifest: Some(serde_json::to_value(&manifest)?),
        migrations: PostDeploy::planned(steps),
        password_command: crate::release::password_command(
            &spec.secret,
            config.namespace.as_str(),
            crate::chart::APP_PASSWORD_KEY,
        ),
    };
    if args.dry_run {
        return Ok(Outcome::success(&report));
    }
    report.manifest = None;
    let kube = config.kube();
    crate::deadline::step("running the pre-flight checks");
    let (versions, operator_state) = tokio::join!(kube.versions(), operator::state(config));
    versions?;
    let operator_state = operator_state?;
    report.operator_action = if operator_state.running() {
        "running"
    } else if args.install_operator {
        operator::install(config, config.timeout).await?;
        "installed"
    } else {
        return Err(operator_missing(&operator_state).into());
    };
    let cluster_ref = cnpg::cluster_ref(&config.release);
    let secret_ref = format!("secret/{}", spec.secret);
    let refs = [cluster_ref.as_str(), secret_ref.as_str()];
    let selector = cnpg::cluster_selector(&config.release);
    let helm = config.helm();
    let (namespace, existing, claims, neighbour) = tokio::join!(
        kube.namespace_view(),
        kube.get(&refs),
        kube.get_labelled("pvc", &selector),
        cnpg_cluster::refuse_chart_neighbour(&kube, &helm, &config.release),
    );
    neighbour?;
    let existing = existing?;
    let cluster = existing.iter().find(|object| object.kind == "Cluster");
    let secret = existing.iter().find(|object| object.kind == "Secret");
    // Without --instances, a cluster keeps the number it runs (or ran before hibernating).
    if let (None, Some(cluster)) = (args.instances, cluster) {
        let running = ClusterState::of(cluster).instances;
        if let Ok(running @ 1..) = u8::try_from(running) {
            spec.instances = running;
            manifest = spec.manifest();
            report.instances = running;
        }
    }
    let mut manifests = Vec::new();
    if matches!(namespace?, NamespaceView::Missing) {
        manifests.push(Manifest::Namespace(NamespaceManifest::managed(
            config.namespace.as_str(),
        )));
    }
    report.secret_action = match secret {
        Some(secret) => {
            check_secret(secret, &spec)?;
            "reused"
        }
        None => {
            let claims = claims?;
            if !claims.is_empty() {
                return Err(leftover_volume(&claims, &spec, config).into());
            }
            manifests.push(Manifest::Secret(SecretManifest::basic_auth(
                &spec.secret,
                config.namespace.as_str(),
                config.database.as_str(),
                config.username.as_str(),
                &crate::secrets::generate_password(),
            )));
            "created"
        }
    };
    report.cluster_action = match cluster {
        Some(cluster) if same_spec(cluster, &manifest) => "unchanged",
        Some(_) => "updated",
        None => "created",
    };
    if !manifests.is_empty() {
        kube.apply(&ListManifest::of(manifests)).await?;
    }
    if report.cluster_action != "unchanged" {
        crate::deadline::step("creating the CloudNativePG cluster");
        kube.apply(&manifest).await?;
    }
    if cluster.is_some_and(|cluster| ClusterState::of(cluster).hibernating) {
        // `undeploy` hibernated it to keep the data: bring the instances back on their volumes.
        kube.annotate(&cluster_ref, cnpg::HIBERNATION_ANNOTATION, "off")
            .await?;
        report.cluster_action = "resumed";
    }
    let state = cnpg_cluster::wait_ready(config, &kube, spec.instances).await?;
    report.ready_instances = Some(state.ready);
    report.primary = state.current_primary.clone();
    let done = after_deploy(config, migrations.as_ref(), steps).await?;
    report.migrations = PostDeploy::done(steps, done);
    Ok(Outcome::success(&report))
}

/// The cluster the flags describe; refuses flags that only the chart understands.
fn resolve(args: &DeployArgs, config: &Config) -> Result<ClusterSpec, Failure> {
    cnpg::check_cluster_name(&config.release)?;
    for (given, flag) in [
        (args.replicas > 0, "--replicas (use --instances N)"),
        (args.values.is_some(), "--values"),
        (args.metrics, "--metrics"),
        (
            args.password_from_secret.is_some(),
            "--password-from-secret",
        ),
        (args.recreate_data, "--recreate-data"),
        (args.resize, "--resize"),
    ] {
        if given {
            return Err(Failure::usage(format!(
                "{flag} is for the Bitnami chart, not --engine cnpg"
            ))
            .hint("drop it; see `pgk8s deploy --help` for what a CloudNativePG cluster takes"));
        }
    }
    if config.database_url.is_some() {
        return Err(Failure::usage(
            "--database-url cannot be combined with deploy",
        ));
    }
    let instances = args.instances.unwrap_or(1);
    if instances > 1 && args.profile == crate::cli::Profile::Dev {
        tracing::info!(
            "{} instances on the dev profile: fine for trying failover, too small for production",
            instances
        );
    }
    let image = args
        .image
        .clone()
        .unwrap_or(cnpg::DEFAULT_IMAGE.to_string());
    if crate::chart::postgres_major(image.rsplit_once(':').map_or("", |(_, tag)| tag)).is_none() {
        return Err(Failure::usage(format!(
            "--image {image} has no tag that starts with the PostgreSQL major"
        ))
        .hint(format!(
            "CloudNativePG reads the major from the tag, e.g. {}",
            cnpg::DEFAULT_IMAGE
        )));
    }
    let resources = profile::resources(
        args.profile,
        Explicit {
            cpu_request: args.cpu_request.clone(),
            memory_request: args.memory_request.clone(),
            cpu_limit: args.cpu_limit.clone(),
            memory_limit: args.memory_limit.clone(),
        },
    )?;
    Ok(ClusterSpec {
        name: config.release.clone(),
        instances,
        image,
        storage_size: args
            .storage_size
            .clone()
            .unwrap_or_else(crate::chart::default_storage_size),
        storage_class: args.storage_class.clone(),
        resources,
        database: config.database.clone(),
        owner: config.username.clone(),
        secret: credentials_secret(&config.release),
        import: None,
    })
}

/// A Secret to reuse must say it is the owner's and hold a password.
fn check_secret(secret: &Object, spec: &ClusterSpec) -> Result<(), Failure> {
    let missing = secret
        .data
        .missing(&["username", crate::chart::APP_PASSWORD_KEY]);
    let username = secret.data.value("username");
    let wrong_user = username
        .is_some_and(|name| secrecy::ExposeSecret::expose_secret(&name) != spec.owner.as_str());
    if !missing.is_empty() || wrong_user {
        return Err(Failure::new(
            ExitCode::Refused,
            format!(
                "Secret {} is not a basic-auth Secret for user {} (keys username and password)",
                spec.secret, spec.owner
            ),
        )
        .hint("CloudNativePG reads the owner's password from it: fix or delete it (if no volume holds data yet), or deploy with another -r"));
    }
    Ok(())
}

fn leftover_volume(claims: &[Object], spec: &ClusterSpec, config: &Config) -> Failure {
    let names: Vec<&str> = claims
        .iter()
        .map(|claim| claim.metadata.name.as_str())
        .collect();
    Failure::new(
        ExitCode::Refused,
        format!(
            "data volume {} exists but Secret {} is gone: the owner's password lives only in that volume",
            names.join(", "),
            spec.secret
        ),
    )
    .hint(format!(
        "restore Secret {} (type kubernetes.io/basic-auth, keys username and password); to discard the data: kubectl delete pvc -n {} -l {}",
        spec.secret,
        config.namespace,
        cnpg::cluster_selector(&config.release)
    ))
}

fn operator_missing(state: &operator::OperatorState) -> Failure {
    let what = if state.crd == Some(false) {
        format!("the CloudNativePG CRD {} is not installed", cnpg::CRD)
    } else {
        format!(
            "the CloudNativePG operator is not running (deployment {} in {})",
            cnpg::OPERATOR_DEPLOYMENT,
            cnpg::OPERATOR_NAMESPACE
        )
    };
    let hint = if state.ready_replicas.is_some() {
        // Installed, but no replica is ready: installing again would not help.
        format!(
            "see why with `pgk8s operator status` and `kubectl describe deployment {} -n {}`; deploy again once it is ready",
            cnpg::OPERATOR_DEPLOYMENT,
            cnpg::OPERATOR_NAMESPACE
        )
    } else {
        "install it with `pgk8s operator install` (or add --install-operator), then deploy again"
            .to_string()
    };
    Failure::new(ExitCode::ToolMissing, what).hint(hint)
}

/// Whether a running cluster already has the spec pgk8s would write (every field pgk8s sets
/// has the same value; the operator's defaults for the rest do not count).
fn same_spec(cluster: &Object, manifest: &cnpg::ClusterManifest) -> bool {
    fn contains(actual: &serde_json::Value, wanted: &serde_json::Value) -> bool {
        match (actual, wanted) {
            (serde_json::Value::Object(actual), serde_json::Value::Object(wanted)) => wanted
                .iter()
                .all(|(key, value)| actual.get(key).is_some_and(|found| contains(found, value))),
            _ => actual == wanted,
        }
    }
    contains(&cluster.spec, &manifest.spec_value())
}

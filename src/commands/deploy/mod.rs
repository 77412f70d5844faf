//! `pgk8s deploy`: pre-flight checks, namespace and credentials Secret, `helm upgrade --install`
//! with a watched wait, then migrations (and seed data on request).
//!
//! Safe to repeat: an existing Secret is reused (the data volume holds its passwords), an
//! unchanged release is left alone, and a data volume whose Secret is gone stops the deploy
//! (exit 9) rather than initialising a new password it could never use.

mod cnpg;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;

use crate::chart::{self, Image, Names, Topology, Values};
use crate::cli::{DeployArgs, Profile};
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{ExitCode, Failure};
use crate::helm::{HelmMajor, ReleaseStatus, UpgradeRequest, upgrade_args};
use crate::kube::{Kube, NamespaceView, Object, is_forbidden};
use crate::major_upgrade::Record;
use crate::manifests::{ListManifest, Manifest, NamespaceManifest, SecretManifest};
use crate::migration_engine::Applied;
use crate::migration_files::MigrationSet;
use crate::names::Quantity;
use crate::output::{CheckState, Outcome, Report, Text};
use crate::preflight::{Facts, Target, preflight};
use crate::profile::{self, Explicit};
use crate::release::{AfterDeploy, AfterDeployDone, after_deploy, settle_pending};
use crate::resize;
use crate::rollout::{Rollout, roll_out};
use crate::secrets::Credentials;
use crate::seed::TableCount;
use crate::values_file::{merge, read_values_file, redact_secret_values};
use crate::views;

/// The result of a deploy (or of its dry run).
#[derive(Serialize)]
struct DeployReport {
    dry_run: bool,
    release: String,
    namespace: String,
    chart: String,
    chart_version: String,
    helm: Option<String>,
    namespace_action: &'static str,
    secret: String,
    secret_action: &'static str,
    release_action: &'static str,
    revision: Option<u64>,
    host: String,
    port: u16,
    database: String,
    username: String,
    read_replicas: u8,
    password_command: String,
    helm_command: String,
    values: Value,
    migrations: PostDeploy,
}

impl Report for DeployReport {
    fn render(&self, text: &mut Text) {
        if self.dry_run {
            text.line(format!(
                "Dry run: nothing was changed. Plan for release {} in namespace {}:",
                self.release, self.namespace
            ));
            text.check(CheckState::Skipped, "pre-flight checks (kubectl ≥1.25, helm 3/4, cluster reachable, StorageClass) run at deploy time");
            text.field(
                "namespace",
                format!("{} ({})", self.namespace, self.namespace_action),
            );
            text.field(
                "secret",
                format!(
                    "{} ({}; values never shown)",
                    self.secret, self.secret_action
                ),
            );
            text.field("helm", &self.helm_command);
            if self.helm.is_none() {
                text.line("               (helm not found here: shown with helm 4 flags; helm 3 gets --atomic)");
            }
            text.field("migrations", self.migrations.describe());
            text.line("  values:");
            let yaml = serde_yaml::to_string(&self.values).unwrap_or_default();
            for line in yaml.lines() {
                text.line(format!("    {line}"));
            }
            return;
        }
        text.line(format!(
            "PostgreSQL release {} is ready in namespace {} ({}).",
            self.release, self.namespace, self.release_action
        ));
        let replicas =
            (self.read_replicas > 0).then(|| format!("{} read replica(s)", self.read_replicas));
        render_connection(
            text,
            Connection {
                host: &self.host,
                port: self.port,
                database: &self.database,
                username: &self.username,
                replicas: replicas.as_deref(),
                secret: &self.secret,
                secret_action: self.secret_action,
                migrations: &self.migrations,
                password_command: &self.password_command,
            },
        );
    }
}

/// What a ready release tells its user, whichever engine runs it.
pub(super) struct Connection<'a> {
    pub(super) host: &'a str,
    pub(super) port: u16,
    pub(super) database: &'a str,
    pub(super) username: &'a str,
    pub(super) replicas: Option<&'a str>,
    pub(super) secret: &'a str,
    pub(super) secret_action: &'a str,
    pub(super) migrations: &'a PostDeploy,
    pub(super) password_command: &'a str,
}

/// The lines after a deploy's first: where to connect, as whom, and what ran.
pub(super) fn render_connection(text: &mut Text, connection: Connection<'_>) {
    text.field(
        "service",
        format!("{}:{}", connection.host, connection.port),
    );
    text.field("database", connection.database);
    text.field("user", connection.username);
    if let Some(replicas) = connection.replicas {
        text.field("replicas", replicas);
    }
    text.field(
        "secret",
        format!("{} ({})", connection.secret, connection.secret_action),
    );
    text.field("migrations", connection.migrations.describe());
    text.line(format!("  password:    {}", connection.password_command));
}

/// Runs `pgk8s deploy`.
pub async fn run(args: &DeployArgs, config: &Config) -> anyhow::Result<Outcome> {
    if config.engine == Some(Engine::Cnpg) {
        return cnpg::run(args, config).await;
    }
    if args.instances.is_some() || args.install_operator {
        return Err(Failure::usage(
            "--instances and --install-operator are for CloudNativePG clusters",
        )
        .hint("add --engine cnpg; the Bitnami chart's replicas are --replicas N (read-only)")
        .into());
    }
    let mut plan = Plan::resolve(args, config)?;
    // Load the migrations first, so a bad migrations directory stops the deploy before any call.
    let migrations = match args.skip_migrations {
        true => None,
        false => Some(MigrationSet::load(args.migrations_dir.as_deref())?),
    };
    if args.dry_run {
        return dry_run(&plan, config, args).await;
    }
    let kube = config.kube();
    let helm = config.helm();
    crate::deadline::step("running the pre-flight checks");
    let target = Target {
        release: &plan.request.release,
        secret: &plan.secret,
        storage_class: plan.values.storage_class.as_ref(),
    };
    let mut facts = preflight(&target, &kube, &helm).await?;
    if let Some(record) = facts
        .secret
        .as_ref()
        .map(Record::read)
        .transpose()?
        .flatten()
    {
        return Err(record.refusal(&plan.request.release).into());
    }
    if plan.own_secret
        && facts
            .secret
            .as_ref()
            .is_some_and(|secret| secret.type_name.as_deref() == Some(crate::manifests::BASIC_AUTH))
    {
        return Err(Failure::new(
            ExitCode::Refused,
            format!(
                "Secret {} is a CloudNativePG cluster's (kubernetes.io/basic-auth): a Bitnami release {} would run beside cluster {}",
                plan.secret, plan.names.release, plan.names.release
            ),
        )
        .hint("it is a CloudNativePG cluster: deploy it with --engine cnpg; to replace it, undeploy it first (--delete-pvc --yes deletes its data)")
        .into());
    }
    facts.release = settle_pending(config, &helm, facts.release.take()).await?;
    refuse_topology_switch(&plan, &facts)?;
    if let Some(release) = &facts.release {
        // What the flags do not say stays as the release has it: its image (a major upgrade
        // may have moved it on) and its volume size (a resize may have grown it).
        if args.image.is_none() && release.values["image"]["repository"].is_string() {
            plan.values.image = chart::image_of_values(&release.values);
        }
        if args.storage_size.is_none()
            && let Ok(size) = resize::size_of(&release.values).parse()
        {
            plan.values.storage_size = size;
        }
        refuse_major_change(&plan, release)?;
        // A major upgrade moved the primary to a claim of its own: keep it there.
        plan.values.existing_claim = chart::existing_claim(&release.values);
        change_volume_size(&plan, config, args, release).await?;
    }
    if plan.recreate_data && plan.own_secret && facts.secret.is_none() && !facts.claims.is_empty() {
        recreate_data(&plan, config, &kube, &helm, &mut facts).await?;
    }
    let secret_action = ensure_credentials(&plan, config, &kube, &facts).await?;
    let desired_values = plan.desired_values();
    let same = facts.release.as_ref().is_some_and(|release| {
        release.status == "deployed"
            && release.values == desired_values
            && release.chart.as_deref()
                == Some(&format!("postgresql-{}", plan.request.chart_version))
    });
    if same && facts.statefulsets == 0 {
        tracing::warn!(
            "the StatefulSet of release {} is missing (a resize or upgrade was cut short): helm creates it again and it adopts the running pod",
            plan.names.release
        );
    }
    let unchanged = same && facts.statefulsets > 0;
    let (release_action, revision) = if unchanged {
        tracing::info!(
            "release {} is deployed with these values already; leaving it as it is",
            plan.names.release
        );
        (
            "unchanged",
            facts.release.as_ref().map(|release| release.revision),
        )
    } else {
        let action = if facts.release.is_some() {
            "upgraded"
        } else {
            "installed"
        };
        let rollout = Rollout {
            kube: &kube,
            helm: &helm,
            major: facts.helm_major,
            request: &plan.request,
            names: &plan.names,
        };
        (action, roll_out(&rollout, &plan.desired_values()).await?)
    };
    let steps = after_deploy_steps(args);
    let done = after_deploy(config, migrations.as_ref(), steps).await?;
    let migrations = PostDeploy::done(steps, done);
    let report = plan.report(
        config,
        Some(facts.helm_major),
        secret_action,
        release_action,
        revision,
        migrations,
    );
    Ok(Outcome::success(&report))
}

/// What `deploy` did after the release was ready: migrations, then seed data.
#[derive(Serialize)]
pub(super) struct PostDeploy {
    migrations: &'static str,
    #[serde(serialize_with = "views::through::applied")]
    applied: Vec<Applied>,
    current_version: Option<u64>,
    seeded: bool,
    #[serde(serialize_with = "views::through::tables")]
    tables: Vec<TableCount>,
}

impl PostDeploy {
    /// The steps a dry run would take.
    pub(super) fn planned(steps: AfterDeploy) -> PostDeploy {
        PostDeploy {
            migrations: match steps {
                AfterDeploy::Nothing => "skipped (--skip-migrations)",
                _ => "would apply pending migrations",
            },
            applied: Vec::new(),
            current_version: None,
            seeded: steps == AfterDeploy::MigrateAndSeed,
            tables: Vec::new(),
        }
    }

    /// What the steps did.
    pub(super) fn done(steps: AfterDeploy, done: AfterDeployDone) -> PostDeploy {
        PostDeploy {
            migrations: match steps {
                AfterDeploy::Nothing => "skipped (--skip-migrations)",
                _ if done.applied.is_empty() => "up to date",
                _ => "applied",
            },
            current_version: done.current_version,
            applied: done.applied,
            seeded: done.seeded_tables.is_some(),
            tables: done.seeded_tables.unwrap_or_default(),
        }
    }

    pub(super) fn describe(&self) -> String {
        let version = self
            .current_version
            .map(|version| format!(", at version {version}"))
            .unwrap_or_default();
        let seeded = if self.seeded {
            "; seed data loaded"
        } else {
            ""
        };
        format!("{}{version}{seeded}", self.migrations)
    }
}

/// What runs once the release is ready, from `--skip-migrations` and `--seed`.
pub(super) fn after_deploy_steps(args: &DeployArgs) -> AfterDeploy {
    match (args.skip_migrations, args.seed) {
        (true, _) => AfterDeploy::Nothing,
        (false, false) => AfterDeploy::Migrate,
        (false, true) => AfterDeploy::MigrateAndSeed,
    }
}

/// Everything decided from flags alone, before any call.
struct Plan {
    names: Names,
    secret: String,
    own_secret: bool,
    values: Values,
    extra_values: Option<Value>,
    request: UpgradeRequest,
    recreate_data: bool,
}

impl Plan {
    fn resolve(args: &DeployArgs, config: &Config) -> Result<Plan, Failure> {
        let image =
            Image::parse(args.image.as_deref().unwrap_or(chart::DEFAULT_IMAGE)).map_err(|why| {
                Failure::usage(format!("--image {why}"))
                    .hint("use [REGISTRY/]REPOSITORY[:TAG], e.g. bitnamilegacy/postgresql:17.6.0")
            })?;
        for (flag, value) in [
            ("--chart", &args.chart),
            ("--chart-version", &args.chart_version),
        ] {
            if value.is_empty() || value.starts_with('-') || value.chars().any(char::is_control) {
                return Err(
                    Failure::usage(format!("{flag} {value:?} is not a chart reference")).hint(
                        "pass an OCI URL, repo/chart or a local path, and a version such as 17.1.0",
                    ),
                );
            }
        }
        if args.replicas > 0 && args.profile == Profile::Dev {
            return Err(Failure::usage("read replicas need --profile prod")
                .hint("add --profile prod with explicit --cpu-request and --memory-request"));
        }
        if args.replicas > 0 && config.database_url.is_some() {
            return Err(Failure::usage(
                "--database-url cannot be combined with deploy",
            ));
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
        let extra_values = match &args.values {
            Some(path) => Some(read_values_file(path)?),
            None => None,
        };
        let names = Names::new(&config.release, Topology::with_read_replicas(args.replicas));
        let (secret, own_secret) = match &args.password_from_secret {
            Some(name) => (name.to_string(), false),
            None => (names.secret.clone(), true),
        };
        let values = Values {
            secret: secret.clone(),
            database: config.database.clone(),
            username: config.username.clone(),
            storage_size: args
                .storage_size
                .clone()
                .unwrap_or_else(chart::default_storage_size),
            storage_class: args.storage_class.clone(),
            resources,
            read_replicas: args.replicas,
            image,
            metrics: args.metrics,
            service_monitor: args.service_monitor,
            existing_claim: None,
        };
        let request = UpgradeRequest {
            release: config.release.clone(),
            namespace: config.namespace.clone(),
            chart: args.chart.clone(),
            chart_version: args.chart_version.clone(),
            timeout: config.timeout,
            create_namespace: false,
        };
        Ok(Plan {
            names,
            secret,
            own_secret,
            values,
            extra_values,
            request,
            recreate_data: args.recreate_data,
        })
    }

    /// The values helm will hold after the upgrade: ours, then the user's file over them.
    fn desired_values(&self) -> Value {
        let mut merged = self.values.to_value();
        if let Some(extra) = &self.extra_values {
            merge(&mut merged, extra);
        }
        merged
    }

    fn topology(&self) -> Topology {
        Topology::with_read_replicas(self.values.read_replicas)
    }

    fn required_keys(&self) -> Vec<&'static str> {
        let mut keys = vec![chart::SUPERUSER_PASSWORD_KEY, chart::APP_PASSWORD_KEY];
        if self.values.read_replicas > 0 {
            keys.push(chart::REPLICATION_PASSWORD_KEY);
        }
        keys
    }

    fn report(
        &self,
        config: &Config,
        helm_major: Option<HelmMajor>,
        secret_action: &'static str,
        release_action: &'static str,
        revision: Option<u64>,
        migrations: PostDeploy,
    ) -> DeployReport {
        let namespace = config.namespace.as_str();
        let helm_command = format!(
            "helm {}",
            upgrade_args(
                helm_major.unwrap_or(HelmMajor::V4),
                &self.request,
                &config.access
            )
            .iter()
            .map(|arg| crate::process::quote(arg))
            .collect::<Vec<_>>()
            .join(" ")
        );
        DeployReport {
            dry_run: false,
            release: config.release.to_string(),
            namespace: namespace.to_string(),
            chart: self.request.chart.clone(),
            chart_version: self.request.chart_version.clone(),
            helm: helm_major.map(|major| format!("{major:?}").to_lowercase()),
            namespace_action: "exists",
            secret: self.secret.clone(),
            secret_action,
            release_action,
            revision,
            host: self.names.service_host(namespace),
            port: chart::PORT,
            database: config.database.to_string(),
            username: config.username.to_string(),
            read_replicas: self.values.read_replicas,
            password_command: crate::release::password_command(
                &self.secret,
                namespace,
                chart::password_key(config.username.as_str()),
            ),
            helm_command,
            values: redact_secret_values(&self.desired_values()),
            migrations,
        }
    }
}

async fn dry_run(plan: &Plan, config: &Config, args: &DeployArgs) -> anyhow::Result<Outcome> {
    // Only the local `helm version` runs, to show the exact flags; nothing touches the cluster.
    let helm_major = config.helm().major().await.ok();
    let mut report = plan.report(
        config,
        helm_major,
        if plan.own_secret {
            "created if missing, reused if present"
        } else {
            "existing, provided by you"
        },
        "install or upgrade",
        None,
        PostDeploy::planned(after_deploy_steps(args)),
    );
    report.dry_run = true;
    report.namespace_action = "created if missing, labelled app.kubernetes.io/managed-by=pgk8s";
    Ok(Outcome::success(&report))
}

/// A new PostgreSQL major cannot start on the old one's data directory (the pod would
/// crash-loop on "database files are incompatible with server"): refuse, and point at the
/// command that moves the data.
fn refuse_major_change(plan: &Plan, release: &ReleaseStatus) -> Result<(), Failure> {
    let (Some(current), Some(wanted)) = (
        chart::major_of_values(&release.values),
        plan.values.image.major(),
    ) else {
        return Ok(());
    };
    if current == wanted {
        return Ok(());
    }
    Err(Failure::new(
        ExitCode::Refused,
        format!(
            "release {} runs PostgreSQL {current} and the image asks for {wanted}: PostgreSQL {wanted} cannot start on a {current} data directory",
            plan.names.release
        ),
    )
    .hint(format!(
        "move the data with `pgk8s upgrade --postgres-version {wanted}` (backup, new volume, restore, verify; the old volume is kept), or deploy with the image of PostgreSQL {current}"
    )))
}

/// A running release whose volumes differ from `--storage-size`: the StatefulSet's volume
/// template cannot change, so helm would fail. Refuse before any change and point at `resize`,
/// or, with `--resize`, grow the volumes and replace the StatefulSet the way `resize` does.
async fn change_volume_size(
    plan: &Plan,
    config: &Config,
    args: &DeployArgs,
    release: &ReleaseStatus,
) -> anyhow::Result<()> {
    let wanted_text = resize::size_of(&plan.desired_values());
    let current_text = resize::size_of(&release.values);
    let (Ok(wanted), Ok(current)) = (
        wanted_text.parse::<Quantity>(),
        current_text.parse::<Quantity>(),
    ) else {
        return Ok(());
    };
    if wanted.amount() == current.amount() {
        return Ok(());
    }
    if !args.resize {
        return Err(Failure::usage(format!(
            "release {} has {current} volumes and --storage-size is {wanted}: the StatefulSet's volume template cannot change in place",
            plan.names.release
        ))
        .hint(format!(
            "grow the volumes with `pgk8s resize -n {} --storage-size {wanted}`, or add --resize to this deploy",
            config.namespace
        ))
        .into());
    }
    let kube = config.kube();
    let volumes = resize::mounted(
        resize::volumes(&kube, &config.release).await?,
        &release.values,
        &plan.names,
    );
    let classes = match kube.get(&["storageclasses"]).await {
        Ok(classes) => Some(classes),
        Err(error) if is_forbidden(&error) => None,
        Err(error) => return Err(error),
    };
    let growing = resize::to_grow(&volumes, &wanted, classes.as_deref())?;
    crate::deadline::step("growing the volumes");
    resize::grow(&kube, &growing, &wanted).await?;
    let short = resize::short_of(&volumes, &wanted);
    resize::wait_grown(&kube, &config.release, &short, &wanted, config.timeout).await?;
    resize::orphan_statefulsets(&kube, &config.release, config.timeout).await
}

/// Switching between standalone and replication renames the primary (`F-0` → `F-primary-0`), so
/// the chart would start it on a new, empty volume: refuse, and say how to move the data. The
/// current topology is the release's, or — after an undeploy that kept the volumes — that of
/// the kept claims.
fn refuse_topology_switch(plan: &Plan, facts: &Facts) -> Result<(), Failure> {
    let wanted = plan.topology();
    if let Some(release) = &facts.release {
        let current = Topology::of_values(&release.values);
        if current == wanted {
            return Ok(());
        }
        return Err(Failure::new(
            ExitCode::Refused,
            format!(
                "release {} is {}; making it {} would start the primary on a new, empty volume",
                plan.names.release,
                current.describe(),
                wanted.describe()
            ),
        )
        .hint("move the data explicitly: pgk8s backup -f db.dump, pgk8s undeploy --delete-pvc --yes, pgk8s deploy with the new --replicas, pgk8s restore -f db.dump --yes"));
    }
    let kept: Vec<&str> = facts
        .claims
        .iter()
        .filter(|claim| claim.topology != wanted)
        .map(|claim| claim.name.as_str())
        .collect();
    let Some(first) = facts.claims.iter().find(|claim| claim.topology != wanted) else {
        return Ok(());
    };
    let back = match first.topology {
        Topology::Standalone => "without --replicas".to_string(),
        Topology::Replication => "with --replicas and --profile prod as before".to_string(),
    };
    Err(Failure::new(
        ExitCode::Refused,
        format!(
            "volume {} is kept from a {} install of release {}; deploying it {} would start on a new, empty volume",
            kept.join(", "),
            first.topology.describe(),
            plan.names.release,
            wanted.describe()
        ),
    )
    .hint(format!(
        "to keep the data, deploy {back} (then move it with pgk8s backup/restore if you want the other layout); \
         to discard it, delete the volumes with `pgk8s undeploy -n {} --delete-pvc --yes` first",
        plan.request.namespace
    )))
}

/// Creates the namespace and Secret when missing, in one `kubectl apply` fed on stdin.
async fn ensure_credentials(
    plan: &Plan,
    config: &Config,
    kube: &Kube,
    facts: &Facts,
) -> anyhow::Result<&'static str> {
    let required = plan.required_keys();
    let mut manifests = Vec::new();
    if matches!(facts.namespace, NamespaceView::Missing) {
        manifests.push(Manifest::Namespace(NamespaceManifest::managed(
            kube.namespace().as_str(),
        )));
    }
    let action = match (&facts.secret, plan.own_secret) {
        (Some(secret), _) => {
            let missing = secret.data.missing(&required);
            if !missing.is_empty() {
                let only_replication = missing == [chart::REPLICATION_PASSWORD_KEY];
                if !plan.own_secret || !only_replication {
                    return Err(Failure::new(
                        ExitCode::Refused,
                        format!("Secret {} lacks the key(s) {}", plan.secret, missing.join(", ")),
                    )
                    .hint(format!("the chart reads {}: add them to the Secret, or delete it if no data volume exists yet", required.join(", ")))
                    .into());
                }
                manifests.push(add_replication_key(secret));
                "reused, replication password added"
            } else {
                "reused"
            }
        }
        (None, false) => {
            return Err(Failure::new(
                ExitCode::Refused,
                format!(
                    "Secret {} (from --password-from-secret) does not exist in namespace {}",
                    plan.secret,
                    kube.namespace()
                ),
            )
            .hint(format!("create it with keys {} first", required.join(", ")))
            .into());
        }
        (None, true) => {
            if !facts.claims.is_empty() {
                return Err(leftover_volume(plan, facts, kube));
            }
            let credentials = Credentials::generate(plan.values.read_replicas > 0);
            manifests.push(Manifest::Secret(SecretManifest::credentials(
                &plan.secret,
                kube.namespace().as_str(),
                config.database.as_str(),
                config.username.as_str(),
                credentials.data(),
            )));
            "created"
        }
    };
    if !manifests.is_empty() {
        kube.apply(&ListManifest::of(manifests))
            .await
            .context("creating the namespace and credentials Secret")?;
    }
    Ok(action)
}

/// `--recreate-data`: after confirmation, uninstall the release (a running pod keeps its claim,
/// PVC protection) and delete the data volumes whose passwords are lost.
async fn recreate_data(
    plan: &Plan,
    config: &Config,
    kube: &Kube,
    helm: &crate::helm::Helm,
    facts: &mut Facts,
) -> anyhow::Result<()> {
    let claims: Vec<String> = facts
        .claims
        .iter()
        .map(|claim| format!("pvc/{}", claim.name))
        .collect();
    let shown = facts
        .claims
        .iter()
        .map(|claim| claim.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    config.confirm(&format!("delete data volume(s) {shown} and all their data"))?;
    if facts.release.take().is_some() {
        tracing::warn!(
            "uninstalling release {} before deleting its data volume",
            plan.names.release
        );
        helm.uninstall(&config.release, config.timeout).await?;
    }
    tracing::warn!("deleting data volume(s) {shown} (--recreate-data)");
    let refs: Vec<&str> = claims.iter().map(String::as_str).collect();
    kube.delete(&refs, config.timeout).await?;
    facts.claims.clear();
    Ok(())
}

fn leftover_volume(plan: &Plan, facts: &Facts, kube: &Kube) -> anyhow::Error {
    let claims: Vec<&str> = facts
        .claims
        .iter()
        .map(|claim| claim.name.as_str())
        .collect();
    Failure::new(
        ExitCode::Refused,
        format!(
            "data volume {} exists but Secret {} is gone: its passwords live only in that volume",
            claims.join(", "),
            plan.secret
        ),
    )
    .hint(format!(
        "restore Secret {} (keys {}), or point at a copy with --password-from-secret NAME; \
         to discard the data instead: pgk8s deploy -n {} --recreate-data --yes",
        plan.secret,
        plan.required_keys().join(", "),
        kube.namespace()
    ))
    .into()
}

/// The Secret with a replication password added (a standalone release getting read replicas);
/// the passwords it has stay as they are.
fn add_replication_key(secret: &Object) -> Manifest {
    let mut data = secret.data.clone();
    let replication = Credentials::generate(true).data();
    if let Some(password) = replication.value(chart::REPLICATION_PASSWORD_KEY) {
        data.insert(chart::REPLICATION_PASSWORD_KEY, &password);
    }
    Manifest::Secret(SecretManifest::rewrite(secret, data))
}

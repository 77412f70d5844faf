//! `pgk8s move --to cnpg`: a new CloudNativePG cluster imports the application database from the
//! running Bitnami release with the operator's own import (`bootstrap.initdb.import`,
//! microservice: the owner owns every object), then the copy is proven — every table's row
//! count and the migration history equal the source's, and both verify healthy. The source is
//! never written to and keeps serving; the report says how to switch the application over and
//! how to retire the old release once satisfied.

use std::time::Instant;

use serde::Serialize;

use crate::chart::{self, Names, Topology};
use crate::cli::MoveArgs;
use crate::cnpg::{self, ClusterSpec, ImportSource};
use crate::cnpg_cluster;
use crate::config::Config;
use crate::contents;
use crate::engine::Engine;
use crate::error::{ExitCode, Failure};
use crate::health;
use crate::manifests::{ListManifest, Manifest, SecretManifest};
use crate::names::{Quantity, ReleaseName};
use crate::operator;
use crate::output::{CheckState, Outcome, Report, Text};
use crate::profile::{self, Explicit};
use crate::release;

#[derive(Serialize)]
struct MoveReport {
    dry_run: bool,
    source: String,
    target: String,
    namespace: String,
    database: String,
    instances: u8,
    tables: usize,
    rows: u64,
    migrations: usize,
    not_carried: Vec<String>,
    source_healthy: Option<bool>,
    target_healthy: Option<bool>,
    host: String,
    secret: String,
    /// The Cluster resource (a dry run's plan; it holds no secret).
    manifest: Option<serde_json::Value>,
    next_steps: Vec<String>,
    duration_ms: u128,
}

impl Report for MoveReport {
    fn render(&self, text: &mut Text) {
        if self.dry_run {
            text.line(format!(
                "Dry run: nothing was changed. Would copy database {} of release {} ({} tables, {} rows, {} migrations) into a new CloudNativePG cluster {} with {} instance(s):",
                self.database, self.source, self.tables, self.rows, self.migrations, self.target, self.instances
            ));
            let yaml = serde_yaml::to_string(&self.manifest).unwrap_or_default();
            for line in yaml.lines() {
                text.line(format!("    {line}"));
            }
            return;
        }
        text.line(format!(
            "Copied release {} into CloudNativePG cluster {} in {}: {} tables, {} rows and {} migrations match the source.",
            self.source, self.target, self.namespace, self.tables, self.rows, self.migrations
        ));
        let state = |healthy: Option<bool>| match healthy {
            Some(true) => CheckState::Ok,
            Some(false) => CheckState::Fail,
            None => CheckState::Skipped,
        };
        text.check(
            state(self.source_healthy),
            format!("source {} still serves", self.source),
        );
        text.check(
            state(self.target_healthy),
            format!("cluster {} verifies healthy", self.target),
        );
        for left in &self.not_carried {
            text.check(
                CheckState::Warn,
                format!("{left} is not carried (only the application database moves)"),
            );
        }
        text.field("service", &self.host);
        text.field("secret", &self.secret);
        for step in &self.next_steps {
            text.line(format!("  next: {step}"));
        }
    }
}

/// Runs `pgk8s move`.
pub async fn run(args: &MoveArgs, config: &Config) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    if args.to != Engine::Cnpg {
        return Err(Failure::usage(
            "pgk8s moves a release of the Bitnami chart to CloudNativePG only",
        )
        .hint("pass --to cnpg")
        .into());
    }
    if config.database_url.is_some() {
        return Err(Failure::usage(
            "move reads the source through its pod; --database-url cannot be used",
        )
        .hint("unset PGK8S_DATABASE_URL for this command")
        .into());
    }
    let target_name = match &args.target {
        Some(name) => name.clone(),
        None => format!("{}-cnpg", config.release)
            .parse::<ReleaseName>()
            .map_err(|why| {
                Failure::usage(format!("cannot name the new cluster: {why}"))
                    .hint("pass --target NAME")
            })?,
    };
    cnpg::check_cluster_name(&target_name)?;
    if target_name == config.release {
        return Err(Failure::usage(
            "--target must differ from the source release: both live in one namespace",
        )
        .hint("pass another --target, e.g. --target learnflow-db")
        .into());
    }
    let target = config.for_release(target_name.clone(), Engine::Cnpg);
    let kube = config.kube();
    let helm = config.helm();
    crate::deadline::step("reading the source release");
    let source_release = helm.status(&config.release).await?.ok_or_else(|| {
        Failure::new(
            ExitCode::General,
            format!(
                "release {} of the Bitnami chart is not installed in namespace {}",
                config.release, config.namespace
            ),
        )
        .hint("move copies a running release; check -n/-r")
    })?;
    let names = Names::new(&config.release, Topology::of_values(&source_release.values));
    let before = contents::contents(config).await?;
    let source_secret = crate::major_upgrade::secret_of(&source_release.values, &config.release);
    let storage_size = match &args.storage_size {
        Some(size) => size.clone(),
        None => crate::resize::size_of(&source_release.values)
            .parse::<Quantity>()
            .map_err(|why| {
                Failure::usage(format!("the source's volume size: {why}"))
                    .hint("pass --storage-size")
            })?,
    };
    let spec = ClusterSpec {
        name: target_name.clone(),
        instances: args.instances,
        image: args
            .image
            .clone()
            .unwrap_or(cnpg::DEFAULT_IMAGE.to_string()),
        storage_size,
        storage_class: args.storage_class.clone(),
        resources: profile::resources(crate::cli::Profile::Dev, Explicit::default())?,
        database: config.database.clone(),
        owner: config.username.clone(),
        secret: chart::credentials_secret(&target_name),
        import: Some(ImportSource {
            host: names.service_host(config.namespace.as_str()),
            database: config.database.clone(),
            password_secret: source_secret.clone(),
            password_key: chart::SUPERUSER_PASSWORD_KEY.to_string(),
        }),
    };
    let manifest = spec.manifest();
    let mut report = MoveReport {
        dry_run: args.dry_run,
        source: config.release.to_string(),
        target: target_name.to_string(),
        namespace: config.namespace.to_string(),
        database: config.database.to_string(),
        instances: args.instances,
        tables: before.tables.len(),
        rows: before.rows(),
        migrations: before.history.len(),
        not_carried: before.not_carried.clone(),
        source_healthy: None,
        target_healthy: None,
        host: format!(
            "{}.{}.svc.cluster.local:{}",
            cnpg::rw_service(&target_name),
            config.namespace,
            chart::PORT
        ),
        secret: spec.secret.clone(),
        manifest: Some(serde_json::to_value(&manifest)?),
        next_steps: Vec::new(),
        duration_ms: 0,
    };
    if args.dry_run {
        report.duration_ms = started.elapsed().as_millis();
        return Ok(Outcome::success(&report));
    }
    report.manifest = None;
    let operator_state = operator::state(config).await?;
    if !operator_state.running() {
        if !args.install_operator {
            return Err(Failure::new(ExitCode::ToolMissing, "the CloudNativePG operator is not running")
                .hint("install it with `pgk8s operator install` (or add --install-operator), then move again")
                .into());
        }
        operator::install(config, config.timeout).await?;
    }
    cnpg_cluster::refuse_chart_neighbour(&kube, &helm, &target_name).await?;
    // A basic-auth Secret of that name is an earlier move's (a cluster's would have stopped us
    // above); any other is someone's credentials, which the move must not overwrite.
    let target_secret = kube.get(&[&format!("secret/{}", spec.secret)]).await?;
    if let Some(secret) = target_secret
        .iter()
        .find(|secret| secret.type_name.as_deref() != Some(crate::manifests::BASIC_AUTH))
    {
        return Err(Failure::new(
            ExitCode::Refused,
            format!(
                "Secret {} exists and is not a CloudNativePG basic-auth Secret: move would overwrite those credentials",
                secret.metadata.name
            ),
        )
        .hint("pass another --target")
        .into());
    }
    if cnpg_cluster::find_cluster(&kube, &target_name)
        .await?
        .is_some()
    {
        return Err(Failure::new(
            ExitCode::Refused,
            format!("a CloudNativePG cluster {target_name} exists already"),
        )
        .hint(format!(
            "if it is a copy from an earlier move, delete it (`pgk8s undeploy -r {target_name} --delete-pvc --yes`) and move again; or pass another --target"
        ))
        .into());
    }
    // The application user keeps its password: the application only changes host.
    let app_password = release::read_secret(&kube, &source_secret)
        .await?
        .data
        .value(chart::password_key(config.username.as_str()))
        .ok_or_else(|| {
            Failure::new(
                ExitCode::Refused,
                format!(
                    "Secret {source_secret} has no password for {}",
                    config.username
                ),
            )
            .hint("move copies the application user's password from the source's Secret")
        })?;
    crate::deadline::step("creating the new cluster");
    kube.apply(&ListManifest::of(vec![Manifest::Secret(
        SecretManifest::basic_auth(
            &spec.secret,
            config.namespace.as_str(),
            config.database.as_str(),
            config.username.as_str(),
            &app_password,
        ),
    )]))
    .await?;
    kube.apply(&manifest).await?;
    cnpg_cluster::wait_ready(&target, &kube, args.instances).await.map_err(|error| {
        error.context(format!(
            "the import into cluster {target_name} did not finish; release {} was only read and keeps serving",
            config.release
        ))
    })?;
    crate::deadline::step("comparing the copy with the source");
    let after = contents::contents(&target).await?;
    let differences = contents::differences(&before, &after);
    if !differences.is_empty() {
        return Err(Failure::new(
            ExitCode::Unhealthy,
            format!(
                "the copy in cluster {target_name} differs from release {}: {}",
                config.release,
                differences.join("; ")
            ),
        )
        .hint(format!(
            "release {} is untouched; if the source took writes during the move, move again after stopping them (delete the copy first: pgk8s undeploy -r {target_name} --delete-pvc --yes)",
            config.release
        ))
        .into());
    }
    let (source_verify, target_verify) = tokio::join!(
        health::verify(config, None, Instant::now()),
        health::verify(&target, None, Instant::now()),
    );
    report.source_healthy = Some(source_verify?.healthy);
    report.target_healthy = Some(target_verify?.healthy);
    report.next_steps = vec![
        format!(
            "point the application at {} (database {}, user {}, same password; Secret {})",
            report.host, config.database, config.username, spec.secret
        ),
        format!(
            "manage the new cluster with -r {target_name} (pgk8s verify -r {target_name}, migrate, backup ...)"
        ),
        format!(
            "once satisfied, retire the old release: pgk8s undeploy -r {} (its volume is kept until --delete-pvc)",
            config.release
        ),
    ];
    report.duration_ms = started.elapsed().as_millis();
    let code = if report.target_healthy == Some(true) {
        ExitCode::Success
    } else {
        ExitCode::Unhealthy
    };
    Ok(Outcome::with_code(&report, code))
}

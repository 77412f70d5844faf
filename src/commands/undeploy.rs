//! `pgk8s undeploy`: `helm uninstall --wait` (a CloudNativePG cluster is hibernated instead,
//! because the operator deletes a cluster's volumes with it); data volumes, the credentials
//! Secret and the namespace go only on explicit flags, and only after confirmation (or `--yes`).

use anyhow::Context as _;
use serde::Serialize;

use crate::chart::{Names, Topology};
use crate::cli::UndeployArgs;
use crate::cnpg;
use crate::cnpg_cluster;
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::kube::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, NamespaceView, Object};
use crate::output::{CheckState, Outcome, Report, Text};
use crate::release::list_data_claims;

/// What undeploy removed (or, in a dry run, would remove).
#[derive(Serialize)]
struct UndeployReport {
    dry_run: bool,
    release: String,
    namespace: String,
    release_found: bool,
    steps: Vec<Step>,
    kept: Vec<String>,
}

#[derive(Serialize)]
struct Step {
    action: Action,
    target: String,
}

/// What a step does; in JSON, the words the text shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
enum Action {
    #[serde(rename = "uninstall release")]
    UninstallRelease,
    #[serde(rename = "delete volume claim")]
    DeleteVolumeClaim,
    #[serde(rename = "delete Secret")]
    DeleteSecret,
    #[serde(rename = "delete namespace")]
    DeleteNamespace,
    #[serde(rename = "hibernate cluster")]
    HibernateCluster,
    #[serde(rename = "delete cluster and its volumes")]
    DeleteCluster,
}

impl Action {
    fn describe(self) -> &'static str {
        match self {
            Action::UninstallRelease => "uninstall release",
            Action::DeleteVolumeClaim => "delete volume claim",
            Action::DeleteSecret => "delete Secret",
            Action::DeleteNamespace => "delete namespace",
            Action::HibernateCluster => "hibernate cluster",
            Action::DeleteCluster => "delete cluster and its volumes",
        }
    }

    /// The object `kubectl delete` removes for this step (the release goes through helm).
    fn object(self, target: &str) -> Option<String> {
        match self {
            Action::UninstallRelease | Action::HibernateCluster => None,
            Action::DeleteCluster => Some(format!("{}/{target}", cnpg::CRD)),
            Action::DeleteVolumeClaim => Some(format!("pvc/{target}")),
            Action::DeleteSecret => Some(format!("secret/{target}")),
            Action::DeleteNamespace => Some(format!("namespace/{target}")),
        }
    }
}

impl Step {
    fn new(action: Action, target: &str) -> Step {
        Step {
            action,
            target: target.to_string(),
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} {}", self.action.describe(), self.target)
    }
}

/// Whether `--delete-namespace` may delete the namespace: only one pgk8s created, unless
/// `--force`; false when there is none.
fn namespace_deletable(
    config: &Config,
    namespace: &NamespaceView,
    force: bool,
) -> Result<bool, Failure> {
    let refused = |why: &str| {
        Failure::new(
            ExitCode::Refused,
            format!(
                "namespace {} {why}; refusing to delete it",
                config.namespace
            ),
        )
    };
    match namespace {
        NamespaceView::Missing => Ok(false),
        NamespaceView::Present(object)
            if object.label(MANAGED_BY_LABEL) == Some(MANAGED_BY_VALUE) || force =>
        {
            Ok(true)
        }
        NamespaceView::Present(_) => Err(refused("was not created by pgk8s")
            .hint("other workloads may live there: delete it yourself, or add --force")),
        NamespaceView::Hidden => Err(refused("cannot be read with these credentials")
            .hint("ask whoever manages the namespace to delete it")),
    }
}

impl Report for UndeployReport {
    fn render(&self, text: &mut Text) {
        let lead = if self.dry_run {
            "Dry run, nothing was changed. Would run"
        } else {
            "Ran"
        };
        if !self.release_found && self.steps.is_empty() {
            text.line(format!(
                "Release {} is not installed in namespace {}: nothing to uninstall.",
                self.release, self.namespace
            ));
        } else {
            text.line(format!(
                "{lead} {} step(s) for release {} in {}:",
                self.steps.len(),
                self.release,
                self.namespace
            ));
        }
        for step in &self.steps {
            let state = if self.dry_run {
                CheckState::Skipped
            } else {
                CheckState::Ok
            };
            text.check(state, step.to_string());
        }
        for kept in &self.kept {
            text.line(format!("  kept: {kept}"));
        }
    }
}

/// Runs `pgk8s undeploy`.
pub async fn run(args: &UndeployArgs, config: &Config) -> anyhow::Result<Outcome> {
    let kube = config.kube();
    let helm = config.helm();
    let names = Names::new(&config.release, Topology::Standalone);
    let secret_ref = format!("secret/{}", names.secret);
    let secret_refs = [secret_ref.as_str()];
    let (release, claims, secret, namespace) = tokio::join!(
        helm.status(&config.release),
        list_data_claims(&kube, &config.release),
        kube.get(&secret_refs),
        kube.namespace_view()
    );
    let release = release.context("reading the release")?;
    let mut claims: Vec<String> = claims
        .context("listing volume claims")?
        .into_iter()
        .map(|claim| claim.name)
        .collect();
    // No chart release: perhaps a CloudNativePG cluster (one more call, only then).
    let cluster = match release {
        Some(_) => None,
        None => cnpg_cluster::find_cluster(&kube, &config.release).await?,
    };
    if cluster.is_some() {
        claims = kube
            .get_labelled("pvc", &cnpg::cluster_selector(&config.release))
            .await?
            .into_iter()
            .map(|claim| claim.metadata.name)
            .collect();
    }
    let managed = |object: &Object| object.label(MANAGED_BY_LABEL) == Some(MANAGED_BY_VALUE);
    let secret = secret.context("reading the Secret")?.into_iter().next();
    let namespace = namespace.context("reading the namespace")?;
    let namespace_goes =
        args.delete_namespace && namespace_deletable(config, &namespace, args.force)?;
    let mut steps = Vec::new();
    let mut kept = Vec::new();
    if release.is_some() {
        steps.push(Step::new(Action::UninstallRelease, config.release.as_str()));
    }
    let hibernated = cluster
        .as_ref()
        .is_some_and(|cluster| cnpg::ClusterState::of(cluster).hibernating);
    match &cluster {
        // The operator deletes a cluster's volumes with it: keeping the data means stopping
        // every instance instead.
        Some(_) if args.delete_pvc || namespace_goes => {
            steps.push(Step::new(Action::DeleteCluster, config.release.as_str()));
        }
        Some(_) if !hibernated => {
            steps.push(Step::new(Action::HibernateCluster, config.release.as_str()));
        }
        _ => {}
    }
    if cluster.is_some() && !(args.delete_pvc || namespace_goes) {
        kept.push(format!(
            "cluster {} (hibernated: no instance runs, volumes {} keep the data; deploy --engine cnpg resumes it, --delete-pvc deletes it)",
            config.release,
            claims.join(", ")
        ));
        if secret.is_some() {
            kept.push(format!(
                "Secret {} (its password matches the kept data)",
                names.secret
            ));
        }
    } else if cluster.is_some() {
        if secret
            .as_ref()
            .is_some_and(|secret| managed(secret) || namespace_goes)
        {
            steps.push(Step::new(Action::DeleteSecret, &names.secret));
        }
    } else if args.delete_pvc || namespace_goes {
        // Deleting the namespace deletes the claims and the Secret in it too: list them.
        steps.extend(
            claims
                .iter()
                .map(|claim| Step::new(Action::DeleteVolumeClaim, claim)),
        );
        if secret
            .as_ref()
            .is_some_and(|secret| managed(secret) || namespace_goes)
        {
            steps.push(Step::new(Action::DeleteSecret, &names.secret));
        }
    } else {
        kept.extend(
            claims
                .iter()
                .map(|claim| format!("volume claim {claim} (delete with --delete-pvc)")),
        );
        if secret.is_some() {
            kept.push(format!(
                "Secret {} (its passwords match the kept data)",
                names.secret
            ));
        }
    }
    if namespace_goes {
        steps.push(Step::new(
            Action::DeleteNamespace,
            config.namespace.as_str(),
        ));
    } else if args.delete_namespace {
        kept.push(format!("namespace {} does not exist", config.namespace));
    }
    let report = |dry_run| UndeployReport {
        dry_run,
        release: config.release.to_string(),
        namespace: config.namespace.to_string(),
        release_found: release.is_some() || cluster.is_some(),
        steps: Vec::new(),
        kept: kept.clone(),
    };
    if args.dry_run {
        return Ok(Outcome::success(&UndeployReport {
            steps,
            ..report(true)
        }));
    }
    let destructive: Vec<String> = steps
        .iter()
        .filter(|step| {
            !matches!(
                step.action,
                Action::UninstallRelease | Action::HibernateCluster
            )
        })
        .map(Step::to_string)
        .collect();
    if !destructive.is_empty() {
        config.confirm(&format!(
            "{} (all data in them is lost)",
            destructive.join(", ")
        ))?;
    }
    for step in &steps {
        tracing::info!("{step}");
        match step.action.object(&step.target) {
            None if step.action == Action::HibernateCluster => {
                cnpg_cluster::hibernate(config, &kube).await?;
            }
            None => {
                helm.uninstall(&config.release, config.timeout)
                    .await
                    .context("helm uninstall failed")?;
            }
            Some(object) => kube.delete(&[&object], config.timeout).await?,
        }
    }
    Ok(Outcome::success(&UndeployReport {
        steps,
        ..report(false)
    }))
}

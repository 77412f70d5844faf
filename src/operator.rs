//! The CloudNativePG operator: is it there (its CRD, its Deployment), and installing it from its
//! pinned chart into `cnpg-system` with helm, idempotently.

use std::time::Duration;

use crate::cnpg;
use crate::config::Config;
use crate::helm::{Helm, UpgradeRequest};
use crate::kube::{Kube, is_forbidden};
use crate::names::Namespace;

/// What the cluster says about the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorState {
    /// Whether `clusters.postgresql.cnpg.io` is installed; None when the credentials may not
    /// read CRDs (then only trying tells).
    pub crd: Option<bool>,
    /// Ready replicas of the operator's Deployment (None: no such Deployment, or not readable).
    pub ready_replicas: Option<u64>,
    /// The operator version its Deployment runs.
    pub version: Option<String>,
    /// The chart version of the `cnpg` helm release, if pgk8s (or anyone) installed it so.
    pub chart: Option<String>,
}

impl OperatorState {
    /// Whether Clusters can be created and will be reconciled.
    pub fn running(&self) -> bool {
        self.crd != Some(false) && self.ready_replicas.is_some_and(|ready| ready > 0)
    }
}

fn operator_namespace() -> Namespace {
    cnpg::OPERATOR_NAMESPACE
        .parse()
        .unwrap_or_else(|_| unreachable!("cnpg-system is a valid namespace"))
}

/// kubectl and helm in the operator's namespace.
fn tools(config: &Config) -> (Kube, Helm) {
    (
        Kube::new(config.access.clone(), operator_namespace()),
        Helm::new(config.access.clone(), operator_namespace()),
    )
}

/// Reads the CRD, the Deployment and the helm release, concurrently (three calls).
pub async fn state(config: &Config) -> anyhow::Result<OperatorState> {
    let (kube, helm) = tools(config);
    let crd_ref = format!("crd/{}", cnpg::CRD);
    let deployment_ref = format!("deployment/{}", cnpg::OPERATOR_DEPLOYMENT);
    let release: crate::names::ReleaseName = cnpg::OPERATOR_RELEASE
        .parse()
        .unwrap_or_else(|_| unreachable!("cnpg is a valid release name"));
    let (crd_refs, deployment_refs) = ([crd_ref.as_str()], [deployment_ref.as_str()]);
    let (crd, deployment, status) = tokio::join!(
        kube.get(&crd_refs),
        kube.get(&deployment_refs),
        helm.status(&release),
    );
    let crd = match crd {
        Ok(found) => Some(!found.is_empty()),
        Err(error) if is_forbidden(&error) => None,
        Err(error) => return Err(error),
    };
    let deployment = match deployment {
        Ok(found) => found.into_iter().next(),
        Err(error) if is_forbidden(&error) => None,
        Err(error) => return Err(error),
    };
    let version = deployment.as_ref().and_then(|deployment| {
        deployment
            .label("app.kubernetes.io/version")
            .map(str::to_string)
    });
    Ok(OperatorState {
        crd,
        ready_replicas: deployment
            .as_ref()
            .map(|deployment| deployment.status["readyReplicas"].as_u64().unwrap_or(0)),
        version,
        chart: status
            .ok()
            .flatten()
            .and_then(|release| release.chart_version().map(str::to_string)),
    })
}

/// `helm upgrade --install cnpg <chart> --version <pinned> -n cnpg-system --create-namespace
/// --wait`: installs the operator, or leaves it as it is when that version runs already.
pub async fn install(config: &Config, timeout: Duration) -> anyhow::Result<Option<u64>> {
    let (_, helm) = tools(config);
    let request = UpgradeRequest {
        release: cnpg::OPERATOR_RELEASE
            .parse()
            .unwrap_or_else(|_| unreachable!("cnpg is a valid release name")),
        namespace: operator_namespace(),
        chart: cnpg::OPERATOR_CHART.to_string(),
        chart_version: cnpg::OPERATOR_CHART_VERSION.to_string(),
        timeout: crate::deadline::cap(timeout),
        create_namespace: true,
    };
    crate::deadline::step("installing the CloudNativePG operator");
    let major = helm.major().await?;
    let captured = helm.upgrade_install(major, &request, String::new()).await?;
    Ok(captured
        .stdout_text()
        .lines()
        .find_map(|line| line.strip_prefix("REVISION:"))
        .and_then(|revision| revision.trim().parse().ok()))
}

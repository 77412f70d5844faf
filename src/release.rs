//! The database under `-n/-r`: which objects belong to the release and where its primary runs.
//!
//! A release's objects are selected by its labels (`app.kubernetes.io/instance=<release>`,
//! `app.kubernetes.io/name=postgresql`) and, for data volumes, by the exact names its
//! StatefulSets give them — never by a name prefix, because `postgresql` is a prefix of
//! `postgresql-test`, a neighbour's release in the same namespace. Commands ask this module;
//! none of them lists or filters a release's objects itself.

use anyhow::Context as _;

use crate::chart::{self, COMPONENT_LABEL, Names, Topology, release_selector};
use crate::diagnose::ReleaseState;
use crate::error::{ExitCode, Failure};
use crate::helm::Helm;
use crate::kube::{Kube, Object};
use crate::names::ReleaseName;

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
}

/// Finds the release's primary pod by its labels (one `kubectl get pods -l …`).
pub async fn find_primary(kube: &Kube, release: &ReleaseName) -> anyhow::Result<Primary> {
    let selector = format!("{},{COMPONENT_LABEL}=primary", release_selector(release));
    let pods = kube.get_labelled("pods", &selector).await?;
    let pod = pods.into_iter().next().ok_or_else(|| {
        no_pod(
            release,
            kube.namespace().as_str(),
            "no pod carries the primary's labels",
        )
    })?;
    Ok(Primary {
        secret: mounted_secret(&pod),
        pod: pod.metadata.name,
    })
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

/// Finds the release's primary service and pod in one `kubectl get services,pods -l …`.
pub async fn find_endpoints(kube: &Kube, release: &ReleaseName) -> anyhow::Result<Endpoints> {
    let selector = format!("{},{COMPONENT_LABEL}=primary", release_selector(release));
    let objects = kube.get_labelled("services,pods", &selector).await?;
    let service = objects
        .iter()
        .find(|object| object.kind == "Service" && object.spec["clusterIP"] != "None")
        .map(|service| service.metadata.name.clone())
        .ok_or_else(|| {
            Failure::new(
                ExitCode::General,
                format!(
                    "release {release} has no service in namespace {}",
                    kube.namespace()
                ),
            )
            .hint(format!(
                "deploy it with `pgk8s deploy -n {}`, or check -n/--release",
                kube.namespace()
            ))
        })?;
    let primary = objects
        .iter()
        .find(|object| object.kind == "Pod")
        .map(|pod| Primary {
            pod: pod.metadata.name.clone(),
            secret: mounted_secret(pod),
        });
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
            Failure::new(
                ExitCode::General,
                format!("Secret {name} not found in namespace {}", kube.namespace()),
            )
            .hint("the credentials Secret is created by `pgk8s deploy` (or named with --password-from-secret)")
            .into()
        })
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
    let state = ReleaseState::from_objects(&objects, release);
    let primary = objects
        .iter()
        .find(|object| {
            object.kind == "Pod"
                && owns(release, object)
                && object.label(COMPONENT_LABEL) == Some("primary")
        })
        .map(|pod| Primary {
            pod: pod.metadata.name.clone(),
            secret: mounted_secret(pod),
        });
    Ok(Observation {
        release: status,
        state,
        primary,
    })
}

/// The failure when the release has no PostgreSQL pod (exit 8).
pub fn no_pod(release: &ReleaseName, namespace: &str, detail: &str) -> Failure {
    Failure::new(
        ExitCode::DatabaseUnreachable,
        format!(
            "database connection failed: release {release} has no PostgreSQL pod in namespace {namespace} ({detail})"
        ),
    )
    .hint(format!(
        "deploy it with `pgk8s deploy -n {namespace}`, or check -n/--release"
    ))
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

//! Pre-flight checks of a deploy, all at once: kubectl new enough and the API answering, helm 3 or
//! 4, the namespace, the credentials Secret, the release's kept volumes, a usable StorageClass,
//! and the release itself. The most fundamental failure is reported first (tools, then cluster).

use anyhow::Context as _;

use crate::chart::release_selector;
use crate::error::{ExitCode, Failure};
use crate::helm::{Helm, HelmMajor, ReleaseStatus};
use crate::kube::{Kube, NamespaceView, Object, is_forbidden};
use crate::names::{ObjectName, ReleaseName};
use crate::release::{DataClaim, data_claims, owns};

/// What a deploy is about to act on.
pub struct Target<'a> {
    /// The release.
    pub release: &'a ReleaseName,
    /// The credentials Secret it will use.
    pub secret: &'a str,
    /// `--storage-class`, or None for the cluster's default.
    pub storage_class: Option<&'a ObjectName>,
}

/// What the pre-flight checks learned about the cluster.
pub struct Facts {
    /// The helm major found.
    pub helm_major: HelmMajor,
    /// The namespace, as far as the credentials can see it.
    pub namespace: NamespaceView,
    /// The credentials Secret, if it exists.
    pub secret: Option<Object>,
    /// The release's data volume claims, kept from an earlier install or in use now.
    pub claims: Vec<DataClaim>,
    /// How many StatefulSets of the release exist (none after a resize or an upgrade was cut
    /// short between replacing them and helm creating them again).
    pub statefulsets: usize,
    /// The release, if installed.
    pub release: Option<ReleaseStatus>,
}

/// Runs every check at once; reports the most fundamental failure first (tools, then cluster).
pub async fn preflight(target: &Target<'_>, kube: &Kube, helm: &Helm) -> anyhow::Result<Facts> {
    let secret_ref = format!("secret/{}", target.secret);
    let secret_refs = [secret_ref.as_str()];
    let selector = release_selector(target.release);
    let (versions, helm_major, namespace, secret, claims, storage, release) = tokio::join!(
        kube.versions(),
        helm.major(),
        kube.namespace_view(),
        kube.get(&secret_refs),
        kube.get_labelled("pvc,statefulsets", &selector),
        storage_check(target.storage_class, kube),
        async {
            helm.status(target.release)
                .await
                .context("reading the current release")
        },
    );
    let helm_major = helm_major.context("checking helm")?;
    let versions = versions.context("checking kubectl and the cluster")?;
    tracing::debug!(
        "kubectl {}, server {}, helm {helm_major:?}",
        versions.client_text,
        versions.server_text
    );
    let namespace = namespace.context("reading the namespace")?;
    let secret = secret.context("reading the credentials Secret")?;
    let objects = claims.context("listing the release's data volumes")?;
    let claims = data_claims(target.release, &objects);
    let statefulsets = objects
        .iter()
        .filter(|object| object.kind == "StatefulSet" && owns(target.release, object))
        .count();
    storage?;
    let release = release?;
    Ok(Facts {
        helm_major,
        namespace,
        secret: secret.into_iter().next(),
        claims,
        statefulsets,
        release,
    })
}

/// A default StorageClass exists, or the one named with --storage-class does.
async fn storage_check(storage_class: Option<&ObjectName>, kube: &Kube) -> anyhow::Result<()> {
    let classes = match kube.get(&["storageclasses"]).await {
        Ok(classes) => classes,
        // Namespace-scoped credentials often may not list cluster-scoped StorageClasses; the
        // claim will say soon enough if there is no class to bind it.
        Err(error) if is_forbidden(&error) => {
            tracing::warn!("cannot list StorageClasses (forbidden); skipping that check");
            return Ok(());
        }
        Err(error) => return Err(error.context("listing StorageClasses")),
    };
    let names = || {
        classes
            .iter()
            .map(|class| class.metadata.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match storage_class {
        Some(wanted)
            if !classes
                .iter()
                .any(|class| class.metadata.name == wanted.as_str()) =>
        {
            Err(Failure::new(
                ExitCode::InsufficientResources,
                format!("StorageClass {wanted} does not exist"),
            )
            .hint(format!("pass one of: {}", names()))
            .into())
        }
        Some(_) => Ok(()),
        None => {
            let default_exists = classes.iter().any(|class| {
                [
                    "storageclass.kubernetes.io/is-default-class",
                    "storageclass.beta.kubernetes.io/is-default-class",
                ]
                .iter()
                .any(|annotation| {
                    class
                        .metadata
                        .annotations
                        .get(*annotation)
                        .map(String::as_str)
                        == Some("true")
                })
            });
            if default_exists {
                Ok(())
            } else {
                Err(Failure::new(ExitCode::InsufficientResources, "the cluster has no default StorageClass")
                    .hint(if classes.is_empty() {
                        "install a provisioner (e.g. local-path-provisioner) or create a StorageClass, then pass --storage-class".to_string()
                    } else {
                        format!("pass --storage-class with one of: {}", names())
                    })
                    .into())
            }
        }
    }
}

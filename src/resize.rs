//! Growing a release's data volumes in place.
//!
//! The chart keeps the volume size in the StatefulSet's `volumeClaimTemplates`, which the API
//! server refuses to change, so `helm upgrade` with a bigger size fails. The way through, as a
//! careful operator does it by hand: grow each claim (its StorageClass must allow expansion),
//! wait until the volume reports the new capacity, delete the StatefulSet with
//! `--cascade=orphan` (its pods keep running, its claims stay), and let `helm upgrade` create it
//! again with the new size — it adopts the running pods, which are not restarted because their
//! template did not change.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chart::release_selector;
use crate::error::{ExitCode, Failure};
use crate::kube::{Kube, Object};
use crate::names::{Quantity, ReleaseName};
use crate::poll::Poll;
use crate::release::data_claims;

/// How often the wait looks at the claims' capacity.
const CAPACITY_POLL: Duration = Duration::from_secs(2);

/// A data volume of the release, as its claim describes it.
#[derive(Clone, Debug)]
pub struct Volume {
    /// The claim's name.
    pub name: String,
    /// Its StorageClass (None: the cluster's default).
    pub class: Option<String>,
    /// The size it requests.
    pub requested: String,
    /// The size the volume has, once bound.
    pub capacity: Option<String>,
    /// Whether the file system still has to grow (`FileSystemResizePending`).
    pub resize_pending: bool,
}

impl Volume {
    fn of(claim: &Object) -> Volume {
        Volume {
            name: claim.metadata.name.clone(),
            class: claim.spec["storageClassName"].as_str().map(str::to_string),
            requested: claim.spec["resources"]["requests"]["storage"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            capacity: claim.status["capacity"]["storage"]
                .as_str()
                .map(str::to_string),
            resize_pending: claim.status["conditions"]
                .as_array()
                .is_some_and(|conditions| {
                    conditions.iter().any(|condition| {
                        condition["type"] == "FileSystemResizePending"
                            && condition["status"] == "True"
                    })
                }),
        }
    }

    /// Whether the volume already has (at least) `size`.
    pub fn has(&self, size: &Quantity) -> bool {
        self.capacity
            .as_deref()
            .and_then(|capacity| capacity.parse::<Quantity>().ok())
            .is_some_and(|capacity| capacity.amount() >= size.amount())
    }

    fn requests_at_least(&self, size: &Quantity) -> bool {
        self.requested
            .parse::<Quantity>()
            .is_ok_and(|requested| requested.amount() >= size.amount())
    }
}

/// The release's data volumes with their sizes and classes (one `kubectl get pvc -l …`).
pub async fn volumes(kube: &Kube, release: &ReleaseName) -> anyhow::Result<Vec<Volume>> {
    let objects = kube.get_labelled("pvc", &release_selector(release)).await?;
    let owned: Vec<String> = data_claims(release, &objects)
        .into_iter()
        .map(|claim| claim.name)
        .collect();
    Ok(objects
        .iter()
        .filter(|claim| owned.contains(&claim.metadata.name))
        .map(Volume::of)
        .collect())
}

/// The volumes among `volumes` that the release's pods mount: the primary's claim (the one a
/// major upgrade moved it to, if any) and the read replicas'. A volume an upgrade left behind
/// keeps its size.
pub fn mounted(volumes: Vec<Volume>, values: &Value, names: &crate::chart::Names) -> Vec<Volume> {
    let primary = crate::chart::existing_claim(values).unwrap_or_else(|| names.primary_pvc.clone());
    let replicas = format!("data-{}-read-", names.fullname);
    volumes
        .into_iter()
        .filter(|volume| {
            volume.name == primary
                || volume
                    .name
                    .strip_prefix(&replicas)
                    .is_some_and(|ordinal| ordinal.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// The volumes that do not have `size` yet: those about to grow, and those an earlier run
/// asked to grow whose capacity has not followed.
pub fn short_of(volumes: &[Volume], size: &Quantity) -> Vec<Volume> {
    volumes
        .iter()
        .filter(|volume| !volume.has(size))
        .cloned()
        .collect()
}

/// The volumes that must grow to reach `size`. Refuses a shrink (64: a volume can only grow)
/// and a class that cannot expand (6, naming the class).
///
/// `classes` is None when the credentials may not list StorageClasses: the check is left to the
/// API server, which refuses the patch with its own message.
pub fn to_grow(
    volumes: &[Volume],
    size: &Quantity,
    classes: Option<&[Object]>,
) -> Result<Vec<Volume>, Failure> {
    if let Some(larger) = volumes.iter().find(|volume| {
        volume
            .requested
            .parse::<Quantity>()
            .is_ok_and(|requested| requested.amount() > size.amount())
    }) {
        return Err(Failure::usage(format!(
            "volume {} is {}: volumes can only grow, not shrink to {size}",
            larger.name, larger.requested
        ))
        .hint("pass a --storage-size at least as large as the current one; to shrink, move the data: pgk8s backup, deploy a new release, pgk8s restore"));
    }
    let growing: Vec<Volume> = volumes
        .iter()
        .filter(|volume| !volume.requests_at_least(size))
        .cloned()
        .collect();
    let Some(classes) = classes else {
        return Ok(growing);
    };
    for volume in &growing {
        let class = class_of(volume, classes);
        let expandable = class.is_some_and(|class| class.allow_volume_expansion == Some(true));
        if !expandable {
            let name = class.map_or_else(
                || {
                    volume
                        .class
                        .clone()
                        .unwrap_or_else(|| "(default)".to_string())
                },
                |class| class.metadata.name.clone(),
            );
            return Err(Failure::new(
                ExitCode::InsufficientResources,
                format!(
                    "volume {} cannot grow: its StorageClass {name} does not allow volume expansion",
                    volume.name
                ),
            )
            .hint(format!(
                "ask your cluster admin to set allowVolumeExpansion: true on StorageClass {name} (if its provisioner supports it), or move the data to a release on a class that does: pgk8s backup, deploy with --storage-class, pgk8s restore"
            )));
        }
    }
    Ok(growing)
}

/// The StorageClass a volume uses: its own, or the cluster's default.
fn class_of<'a>(volume: &Volume, classes: &'a [Object]) -> Option<&'a Object> {
    match &volume.class {
        Some(name) => classes.iter().find(|class| &class.metadata.name == name),
        None => classes.iter().find(|class| {
            class
                .metadata
                .annotations
                .get("storageclass.kubernetes.io/is-default-class")
                .is_some_and(|value| value == "true")
        }),
    }
}

/// Asks for `size` on each volume (`kubectl patch pvc … --type merge`).
pub async fn grow(kube: &Kube, volumes: &[Volume], size: &Quantity) -> anyhow::Result<()> {
    let patch = json!({ "spec": { "resources": { "requests": { "storage": size.as_str() } } } });
    for volume in volumes {
        tracing::info!("growing volume {} to {size}", volume.name);
        kube.patch_merge(&format!("pvc/{}", volume.name), &patch)
            .await?;
    }
    Ok(())
}

/// Waits until every volume named in `grown` reports `size` as its capacity.
pub async fn wait_grown(
    kube: &Kube,
    release: &ReleaseName,
    grown: &[Volume],
    size: &Quantity,
    limit: Duration,
) -> anyhow::Result<()> {
    crate::deadline::step("waiting for the volumes to grow");
    let mut poll = Poll::new(
        limit,
        CAPACITY_POLL,
        "the volumes have not reached their new size yet",
    );
    loop {
        let now = volumes(kube, release).await?;
        let waiting: Vec<&Volume> = now
            .iter()
            .filter(|volume| grown.iter().any(|grown| grown.name == volume.name))
            .filter(|volume| !volume.has(size))
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        if waiting.iter().any(|volume| volume.resize_pending) {
            tracing::info!(
                "waiting for the file system resize (the node finishes it, usually when the pod restarts or within a minute)"
            );
        }
        if !poll.again().await {
            let names: Vec<&str> = waiting.iter().map(|volume| volume.name.as_str()).collect();
            return Err(Failure::new(
                ExitCode::Timeout,
                format!(
                    "volume(s) {} did not reach {size} in time",
                    names.join(", ")
                ),
            )
            .hint("see `kubectl describe pvc` for the resize's events; run pgk8s resize again to continue")
            .into());
        }
    }
}

/// Deletes the release's StatefulSets but not their pods or claims (`--cascade=orphan`), so that
/// `helm upgrade` can create them again with a different volume template.
pub async fn orphan_statefulsets(
    kube: &Kube,
    release: &ReleaseName,
    timeout: Duration,
) -> anyhow::Result<()> {
    let selector = release_selector(release);
    tracing::info!("replacing the StatefulSets of {release}: pods keep running, volumes stay");
    kube.delete_orphaning(&["statefulsets", "-l", &selector], timeout)
        .await
}

/// `values` with every data volume's size set to `size` (primary, and read replicas if any).
pub fn with_size(values: &Value, size: &Quantity) -> Value {
    let mut values = values.clone();
    values["primary"]["persistence"]["size"] = json!(size.as_str());
    if values["architecture"] == "replication" {
        values["readReplicas"]["persistence"]["size"] = json!(size.as_str());
    }
    values
}

/// The volume size a release's values ask for (the chart's default 8Gi when unset).
pub fn size_of(values: &Value) -> String {
    values["primary"]["persistence"]["size"]
        .as_str()
        .unwrap_or(crate::chart::DEFAULT_STORAGE_SIZE)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(name: &str, class: Option<&str>, requested: &str) -> Volume {
        Volume {
            name: name.to_string(),
            class: class.map(str::to_string),
            requested: requested.to_string(),
            capacity: Some(requested.to_string()),
            resize_pending: false,
        }
    }

    fn classes() -> Vec<Object> {
        crate::kube::parse_objects(
            br#"{"items":[
              {"kind":"StorageClass","metadata":{"name":"standard","annotations":{"storageclass.kubernetes.io/is-default-class":"true"}}},
              {"kind":"StorageClass","metadata":{"name":"expandable"},"allowVolumeExpansion":true}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn only_expandable_classes_grow_and_nothing_shrinks() {
        let size: Quantity = "20Gi".parse().unwrap();
        let grow = to_grow(
            &[volume("data-a-0", Some("expandable"), "8Gi")],
            &size,
            Some(&classes()),
        )
        .unwrap();
        assert_eq!(grow.len(), 1);
        let fixed =
            to_grow(&[volume("data-a-0", None, "8Gi")], &size, Some(&classes())).unwrap_err();
        assert_eq!(fixed.code, ExitCode::InsufficientResources);
        assert!(
            fixed.message.contains("StorageClass standard"),
            "{}",
            fixed.message
        );
        let shrink = to_grow(
            &[volume("data-a-0", Some("expandable"), "50Gi")],
            &size,
            Some(&classes()),
        )
        .unwrap_err();
        assert_eq!(shrink.code, ExitCode::Usage);
        let same = to_grow(&[volume("data-a-0", None, "20Gi")], &size, Some(&classes())).unwrap();
        assert!(
            same.is_empty(),
            "a volume of the size asked for needs nothing"
        );
    }
}

//! A CloudNativePG cluster in the release's namespace, as the commands meet it: finding it
//! (without paying for it on a cluster of the chart), waiting until the operator says every
//! instance is ready (and saying why not), and a planned switchover.

use std::time::Duration;

use crate::cnpg::{self, ClusterState};
use crate::config::Config;
use crate::diagnose::ReleaseState;
use crate::error::{ExitCode, Failure};
use crate::kube::{Kube, Object};
use crate::names::ReleaseName;
use crate::poll::Poll;

/// How often a wait reads the cluster.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The cluster named `release`, if there is one: None too when the CRD is not installed (then
/// no cluster can exist), so a cluster of the chart's pays no more than this one call.
pub async fn find_cluster(kube: &Kube, release: &ReleaseName) -> anyhow::Result<Option<Object>> {
    match kube.get(&[cnpg::cluster_ref(release).as_str()]).await {
        Ok(found) => Ok(found.into_iter().find(|object| object.kind == "Cluster")),
        Err(error) if crd_missing(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Refuses (9) a CloudNativePG cluster named `name` where the chart's objects would meet it:
/// a helm release of that name, its kept data volumes, or a pod of the chart's with the name
/// other commands try first for `name` (a release `app-postgresql` beside a cluster `app`).
/// Each engine alone keeps its names apart; together only this check does.
pub async fn refuse_chart_neighbour(
    kube: &Kube,
    helm: &crate::helm::Helm,
    name: &ReleaseName,
) -> anyhow::Result<()> {
    let guess = crate::chart::Names::new(name, crate::chart::Topology::Standalone).primary_pod;
    let guess_ref = format!("pod/{guess}");
    let guess_refs = [guess_ref.as_str()];
    let (release, claims, pod) = tokio::join!(
        helm.status(name),
        crate::release::list_data_claims(kube, name),
        kube.get(&guess_refs),
    );
    let undeploy = format!(
        "undeploy it (`pgk8s undeploy -r {name}`; its volumes are kept), or use `pgk8s move --to cnpg` to copy its data into a cluster of another name"
    );
    if release?.is_some() {
        return Err(Failure::new(
            ExitCode::Refused,
            format!("release {name} of the Bitnami chart exists: a CloudNativePG cluster of the same name would run beside it, and commands could reach either"),
        )
        .hint(undeploy)
        .into());
    }
    if let Some(claim) = claims?.first() {
        return Err(Failure::new(
            ExitCode::Refused,
            format!("volume {} keeps the data of Bitnami release {name}: a CloudNativePG cluster of that name would start empty beside it", claim.name),
        )
        .hint(format!("deploy the Bitnami release again to get the data back (then `pgk8s move --to cnpg`), or pick another name; delete the volume only if its data is no longer needed (`kubectl delete pvc {}`)", claim.name))
        .into());
    }
    if let Some(pod) = pod?
        .iter()
        .find(|pod| pod.label(cnpg::CLUSTER_LABEL) != Some(name.as_str()))
    {
        let owner = pod
            .label(crate::chart::INSTANCE_LABEL)
            .unwrap_or("another release");
        return Err(Failure::new(
            ExitCode::Refused,
            format!("pod {guess} of {owner} has the name pgk8s tries first for {name}: commands for cluster {name} could reach that database"),
        )
        .hint("pick another name for the cluster (-r/--target)")
        .into());
    }
    Ok(())
}

/// Whether kubectl failed because the API server does not know the `Cluster` kind.
pub fn crd_missing(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let text = cause.to_string();
        text.contains("doesn't have a resource type") || text.contains("no matches for kind")
    })
}

/// A cluster's pods (its instances and its jobs' pods: an initdb or import job that cannot
/// start is where a new cluster's trouble shows), its volumes and the warnings about them.
fn cluster_state(objects: &[Object], release: &ReleaseName) -> ReleaseState {
    let ours = |object: &&Object| object.label(cnpg::CLUSTER_LABEL) == Some(release.as_str());
    let pods: Vec<&Object> = objects
        .iter()
        .filter(|object| object.kind == "Pod")
        .filter(ours)
        .collect();
    let claims: Vec<&Object> = objects
        .iter()
        .filter(|object| object.kind == "PersistentVolumeClaim")
        .filter(ours)
        .collect();
    let names: Vec<&str> = pods
        .iter()
        .chain(&claims)
        .map(|object| object.metadata.name.as_str())
        .collect();
    let warnings = objects
        .iter()
        .filter(|object| object.kind == "Event" && object.type_name.as_deref() == Some("Warning"))
        .filter_map(|event| {
            let about = event.involved_object.as_ref()?.name.as_str();
            names.contains(&about).then(|| {
                format!(
                    "{about}: {}: {}",
                    event.reason.as_deref().unwrap_or("Warning"),
                    event.message.as_deref().unwrap_or_default()
                )
            })
        })
        .collect();
    ReleaseState::of_owned(pods, claims, warnings)
}

/// Waits until every instance is ready and the operator says the cluster is healthy; on the
/// deadline, says why not: the cluster's phase, and the first problem of its pods or volumes.
pub async fn wait_ready(
    config: &Config,
    kube: &Kube,
    instances: u8,
) -> anyhow::Result<ClusterState> {
    crate::deadline::step("waiting for the CloudNativePG cluster");
    let mut progress = crate::progress::Progress::start(&format!(
        "waiting for {} instance(s) of {}",
        instances, config.release
    ));
    let cluster_ref = cnpg::cluster_ref(&config.release);
    let cluster_refs = [cluster_ref.as_str()];
    let mut poll = Poll::new(
        config.timeout,
        POLL_INTERVAL,
        "the cluster is not ready yet",
    );
    loop {
        let (cluster, others) =
            tokio::join!(kube.get(&cluster_refs), kube.get(&["pods,pvc,events"]));
        let mut objects = cluster?;
        objects.extend(others?);
        let state = objects
            .iter()
            .find(|object| object.kind == "Cluster")
            .map(ClusterState::of);
        if let Some(state) = &state {
            progress.update(&format!("{}: {}", config.release, state.summary()));
            if state.healthy() && state.ready >= u32::from(instances) {
                return Ok(state.clone());
            }
            if state.phase == cnpg::UNRECOVERABLE_PHASE {
                return Err(Failure::new(
                    ExitCode::General,
                    format!(
                        "CloudNativePG gave up on cluster {}: {}",
                        config.release, state.reason
                    ),
                )
                .hint(format!(
                    "read the job's log (`kubectl logs -n {} job/{}-1-initdb`); then delete the cluster (`pgk8s undeploy --delete-pvc --yes`) and deploy again",
                    config.namespace, config.release
                ))
                .into());
            }
        }
        if !poll.again().await {
            let pods = cluster_state(&objects, &config.release);
            let issue = pods.issues().into_iter().next();
            let summary = state.map_or("no status yet".to_string(), |state| state.summary());
            let (code, detail, hint) = match issue {
                Some(issue) => (
                    if issue.exit == ExitCode::InsufficientResources {
                        issue.exit
                    } else {
                        ExitCode::Timeout
                    },
                    format!("; {}", issue.message),
                    issue.hint,
                ),
                None => (
                    ExitCode::Timeout,
                    String::new(),
                    "try a longer --timeout; `kubectl get cluster,pods,events` shows what the operator is doing".to_string(),
                ),
            };
            return Err(Failure::new(
                code,
                format!(
                    "cluster {} not ready within {}: {summary}{detail}",
                    config.release,
                    humantime::format_duration(config.timeout)
                ),
            )
            .hint(hint)
            .into());
        }
    }
}

/// The instance `to` names: a pod name, or a bare number (`2` → `<cluster>-2`).
pub fn instance_name(release: &ReleaseName, to: &str) -> String {
    if !to.is_empty() && to.bytes().all(|b| b.is_ascii_digit()) {
        format!("{release}-{to}")
    } else {
        to.to_string()
    }
}

/// Asks the operator for a switchover to `instance`, the way `kubectl cnpg promote` does: the
/// status subresource's `targetPrimary` (with the phase the plugin sets), then waits until the
/// instance is the primary and the cluster healthy again.
pub async fn switch_over(
    config: &Config,
    kube: &Kube,
    instance: &str,
) -> anyhow::Result<ClusterState> {
    let now = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let patch = serde_json::json!({ "status": {
        "targetPrimary": instance,
        "targetPrimaryTimestamp": now,
        "phase": "Switchover in progress",
        "phaseReason": format!("Switching over to {instance}"),
    }});
    crate::deadline::step("asking the operator for the switchover");
    kube.patch_status_merge(&cnpg::cluster_ref(&config.release), &patch)
        .await?;
    crate::deadline::step("waiting for the new primary");
    let cluster_ref = cnpg::cluster_ref(&config.release);
    let refs = [cluster_ref.as_str()];
    let mut poll = Poll::new(
        config.timeout,
        POLL_INTERVAL,
        "the switchover is not done yet",
    );
    loop {
        let state = kube.get(&refs).await?.first().map(ClusterState::of);
        if let Some(state) = &state
            && state.current_primary.as_deref() == Some(instance)
            && state.healthy()
        {
            return Ok(state.clone());
        }
        if !poll.again().await {
            let summary = state.map_or("no status".to_string(), |state| {
                format!(
                    "primary {}, {}",
                    state.current_primary.as_deref().unwrap_or("?"),
                    state.summary()
                )
            });
            return Err(Failure::new(
                ExitCode::Timeout,
                format!(
                    "the switchover of cluster {} to {instance} did not finish within {}: {summary}",
                    config.release,
                    humantime::format_duration(config.timeout)
                ),
            )
            .hint("the operator may still finish it: see `kubectl get cluster` and `pgk8s verify`; if the instance is not ready, it keeps the old primary")
            .into());
        }
    }
}

/// Asks the operator to hibernate the cluster (`cnpg.io/hibernation=on`: every instance stops,
/// the volumes stay) and waits until no instance pod is left.
pub async fn hibernate(config: &Config, kube: &Kube) -> anyhow::Result<()> {
    crate::deadline::step("hibernating the cluster");
    kube.annotate(
        &cnpg::cluster_ref(&config.release),
        cnpg::HIBERNATION_ANNOTATION,
        "on",
    )
    .await?;
    let selector = cnpg::instance_selector(&config.release);
    let mut poll = Poll::new(
        config.timeout,
        POLL_INTERVAL,
        "instances of the hibernating cluster still run",
    );
    loop {
        let pods = kube.get_labelled("pods", &selector).await?;
        if pods.is_empty() {
            return Ok(());
        }
        if !poll.again().await {
            let names: Vec<&str> = pods.iter().map(|pod| pod.metadata.name.as_str()).collect();
            return Err(Failure::new(
                ExitCode::Timeout,
                format!(
                    "cluster {} is hibernating but {} still run(s)",
                    config.release,
                    names.join(", ")
                ),
            )
            .hint("the operator stops them one by one; run pgk8s undeploy again, or see `kubectl get cluster -o yaml` for its hibernation condition")
            .into());
        }
    }
}

//! `pgk8s resize --storage-size 20Gi`: every data volume of the release grows in place, and the
//! release records the new size — without restarting PostgreSQL (see [`crate::resize`]).
//!
//! Idempotent: volumes already at the size are left alone, and a release already recording it
//! is not upgraded again; a run cut short is finished by running it again.

use serde::Serialize;

use crate::chart::{Names, Topology, release_selector};
use crate::cli::ResizeArgs;
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::kube::{Object, is_forbidden};
use crate::major_upgrade::{self, Record};
use crate::output::{CheckState, Outcome, Report, Text};
use crate::release::{self, settle_pending};
use crate::resize;
use crate::rollout::{Rollout, roll_out};

#[derive(Serialize)]
struct ResizeReport {
    dry_run: bool,
    release: String,
    namespace: String,
    storage_size: String,
    steps: Vec<String>,
    volumes: Vec<VolumeChange>,
    revision: Option<u64>,
    restarted_pods: Vec<String>,
}

#[derive(Serialize)]
struct VolumeChange {
    name: String,
    from: String,
    to: String,
}

impl Report for ResizeReport {
    fn render(&self, text: &mut Text) {
        if self.steps.is_empty() {
            text.line(format!(
                "Release {} already has {} volumes: nothing to do.",
                self.release, self.storage_size
            ));
            return;
        }
        let (lead, state) = if self.dry_run {
            ("Dry run, nothing was changed. Would", CheckState::Skipped)
        } else {
            ("Resized the volumes of", CheckState::Ok)
        };
        if self.dry_run {
            text.line(format!(
                "{lead} take {} step(s) for release {} in {}:",
                self.steps.len(),
                self.release,
                self.namespace
            ));
        } else {
            text.line(format!(
                "{lead} release {} to {}; pods restarted: {}.",
                self.release,
                self.storage_size,
                if self.restarted_pods.is_empty() {
                    "none".to_string()
                } else {
                    self.restarted_pods.join(", ")
                }
            ));
        }
        for step in &self.steps {
            text.check(state, step);
        }
    }
}

/// Runs `pgk8s resize`.
pub async fn run(args: &ResizeArgs, config: &Config) -> anyhow::Result<Outcome> {
    let kube = config.kube();
    let helm = config.helm();
    let size = &args.storage_size;
    crate::deadline::step("reading the release and its volumes");
    let selector = release_selector(&config.release);
    let (release, volumes, classes, pods_before) = tokio::join!(
        helm.status(&config.release),
        resize::volumes(&kube, &config.release),
        kube.get(&["storageclasses"]),
        kube.get_labelled("pods", &selector),
    );
    let release = release?.ok_or_else(|| {
        Failure::new(
            ExitCode::General,
            format!(
                "release {} is not installed in namespace {}",
                config.release, config.namespace
            ),
        )
        .hint("resize grows the volumes of a deployed release; deploy it with the size you want instead")
    })?;
    let secret = major_upgrade::secret_of(&release.values, &config.release);
    if let Some(record) = Record::read(&release::read_secret(&kube, &secret).await?)? {
        return Err(record.refusal(&config.release).into());
    }
    let release = settle_pending(config, &helm, Some(release))
        .await?
        .ok_or_else(|| {
            Failure::new(
                ExitCode::General,
                format!(
                    "release {} was never deployed: an interrupted install was removed",
                    config.release
                ),
            )
            .hint("deploy it with the size you want")
        })?;
    let names = Names::new(&config.release, Topology::of_values(&release.values));
    // Only the volumes the release's pods mount: a major upgrade keeps the earlier majors'
    // volumes as they were.
    let volumes = resize::mounted(volumes?, &release.values, &names);
    let classes = match classes {
        Ok(classes) => Some(classes),
        Err(error) if is_forbidden(&error) => {
            tracing::warn!(
                "cannot list StorageClasses (forbidden); the API server will say whether the volumes can grow"
            );
            None
        }
        Err(error) => return Err(error),
    };
    let growing = resize::to_grow(&volumes, size, classes.as_deref())?;
    let short = resize::short_of(&volumes, size);
    let values = resize::with_size(&release.values, size);
    let record = values != release.values;
    let mut steps: Vec<String> = growing
        .iter()
        .map(|volume| {
            format!(
                "grow volume {} from {} to {size}",
                volume.name, volume.requested
            )
        })
        .collect();
    if !short.is_empty() {
        steps.push(format!("wait until the volumes report {size}"));
    }
    if record {
        steps.push(format!(
            "replace StatefulSet(s) of {} (--cascade=orphan: the pods keep running)",
            config.release
        ));
        steps.push(format!(
            "helm upgrade {} recording {size} (the pods are adopted, not restarted)",
            config.release
        ));
    }
    let mut report = ResizeReport {
        dry_run: args.dry_run,
        release: config.release.to_string(),
        namespace: config.namespace.to_string(),
        storage_size: size.to_string(),
        steps,
        volumes: growing
            .iter()
            .map(|volume| VolumeChange {
                name: volume.name.clone(),
                from: volume.requested.clone(),
                to: size.to_string(),
            })
            .collect(),
        revision: None,
        restarted_pods: Vec::new(),
    };
    if args.dry_run || report.steps.is_empty() {
        return Ok(Outcome::success(&report));
    }
    if !short.is_empty() {
        crate::deadline::step("growing the volumes");
        resize::grow(&kube, &growing, size).await?;
        resize::wait_grown(&kube, &config.release, &short, size, config.timeout).await?;
    }
    if record {
        crate::deadline::step("recording the new size in the release");
        resize::orphan_statefulsets(&kube, &config.release, config.timeout).await?;
        let request = crate::helm::UpgradeRequest {
            release: config.release.clone(),
            namespace: config.namespace.clone(),
            chart: args.chart.clone(),
            chart_version: chart_version(args, &release)?,
            timeout: config.timeout,
            create_namespace: false,
        };
        let rollout = Rollout {
            kube: &kube,
            helm: &helm,
            major: helm.major().await?,
            request: &request,
            names: &names,
        };
        report.revision = roll_out(&rollout, &values).await?;
    }
    let pods_after = kube.get_labelled("pods", &selector).await?;
    report.restarted_pods = restarted(&pods_before?, &pods_after);
    Ok(Outcome::success(&report))
}

/// `--chart-version`, or the version the release runs.
fn chart_version(
    args: &ResizeArgs,
    release: &crate::helm::ReleaseStatus,
) -> Result<String, Failure> {
    args.chart_version
        .as_deref()
        .or(release.chart_version())
        .map(str::to_string)
        .ok_or_else(|| {
            Failure::usage("cannot tell which chart version the release runs")
                .hint("pass --chart-version")
        })
}

/// The pods that were replaced or whose container restarted between two listings.
fn restarted(before: &[Object], after: &[Object]) -> Vec<String> {
    let restarts = |pod: &Object| {
        pod.status["containerStatuses"]
            .as_array()
            .map(|containers| {
                containers
                    .iter()
                    .map(|container| container["restartCount"].as_u64().unwrap_or(0))
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let identity = |pod: &Object| {
        (
            pod.metadata.name.clone(),
            pod.metadata.uid.clone(),
            restarts(pod),
        )
    };
    let earlier: Vec<_> = before.iter().map(identity).collect();
    after
        .iter()
        .map(identity)
        .filter(|now| !earlier.contains(now))
        .map(|(name, _, _)| name)
        .collect()
}

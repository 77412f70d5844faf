//! `pgk8s upgrade`: another PostgreSQL major (`--postgres-version 18`, or `--image` whose tag
//! names another major) moves the data to a new volume through a backup and a restore, compared
//! row for row before it counts as done (see [`crate::major_upgrade`]); the same major with
//! another image, or another chart version, is a helm upgrade that keeps the volume.
//!
//! An upgrade an earlier run left unfinished is rolled back first, whatever this run asks for.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;

use crate::chart::{self, Image, Names, Topology};
use crate::cli::UpgradeArgs;
use crate::config::Config;
use crate::contents::{self, Contents};
use crate::dump::{self, DumpKind};
use crate::error::{ExitCode, Failure};
use crate::health;
use crate::helm::ReleaseStatus;
use crate::major_upgrade::{self, Record, Target};
use crate::output::{CheckState, Outcome, Report, Text};
use crate::release::{self, settle_pending};
use crate::resize;

/// How long after its own deadline a run's record still counts as that run's: the time a child
/// process is given to end after the deadline.
const RECORD_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// What the upgrade does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    /// Nothing differs.
    None,
    /// The same major: a helm upgrade on the same volume (the pod restarts if its image changes).
    Rollout,
    /// Another major: backup, new volume, restore, compare.
    Move,
}

#[derive(Serialize)]
struct Side {
    postgres_major: u32,
    image: String,
    chart_version: String,
}

#[derive(Serialize)]
struct UpgradeReport {
    dry_run: bool,
    release: String,
    namespace: String,
    kind: Kind,
    from: Side,
    to: Side,
    /// An interrupted upgrade this run rolled back first (`17 -> 18`).
    rolled_back_interrupted: Option<String>,
    /// An interrupted upgrade whose data had moved and been verified, which this run finished.
    finished_interrupted: Option<String>,
    steps: Vec<String>,
    value_changes: Vec<String>,
    backup: Option<PathBuf>,
    old_volume: Option<String>,
    new_volume: Option<String>,
    tables: usize,
    rows: u64,
    migrations: usize,
    not_carried: Vec<String>,
    revision: Option<u64>,
    downtime_ms: Option<u128>,
    duration_ms: u128,
}

impl Report for UpgradeReport {
    fn render(&self, text: &mut Text) {
        if let Some(interrupted) = &self.rolled_back_interrupted {
            text.line(format!(
                "An interrupted upgrade ({interrupted}) was rolled back first."
            ));
        }
        if let Some(interrupted) = &self.finished_interrupted {
            text.line(format!(
                "An interrupted upgrade ({interrupted}) had moved and verified the data; it is finished."
            ));
        }
        if self.kind == Kind::None {
            text.line(format!(
                "Release {} already runs {} (PostgreSQL {}, chart {}): nothing to do.",
                self.release, self.to.image, self.to.postgres_major, self.to.chart_version
            ));
            return;
        }
        if self.dry_run {
            text.line(format!(
                "Dry run, nothing was changed. Would take {} step(s) for release {} in {}:",
                self.steps.len(),
                self.release,
                self.namespace
            ));
            for step in &self.steps {
                text.check(CheckState::Skipped, step);
            }
            for change in &self.value_changes {
                text.line(format!("  value {change}"));
            }
        } else {
            let downtime = self
                .downtime_ms
                .map(|ms| format!("; the database was down {:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default();
            text.line(format!(
                "Upgraded release {} from PostgreSQL {} ({}) to {} ({}){downtime}.",
                self.release,
                self.from.postgres_major,
                self.from.image,
                self.to.postgres_major,
                self.to.image
            ));
            if self.kind == Kind::Move {
                text.check(
                    CheckState::Ok,
                    format!(
                        "{} tables, {} rows and {} migrations match the source",
                        self.tables, self.rows, self.migrations
                    ),
                );
            }
        }
        if let Some(backup) = &self.backup {
            text.line(format!("  backup: {}", backup.display()));
        }
        if let (Some(old), Some(new)) = (&self.old_volume, &self.new_volume) {
            text.line(format!(
                "  data moved from volume {old} (kept, not deleted) to {new}"
            ));
        }
        for left in &self.not_carried {
            text.check(
                CheckState::Warn,
                format!("{left} is not carried (only the application database moves)"),
            );
        }
    }
}

/// Runs `pgk8s upgrade`.
pub async fn run(args: &UpgradeArgs, config: &Config) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let kube = config.kube();
    let helm = config.helm();
    crate::deadline::step("reading the release");
    let (release, helm_major) = tokio::join!(helm.status(&config.release), helm.major());
    let helm_major = helm_major?;
    let release = release?.ok_or_else(|| not_installed(config))?;
    let names = Names::new(&config.release, Topology::of_values(&release.values));
    let secret = major_upgrade::secret_of(&release.values, &config.release);
    let target = Target {
        config,
        kube: &kube,
        helm: &helm,
        helm_major,
        chart: &args.chart,
        names: &names,
        secret: &secret,
    };
    // An earlier run's record comes first: while that run may still be at work nothing is
    // touched, not even its pending helm release; a rollback is confirmed before it begins.
    let record = Record::read(&release::read_secret(&kube, &secret).await?)?;
    if let Some(record) = &record {
        if args.dry_run || record.running_until(SystemTime::now()).is_some() {
            return Err(record.refusal(&config.release).into());
        }
        if !record.verified {
            config.confirm(&format!(
                "roll back the interrupted upgrade of release {} ({} -> {}): PostgreSQL {} stops, {} runs again on its own volume, and volume {} (what the interrupted run restored) is deleted",
                config.release, record.from_major, record.to_major, record.to_major, record.from_major, record.new_claim
            ))?;
        }
    }
    let release = settle_pending(config, &helm, Some(release))
        .await?
        .ok_or_else(|| not_installed(config))?;
    let mut values = release.values.clone();
    let mut chart_version = chart_version_of(&release)?;
    let (mut rolled_back_interrupted, mut finished_interrupted) = (None, None);
    if let Some(record) = &record {
        let journey = Some(format!("{} -> {}", record.from_major, record.to_major));
        if record.verified {
            major_upgrade::clear_record(&kube, &secret).await?;
            finished_interrupted = journey;
        } else {
            target.roll_back(record, &values).await?;
            values = record.values_before(&values);
            chart_version.clone_from(&record.chart_version);
            rolled_back_interrupted = journey;
        }
    }
    let from_image = chart::image_of_values(&values);
    let to_image = match (args.postgres_version, &args.image) {
        // The major the release runs already: keep its image (and the tag it pins).
        (Some(major), _) if from_image.major() == Some(major) => from_image.clone(),
        (Some(major), _) => Image {
            tag: Some(major.to_string()),
            ..from_image.clone()
        },
        (None, Some(text)) => Image::parse(text).map_err(|message| {
            Failure::usage(message)
                .hint("pass --image REPOSITORY:TAG, e.g. bitnamilegacy/postgresql:17.6.0")
        })?,
        (None, None) => from_image.clone(),
    };
    let to_chart = args.chart_version.clone().unwrap_or(chart_version.clone());
    crate::deadline::step("reading what the database holds");
    let before = contents::contents(config).await?;
    let from_major = before.major();
    let to_major = to_image
        .major()
        .filter(|major| (12..=99).contains(major))
        .ok_or_else(|| {
            Failure::usage(format!(
                "cannot tell which PostgreSQL major image {to_image} runs"
            ))
            .hint("give a tag that starts with the major, e.g. 18 or 18.1.0-debian-12-r0")
        })?;
    if to_major < from_major {
        return Err(Failure::usage(format!(
            "release {} runs PostgreSQL {from_major}; moving down to {to_major} is not supported (pg_dump of a newer server does not restore into an older one)",
            config.release
        ))
        .hint("a volume of the earlier major that an upgrade kept still holds the data as it was then; restore a backup of that time into a new release")
        .into());
    }
    let kind = if to_major != from_major {
        Kind::Move
    } else if to_image != from_image || to_chart != chart_version {
        Kind::Rollout
    } else {
        Kind::None
    };
    if kind == Kind::Move && names.primary != names.fullname {
        return Err(Failure::usage(format!(
            "release {} has read replicas: their volumes hold PostgreSQL {from_major} data too, and a major upgrade moves the primary's only",
            config.release
        ))
        .hint("deploy with --read-replicas 0 and delete the replicas' volumes first, upgrade, then deploy with the replicas again (they copy the primary)")
        .into());
    }
    let mut new_values = chart::with_image(&values, &to_image);
    if to_image == from_image && values["image"]["tag"].is_null() && to_chart != chart_version {
        // A chart upgrade must not change the server behind the user's back: pin the tag the
        // release runs (the old chart's default).
        new_values = chart::with_image(
            &values,
            &Image {
                tag: Some(running_tag(&kube, &names).await?),
                ..from_image.clone()
            },
        );
    }
    let old_volume = chart::existing_claim(&values).unwrap_or(names.primary_pvc.clone());
    let new_volume = names.upgraded_claim(to_major);
    if kind == Kind::Move {
        new_values = chart::with_existing_claim(&new_values, Some(&new_volume));
    }
    let created_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let backup = (kind == Kind::Move).then(|| {
        let stamp: String = created_at
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        args.backup_dir.join(format!(
            "{}-{}-pg{from_major}-{stamp}.dump",
            config.release, config.database
        ))
    });
    let mut report = UpgradeReport {
        dry_run: args.dry_run,
        release: config.release.to_string(),
        namespace: config.namespace.to_string(),
        kind,
        from: Side {
            postgres_major: from_major,
            image: from_image.to_string(),
            chart_version: chart_version.clone(),
        },
        to: Side {
            postgres_major: to_major,
            image: to_image.to_string(),
            chart_version: to_chart.clone(),
        },
        rolled_back_interrupted,
        finished_interrupted,
        steps: steps(
            kind,
            &before,
            &to_image,
            &to_chart,
            backup.as_ref(),
            &old_volume,
            &new_volume,
        ),
        value_changes: value_changes(&values, &new_values),
        backup: backup.clone(),
        old_volume: (kind == Kind::Move).then(|| old_volume.clone()),
        new_volume: (kind == Kind::Move).then(|| new_volume.clone()),
        tables: before.tables.len(),
        rows: before.rows(),
        migrations: before.history.len(),
        not_carried: if kind == Kind::Move {
            before.not_carried.clone()
        } else {
            Vec::new()
        },
        revision: None,
        downtime_ms: None,
        duration_ms: 0,
    };
    if let Some(backup) = &backup {
        check_backup_path(backup)?;
    }
    if args.dry_run || kind == Kind::None {
        report.duration_ms = started.elapsed().as_millis();
        return Ok(Outcome::success(&report));
    }
    if chart_major(&to_chart) != chart_major(&chart_version) {
        config.confirm(&format!(
            "move release {} from chart {chart_version} to {to_chart}, a new major version of the chart",
            config.release
        ))?;
    }
    config.confirm(&format!(
        "restart PostgreSQL of release {} in {} to run {to_image}{}",
        config.release,
        config.namespace,
        if kind == Kind::Move {
            " (the database is down while the data moves)"
        } else {
            ""
        }
    ))?;
    if kind == Kind::Rollout {
        let stopped = Instant::now();
        report.revision = target.roll_out(&new_values, &to_chart).await?;
        report.downtime_ms = Some(stopped.elapsed().as_millis());
        let verify = health::verify(config, None, started).await?;
        report.duration_ms = started.elapsed().as_millis();
        return Ok(Outcome::with_code(&report, verify.exit_code()));
    }
    let Some(backup) = backup else {
        unreachable!("a move always has a backup path")
    };
    crate::deadline::step("backing up the database");
    let transport = release::pod_transport(config, "upgrade").await?;
    dump::dump_to_file(config, &transport, &backup, DumpKind::Database, &created_at).await?;
    let volumes = resize::volumes(&kube, &config.release).await?;
    let like = volumes
        .iter()
        .find(|volume| volume.name == old_volume)
        .ok_or_else(|| {
            Failure::new(
                ExitCode::Refused,
                format!("the primary's volume {old_volume} was not found"),
            )
            .hint("check `kubectl get pvc` in the namespace; the upgrade changed nothing")
        })?
        .clone();
    if volumes.iter().any(|volume| volume.name == new_volume) {
        return Err(Failure::new(
            ExitCode::Refused,
            format!("volume {new_volume} exists already and the release does not use it"),
        )
        .hint(format!(
            "if it is left from an earlier attempt, delete it (`kubectl delete pvc {new_volume}`) and run the upgrade again; the upgrade changed nothing"
        ))
        .into());
    }
    let record = Record {
        from_major,
        to_major,
        image: values["image"].clone(),
        global: values["global"].clone(),
        existing_claim: chart::existing_claim(&values),
        chart_version: chart_version.clone(),
        new_claim: new_volume.clone(),
        backup: backup.display().to_string(),
        until: Some(
            humantime::format_rfc3339_seconds(SystemTime::now() + config.timeout + RECORD_GRACE)
                .to_string(),
        ),
        verified: false,
    };
    major_upgrade::write_record(&kube, &secret, &record).await?;
    let stopped = Instant::now();
    let moved = move_data(
        &target,
        &like,
        &new_volume,
        &new_values,
        &to_chart,
        &backup,
        &before,
    )
    .await;
    match moved {
        Ok(revision) => {
            report.revision = revision;
            report.downtime_ms = Some(stopped.elapsed().as_millis());
            // From here on a run cut short is finished forward, never rolled back.
            let verified = Record {
                verified: true,
                ..record
            };
            major_upgrade::write_record(&kube, &secret, &verified).await?;
            major_upgrade::clear_record(&kube, &secret).await?;
            report.duration_ms = started.elapsed().as_millis();
            Ok(Outcome::success(&report))
        }
        Err(error) => {
            let values_now = match helm.status(&config.release).await {
                Ok(Some(status)) => status.values,
                _ => new_values.clone(),
            };
            match target.roll_back(&record, &values_now).await {
                Ok(()) => Err(error.context(format!(
                    "the upgrade to PostgreSQL {to_major} failed and was rolled back: release {} runs PostgreSQL {from_major} on volume {old_volume} again (backup kept at {})",
                    config.release,
                    backup.display()
                ))),
                Err(rollback) => Err(error.context(format!(
                    "the upgrade to PostgreSQL {to_major} failed, and so did the rollback ({rollback:#}); volume {old_volume} is kept as it was and backup {} holds the data — run `pgk8s upgrade --postgres-version {to_major}` again to finish the rollback",
                    backup.display()
                ))),
            }
        }
    }
}

/// Steps 4–8 of a move (the new volume, the switch, restore, compare); any error is rolled
/// back by the caller.
async fn move_data(
    target: &Target<'_>,
    like: &resize::Volume,
    new_volume: &str,
    new_values: &Value,
    chart_version: &str,
    backup: &std::path::Path,
    before: &Contents,
) -> anyhow::Result<Option<u64>> {
    let config = target.config;
    crate::deadline::step("creating the new volume");
    target.create_volume(new_volume, like).await?;
    target.stop_primary().await?;
    crate::deadline::step("starting the new server");
    let revision = target.roll_out(new_values, chart_version).await?;
    crate::deadline::step("restoring the backup into the new server");
    let transport = release::pod_transport(config, "upgrade").await?;
    dump::restore_from_file(config, &transport, backup).await?;
    crate::deadline::step("comparing the new server's contents with the old");
    let after = contents::contents(config).await?;
    let differences = contents::differences(before, &after);
    if !differences.is_empty() {
        return Err(Failure::new(
            ExitCode::Unhealthy,
            format!(
                "the restored database differs from the source: {}",
                differences.join("; ")
            ),
        )
        .into());
    }
    let mut verify = health::verify(config, None, Instant::now()).await?;
    // The record of this upgrade is still on the Secret until it succeeds: not a problem here.
    verify
        .issues
        .retain(|issue| issue.code != "upgrade_interrupted");
    if !verify.issues.is_empty() {
        return Err(Failure::new(
            ExitCode::Unhealthy,
            format!(
                "the new server is not healthy: {}",
                verify
                    .issues
                    .iter()
                    .map(|issue| format!("{} ({})", issue.code, issue.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
        .into());
    }
    Ok(revision)
}

/// The steps a run takes, for `--dry-run` and the report.
fn steps(
    kind: Kind,
    before: &Contents,
    to_image: &Image,
    to_chart: &str,
    backup: Option<&PathBuf>,
    old_volume: &str,
    new_volume: &str,
) -> Vec<String> {
    match kind {
        Kind::None => Vec::new(),
        Kind::Rollout => vec![
            format!(
                "helm upgrade to chart {to_chart} with image {to_image} (same volume; the pod restarts if its image changes)"
            ),
            "verify the release".to_string(),
        ],
        Kind::Move => vec![
            format!(
                "count the rows of {} tables and read {} migrations",
                before.tables.len(),
                before.history.len()
            ),
            format!(
                "back up the database to {} (checksummed, kept)",
                backup
                    .map(|path| path.display().to_string())
                    .unwrap_or_default()
            ),
            format!("create volume {new_volume} like {old_volume}"),
            format!(
                "stop PostgreSQL {} (volume {old_volume} is kept as it is)",
                before.major()
            ),
            format!(
                "helm upgrade to chart {to_chart} with image {to_image} on volume {new_volume}"
            ),
            "restore the backup into the new server".to_string(),
            "compare tables, row counts and migration history with the source; verify".to_string(),
        ],
    }
}

/// The leaves of `after` that differ from `before`, as `path: old -> new`. Only the values the
/// upgrade changes (image, trust, volume) can differ, so no secret a values file holds is shown.
fn value_changes(before: &Value, after: &Value) -> Vec<String> {
    fn leaves(value: &Value, path: String, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    leaves(inner, path, out);
                }
            }
            other => out.push((path, other.to_string())),
        }
    }
    let (mut old, mut new) = (Vec::new(), Vec::new());
    leaves(before, String::new(), &mut old);
    leaves(after, String::new(), &mut new);
    let find = |list: &[(String, String)], path: &str| {
        list.iter()
            .find(|(key, _)| key == path)
            .map_or_else(|| "(unset)".to_string(), |(_, value)| value.clone())
    };
    let mut paths: Vec<&String> = old.iter().chain(new.iter()).map(|(path, _)| path).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| {
            let (was, will) = (find(&old, path), find(&new, path));
            (was != will).then(|| format!("{path}: {was} -> {will}"))
        })
        .collect()
}

/// The tag of the image the primary pod runs.
async fn running_tag(kube: &crate::kube::Kube, names: &Names) -> anyhow::Result<String> {
    let pods = kube.get(&[&format!("pod/{}", names.primary_pod)]).await?;
    pods.first()
        .and_then(|pod| pod.spec["containers"].as_array())
        .and_then(|containers| {
            containers
                .iter()
                .find(|container| container["name"] == chart::CONTAINER)
        })
        .and_then(|container| container["image"].as_str())
        .and_then(|image| image.rsplit_once(':'))
        .map(|(_, tag)| tag.to_string())
        .ok_or_else(|| anyhow::anyhow!("cannot tell which image pod {} runs", names.primary_pod))
}

fn not_installed(config: &Config) -> Failure {
    Failure::new(
        ExitCode::General,
        format!(
            "release {} is not installed in namespace {}",
            config.release, config.namespace
        ),
    )
    .hint("deploy it with the version you want instead")
}

fn chart_version_of(release: &ReleaseStatus) -> Result<String, Failure> {
    release.chart_version().map(str::to_string).ok_or_else(|| {
        Failure::usage("cannot tell which chart version the release runs")
            .hint("pass --chart-version")
    })
}

fn chart_major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// Refuses a backup path whose directory is missing or that would replace a file.
fn check_backup_path(path: &std::path::Path) -> Result<(), Failure> {
    let directory = path.parent().unwrap_or(std::path::Path::new("."));
    if !directory.as_os_str().is_empty() && !directory.is_dir() {
        return Err(Failure::usage(format!(
            "--backup-dir {} is not a directory",
            directory.display()
        ))
        .hint("create it first, or pass another --backup-dir"));
    }
    for existing in [path.to_path_buf(), crate::backup::manifest_path(path)] {
        if existing.symlink_metadata().is_ok() {
            return Err(
                Failure::usage(format!("{} already exists", existing.display()))
                    .hint("wait a second and run again, or pass another --backup-dir"),
            );
        }
    }
    Ok(())
}

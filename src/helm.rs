//! Helm operations and the helm 3 / helm 4 differences.
//!
//! Argument vectors are built by pure functions ([`upgrade_args`] and friends) so tests can run
//! real helm 3 and helm 4 binaries on exactly the vector pgk8s uses. Values always travel on
//! stdin (`-f -`); `--set` is never used. kubectl's `--context` becomes helm's `--kube-context`
//! here and nowhere else.

use std::time::Duration;

use serde_json::Value;

use crate::kube::KubeAccess;
use crate::names::{Namespace, ReleaseName};
use crate::process::{Captured, Command, Tool};

/// The helm major versions pgk8s drives, and what differs between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelmMajor {
    /// Helm 3: rolls back a failed install with `--atomic`.
    V3,
    /// Helm 4: `--rollback-on-failure` replaces the deprecated `--atomic`.
    V4,
}

impl HelmMajor {
    /// Parses `helm version --template '{{.Version}}'` output such as `v3.19.0`.
    pub fn parse(version: &str) -> Result<HelmMajor, HelmError> {
        let trimmed = version.trim();
        match trimmed.trim_start_matches('v').split('.').next() {
            Some("3") => Ok(HelmMajor::V3),
            Some("4") => Ok(HelmMajor::V4),
            _ => Err(HelmError::Unsupported {
                version: trimmed.to_string(),
            }),
        }
    }

    /// The flag that undoes a failed install or upgrade.
    pub fn rollback_flag(self) -> &'static str {
        match self {
            HelmMajor::V3 => "--atomic",
            HelmMajor::V4 => "--rollback-on-failure",
        }
    }
}

/// What is wrong with the helm found.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// Not helm 3 or 4.
    #[error("helm {version:?} is not supported: pgk8s needs helm 3 or 4")]
    Unsupported {
        /// What `helm version` printed.
        version: String,
    },
}

/// What `helm upgrade --install` needs to know.
#[derive(Clone, Debug)]
pub struct UpgradeRequest {
    /// Release name.
    pub release: ReleaseName,
    /// Namespace.
    pub namespace: Namespace,
    /// Chart reference.
    pub chart: String,
    /// Chart version.
    pub chart_version: String,
    /// How long helm waits for readiness.
    pub timeout: Duration,
    /// Create the namespace when it is missing (`--create-namespace`; the operator's).
    pub create_namespace: bool,
}

/// Helm bound to one namespace and kubeconfig.
#[derive(Clone, Debug)]
pub struct Helm {
    access: KubeAccess,
    namespace: Namespace,
}

/// The fields of `helm status -o json` pgk8s reports.
#[derive(Clone, Debug)]
pub struct ReleaseStatus {
    /// Release name.
    pub name: String,
    /// Revision number.
    pub revision: u64,
    /// `deployed`, `failed`, `pending-install`, ...
    pub status: String,
    /// Chart name and version, e.g. `postgresql-17.1.0`.
    pub chart: Option<String>,
    /// When the release last changed.
    pub updated: Option<String>,
    /// The user-supplied values the release holds (`config`); never serialized into reports.
    pub values: Value,
}

impl ReleaseStatus {
    /// Whether an operation on the release started and never finished (`pending-install`,
    /// `pending-upgrade`, `pending-rollback`): helm refuses every other operation until it is
    /// resolved.
    pub fn is_pending(&self) -> bool {
        self.status.starts_with("pending-")
    }

    /// The chart version the release runs (`postgresql-17.1.0` → `17.1.0`).
    pub fn chart_version(&self) -> Option<&str> {
        self.chart
            .as_deref()
            .and_then(|chart| chart.rsplit_once('-'))
            .map(|(_, version)| version)
    }

    /// How long ago the release last changed, when helm said.
    pub fn age(&self) -> Option<Duration> {
        let updated = seconds_since_epoch(self.updated.as_deref()?)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(Duration::from_secs_f64((now - updated).max(0.0)))
    }
}

/// The `helm.sh/chart` label (`postgresql-17.1.0`) of a rendered manifest.
fn chart_of_manifest(manifest: &str) -> Option<String> {
    manifest.lines().find_map(|line| {
        line.trim()
            .strip_prefix("helm.sh/chart:")
            .map(|chart| chart.trim().trim_matches('"').to_string())
    })
}

/// Seconds since the epoch of an RFC 3339 timestamp as helm prints it
/// (`2026-12-02T15:04:05.123456789+01:00` or `…Z`).
fn seconds_since_epoch(text: &str) -> Option<f64> {
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let (clock, offset_seconds) = match time.find(['Z', 'z', '+', '-']) {
        Some(at) if time[at..].eq_ignore_ascii_case("z") => (&time[..at], 0),
        Some(at) => {
            let sign = if time[at..].starts_with('-') { -1 } else { 1 };
            let (hours, minutes) = time[at + 1..].split_once(':')?;
            (
                &time[..at],
                sign * (hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60),
            )
        }
        None => return None,
    };
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let second: f64 = clock_parts.next()?.parse().ok()?;
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let (year, month) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some((days * 86_400 + hour * 3600 + minute * 60 - offset_seconds) as f64 + second)
}

impl Helm {
    /// Helm for `namespace` through `access`.
    pub fn new(access: KubeAccess, namespace: Namespace) -> Helm {
        Helm { access, namespace }
    }

    /// Detects the installed helm's major version.
    pub async fn major(&self) -> anyhow::Result<HelmMajor> {
        let command = Command::new(Tool::Helm).args(["version", "--template", "{{.Version}}"]);
        let captured = command.capture().await?;
        Ok(HelmMajor::parse(&captured.stdout_text())?)
    }

    /// `helm upgrade --install` with `values_yaml` on stdin; waits for readiness.
    pub async fn upgrade_install(
        &self,
        major: HelmMajor,
        request: &UpgradeRequest,
        values_yaml: String,
    ) -> anyhow::Result<Captured> {
        let command = Command::new(Tool::Helm)
            .args(upgrade_args(major, request, &self.access))
            .stdin_bytes(values_yaml.into_bytes())
            .forward_signals()
            .timeout(request.timeout + Duration::from_secs(60));
        crate::kube::run(command).await
    }

    /// `helm rollback RELEASE --wait`: back to the previous revision (recovers an upgrade an
    /// interrupted run left `pending-upgrade`).
    pub async fn rollback(&self, release: &ReleaseName, timeout: Duration) -> anyhow::Result<()> {
        let command = Command::new(Tool::Helm)
            .args(self.waited_args("rollback", release, timeout))
            .forward_signals()
            .timeout(timeout + Duration::from_secs(30));
        crate::kube::run(command).await?;
        Ok(())
    }

    /// The release's status, or None when it does not exist.
    pub async fn status(&self, release: &ReleaseName) -> anyhow::Result<Option<ReleaseStatus>> {
        let command =
            Command::new(Tool::Helm).args(status_args(release, &self.namespace, &self.access));
        match command.capture().await {
            Ok(captured) => {
                let document: Value =
                    serde_json::from_slice(&captured.stdout).map_err(|error| {
                        anyhow::anyhow!("helm status printed invalid JSON: {error}")
                    })?;
                Ok(Some(parse_status(&document)))
            }
            Err(error) if error.stderr_text().contains("not found") => Ok(None),
            Err(error) => Err(crate::kube::classify(error)),
        }
    }

    /// `helm uninstall --wait`; returns false when there was no such release.
    pub async fn uninstall(
        &self,
        release: &ReleaseName,
        timeout: Duration,
    ) -> anyhow::Result<bool> {
        let command = Command::new(Tool::Helm)
            .args(self.waited_args("uninstall", release, timeout))
            .timeout(timeout + Duration::from_secs(30));
        match command.capture().await {
            Ok(_) => Ok(true),
            Err(error) if error.stderr_text().contains("not found") => Ok(false),
            Err(error) => Err(crate::kube::classify(error)),
        }
    }

    /// `helm VERB --wait --timeout=… <scope> -- RELEASE`.
    fn waited_args(&self, verb: &str, release: &ReleaseName, timeout: Duration) -> Vec<String> {
        let mut args = vec![
            verb.to_string(),
            "--wait".to_string(),
            format!("--timeout={}s", timeout.as_secs().max(1)),
        ];
        args.extend(scope_args(&self.namespace, &self.access));
        args.extend(["--".to_string(), release.to_string()]);
        args
    }
}

/// The argument vector of `helm upgrade --install` (without the program name). Every value is
/// attached to its flag (`--version=…`) and the positionals follow `--`, so no value — a chart
/// reference or version that begins with `-` included — can be read as a flag.
pub fn upgrade_args(
    major: HelmMajor,
    request: &UpgradeRequest,
    access: &KubeAccess,
) -> Vec<String> {
    let mut args = vec![
        "upgrade".to_string(),
        "--install".to_string(),
        format!("--version={}", request.chart_version),
        // Bare --wait on both majors: in helm 4 it selects the watcher strategy; leaving it out
        // there would wait for hooks only.
        "--wait".to_string(),
        format!("--timeout={}s", request.timeout.as_secs().max(1)),
        major.rollback_flag().to_string(),
        // pgk8s's values with the user's --values merged in, on stdin.
        "--values=-".to_string(),
    ];
    if request.create_namespace {
        args.push("--create-namespace".to_string());
    }
    args.extend(scope_args(&request.namespace, access));
    args.extend([
        "--".to_string(),
        request.release.to_string(),
        request.chart.clone(),
    ]);
    args
}

/// The argument vector of `helm status -o json`.
pub fn status_args(
    release: &ReleaseName,
    namespace: &Namespace,
    access: &KubeAccess,
) -> Vec<String> {
    let mut args = vec!["status".to_string(), "--output=json".to_string()];
    args.extend(scope_args(namespace, access));
    args.extend(["--".to_string(), release.to_string()]);
    args
}

/// Namespace and kubeconfig flags, translated to helm's names.
fn scope_args(namespace: &Namespace, access: &KubeAccess) -> Vec<String> {
    let mut args = vec![format!("--namespace={namespace}")];
    if let Some(context) = &access.context {
        args.push(format!("--kube-context={context}"));
    }
    if let Some(kubeconfig) = &access.kubeconfig {
        args.push(format!("--kubeconfig={}", kubeconfig.display()));
    }
    args
}

fn parse_status(document: &Value) -> ReleaseStatus {
    let chart = &document["chart"]["metadata"];
    ReleaseStatus {
        name: document["name"].as_str().unwrap_or_default().to_string(),
        revision: document["version"].as_u64().unwrap_or_default(),
        status: document["info"]["status"]
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
        // helm 3.19 and 4.1 leave the chart out of `status -o json`; every object of the
        // rendered manifest carries it as the `helm.sh/chart` label.
        chart: chart["name"]
            .as_str()
            .map(|name| format!("{name}-{}", chart["version"].as_str().unwrap_or("?")))
            .or_else(|| chart_of_manifest(document["manifest"].as_str().unwrap_or_default())),
        updated: document["info"]["last_deployed"]
            .as_str()
            .map(str::to_string),
        values: document["config"].clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn request() -> UpgradeRequest {
        UpgradeRequest {
            release: "postgresql".parse().unwrap(),
            namespace: "learnflow".parse().unwrap(),
            chart: crate::chart::DEFAULT_CHART.to_string(),
            chart_version: "17.1.0".to_string(),
            timeout: Duration::from_secs(300),
            create_namespace: false,
        }
    }

    #[test]
    fn the_chart_is_read_from_the_manifest_when_status_leaves_it_out() {
        let document = serde_json::json!({
            "name": "postgresql", "version": 2, "info": {"status": "deployed"}, "config": {},
            "manifest": "---\nkind: Service\nmetadata:\n  labels:\n    helm.sh/chart: postgresql-17.1.0\n"
        });
        assert_eq!(
            parse_status(&document).chart.as_deref(),
            Some("postgresql-17.1.0")
        );
    }

    #[test]
    fn helm_timestamps_are_read_with_their_offset() {
        assert_eq!(seconds_since_epoch("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            seconds_since_epoch("2026-12-02T15:04:05.5+01:00"),
            Some(1_796_220_245.5)
        );
        assert_eq!(
            seconds_since_epoch("2026-12-02T14:04:05.5Z"),
            seconds_since_epoch("2026-12-02T15:04:05.5+01:00")
        );
        assert_eq!(seconds_since_epoch("yesterday"), None);
    }

    #[test]
    fn versions_map_to_majors() {
        assert_eq!(HelmMajor::parse("v3.19.0").unwrap(), HelmMajor::V3);
        assert_eq!(HelmMajor::parse("v4.1.4\n").unwrap(), HelmMajor::V4);
        assert!(matches!(
            HelmMajor::parse("v2.17.0"),
            Err(HelmError::Unsupported { version }) if version == "v2.17.0"
        ));
    }

    #[test]
    fn helm_3_rolls_back_with_atomic_and_helm_4_with_rollback_on_failure() {
        let access = KubeAccess::default();
        let v3 = upgrade_args(HelmMajor::V3, &request(), &access);
        let v4 = upgrade_args(HelmMajor::V4, &request(), &access);
        assert!(
            v3.contains(&"--atomic".to_string())
                && !v3.contains(&"--rollback-on-failure".to_string())
        );
        assert!(
            v4.contains(&"--rollback-on-failure".to_string())
                && !v4.contains(&"--atomic".to_string())
        );
        for args in [&v3, &v4] {
            assert!(args.contains(&"--wait".to_string()));
            assert!(!args.iter().any(|arg| arg.starts_with("--wait=")));
            assert!(!args.iter().any(|arg| arg == "--set"));
        }
    }

    #[test]
    fn context_becomes_kube_context() {
        let access = KubeAccess {
            context: Some("kind-dev".to_string()),
            kubeconfig: Some(PathBuf::from("/k/config")),
        };
        let args = upgrade_args(HelmMajor::V4, &request(), &access);
        let joined = args.join(" ");
        assert!(joined.contains("--kube-context=kind-dev"), "{joined}");
        assert!(joined.contains("--kubeconfig=/k/config"), "{joined}");
        assert!(!args.iter().any(|arg| arg.starts_with("--context")));
    }

    #[test]
    fn positionals_follow_a_double_dash_so_no_value_reads_as_a_flag() {
        let mut hostile = request();
        hostile.chart = "--post-renderer=/bin/evil".to_string();
        let args = upgrade_args(HelmMajor::V4, &hostile, &KubeAccess::default());
        let separator = args.iter().position(|arg| arg == "--").expect("--");
        assert_eq!(
            &args[separator + 1..],
            ["postgresql", "--post-renderer=/bin/evil"]
        );
        assert!(
            args[..separator]
                .iter()
                .all(|arg| arg.starts_with("--") || arg == "upgrade"),
            "{args:?}"
        );
    }
}

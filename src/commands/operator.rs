//! `pgk8s operator install|status`: the CloudNativePG operator that `--engine cnpg` needs,
//! installed from its pinned chart (idempotent) or inspected.

use serde::Serialize;

use crate::cli::{OperatorAction, OperatorArgs};
use crate::cnpg;
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::operator::{self, OperatorState};
use crate::output::{CheckState, Outcome, Report, Text};

#[derive(Serialize)]
struct OperatorReport {
    action: &'static str,
    namespace: &'static str,
    chart: &'static str,
    chart_version: &'static str,
    crd_installed: Option<bool>,
    ready_replicas: Option<u64>,
    operator_version: Option<String>,
    installed_chart_version: Option<String>,
    running: bool,
    revision: Option<u64>,
}

impl OperatorReport {
    fn new(action: &'static str, state: &OperatorState) -> OperatorReport {
        OperatorReport {
            action,
            namespace: cnpg::OPERATOR_NAMESPACE,
            chart: cnpg::OPERATOR_CHART,
            chart_version: cnpg::OPERATOR_CHART_VERSION,
            crd_installed: state.crd,
            ready_replicas: state.ready_replicas,
            operator_version: state.version.clone(),
            installed_chart_version: state.chart.clone(),
            running: state.running(),
            revision: None,
        }
    }
}

impl Report for OperatorReport {
    fn render(&self, text: &mut Text) {
        let lead = match self.action {
            "would-install" => format!(
                "Dry run, nothing was changed. Would install CloudNativePG {} (chart {} {}) into {}.",
                cnpg::OPERATOR_VERSION,
                self.chart,
                self.chart_version,
                self.namespace
            ),
            "installed" => format!(
                "Installed CloudNativePG {} into {} (chart {}).",
                cnpg::OPERATOR_VERSION,
                self.namespace,
                self.chart_version
            ),
            "unchanged" => format!(
                "CloudNativePG chart {} runs in {} already: nothing to do.",
                self.chart_version, self.namespace
            ),
            "kept-newer" => format!(
                "A newer CloudNativePG runs in {} (chart {}, pgk8s pins {}): kept as it is.",
                self.namespace,
                self.installed_chart_version.as_deref().unwrap_or("?"),
                cnpg::OPERATOR_CHART_VERSION
            ),
            _ if self.running => format!(
                "CloudNativePG {} is running in {}.",
                self.operator_version
                    .as_deref()
                    .unwrap_or("(version unknown)"),
                self.namespace
            ),
            _ => format!("CloudNativePG is not running in {}.", self.namespace),
        };
        text.line(lead);
        let state = |ok: bool| if ok { CheckState::Ok } else { CheckState::Fail };
        text.check(
            match self.crd_installed {
                Some(found) => state(found),
                None => CheckState::Skipped,
            },
            format!(
                "CRD {}{}",
                cnpg::CRD,
                match self.crd_installed {
                    Some(true) => "",
                    Some(false) => " missing",
                    None => " (not readable with these credentials)",
                }
            ),
        );
        text.check(
            state(self.ready_replicas.is_some_and(|ready| ready > 0)),
            format!(
                "deployment {}: {} ready",
                cnpg::OPERATOR_DEPLOYMENT,
                self.ready_replicas.unwrap_or(0)
            ),
        );
        if !self.running && self.action == "status" {
            text.line("  install it with: pgk8s operator install");
        }
    }
}

/// Runs `pgk8s operator …`.
pub async fn run(args: &OperatorArgs, config: &Config) -> anyhow::Result<Outcome> {
    let state = operator::state(config).await?;
    match &args.action {
        OperatorAction::Status => {
            let report = OperatorReport::new("status", &state);
            let code = if report.running {
                ExitCode::Success
            } else {
                ExitCode::Unhealthy
            };
            Ok(Outcome::with_code(&report, code))
        }
        OperatorAction::Install(install) => {
            // A newer operator than the pinned one is someone's deliberate upgrade: never
            // replaced by an older chart.
            if let Some(installed) = state
                .chart
                .as_deref()
                .filter(|installed| newer(installed, cnpg::OPERATOR_CHART_VERSION))
            {
                if state.running() {
                    return Ok(Outcome::success(&OperatorReport::new("kept-newer", &state)));
                }
                return Err(Failure::new(
                    ExitCode::Refused,
                    format!(
                        "the operator's chart {installed} is newer than the {} pgk8s installs, and it is not running",
                        cnpg::OPERATOR_CHART_VERSION
                    ),
                )
                .hint(format!(
                    "see why with `kubectl describe deployment {} -n {}`; pgk8s does not downgrade it",
                    cnpg::OPERATOR_DEPLOYMENT,
                    cnpg::OPERATOR_NAMESPACE
                ))
                .into());
            }
            let current =
                state.running() && state.chart.as_deref() == Some(cnpg::OPERATOR_CHART_VERSION);
            if install.dry_run || current {
                let action = if current {
                    "unchanged"
                } else {
                    "would-install"
                };
                return Ok(Outcome::success(&OperatorReport::new(action, &state)));
            }
            let revision = operator::install(config, config.timeout).await?;
            let mut report = OperatorReport::new("installed", &operator::state(config).await?);
            report.revision = revision;
            Ok(Outcome::success(&report))
        }
    }
}

/// Whether dotted version `a` is newer than `b` (numeric parts compared in order; a part that
/// is not a number counts as 0).
fn newer(a: &str, b: &str) -> bool {
    let parts = |text: &str| -> Vec<u64> {
        text.split(['.', '-', '+'])
            .take(3)
            .map(|part| part.parse().unwrap_or(0))
            .collect()
    };
    parts(a) > parts(b)
}

#[cfg(test)]
mod tests {
    use super::newer;

    #[test]
    fn only_a_higher_version_is_newer() {
        assert!(newer("0.30.0", "0.29.0"));
        assert!(newer("1.0.0", "0.29.9"));
        assert!(!newer("0.29.0", "0.29.0"));
        assert!(!newer("0.28.1", "0.29.0"));
    }
}

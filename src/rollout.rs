//! Rolling a release out: `helm upgrade --install --wait` with the values on stdin, the pods,
//! claims and events watched meanwhile (progress on a terminal), and on failure the diagnosis —
//! the first problem seen (ImagePullBackOff, PVC Pending, OOMKilled, CrashLoopBackOff with the
//! server's last log lines, ...), its exit code and its fix.

use std::cell::RefCell;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::chart::Names;
use crate::diagnose::{Issue, ReleaseState};
use crate::error::{ExitCode, Failure};
use crate::helm::{Helm, HelmMajor, UpgradeRequest};
use crate::kube::Kube;
use crate::progress::Progress;
use crate::release::{crash_log, release_state};

/// How often the wait looks at pods, claims and events.
const POLL_INTERVAL: Duration = Duration::from_secs(3);
/// When it looks first.
const FIRST_POLL: Duration = Duration::from_millis(500);

/// The `REVISION: N` line helm prints after an install or upgrade.
fn revision_of(helm_output: &str) -> Option<u64> {
    helm_output
        .lines()
        .find_map(|line| line.strip_prefix("REVISION:"))
        .and_then(|revision| revision.trim().parse().ok())
}

/// A `helm upgrade --install --wait` to run and watch.
pub struct Rollout<'a> {
    /// kubectl for the release's namespace.
    pub kube: &'a Kube,
    /// helm for the release's namespace.
    pub helm: &'a Helm,
    /// The helm major found.
    pub major: HelmMajor,
    /// Release, chart, version and helm's own timeout.
    pub request: &'a UpgradeRequest,
    /// The release's names (for messages and the primary's logs).
    pub names: &'a Names,
}

/// `helm upgrade --install --wait` with `values` on stdin, watching pods meanwhile; returns the
/// new revision, or on failure says why the release did not become ready.
pub async fn roll_out(rollout: &Rollout<'_>, values: &Value) -> anyhow::Result<Option<u64>> {
    let Rollout {
        kube,
        helm,
        major,
        request,
        names,
    } = rollout;
    let observed = RefCell::new(ReleaseState::default());
    let crash_seen = RefCell::new(String::new());
    let mut progress = Progress::start(&format!(
        "deploying {} (helm upgrade --install, waiting up to {})",
        names.release,
        humantime::format_duration(request.timeout)
    ));
    let values_yaml = serde_yaml::to_string(values).context("writing the chart values as YAML")?;
    crate::deadline::step("waiting for helm to install or upgrade the release");
    let mut request = (*request).clone();
    request.timeout = crate::deadline::cap(request.timeout);
    let upgrade = helm.upgrade_install(*major, &request, values_yaml);
    let watch = async {
        // Look early, then every few seconds: with `--rollback-on-failure` helm deletes what it
        // installed when it gives up, so what a short wait saw may be all there is to go on.
        let mut interval = FIRST_POLL;
        loop {
            tokio::time::sleep(interval).await;
            interval = POLL_INTERVAL;
            if let Ok(objects) = kube.get(&["pods,pvc,statefulsets,events"]).await {
                let state = release_state(&objects, &request.release);
                // A crashing server's last words, read while the pod still exists.
                let crashing = state
                    .issues()
                    .first()
                    .is_some_and(|issue| issue.code == "crash_loop");
                if crashing && crash_seen.borrow().is_empty() {
                    let log = crash_log(kube, &names.primary_pod).await;
                    *crash_seen.borrow_mut() = log;
                }
                progress.update(&format!(
                    "waiting for {}: {}",
                    names.release,
                    state.summary()
                ));
                *observed.borrow_mut() = state;
            }
        }
    };
    let result = tokio::select! {
        result = upgrade => result,
        never = watch => never,
    };
    drop(progress);
    let error = match result {
        Ok(captured) => return Ok(revision_of(&captured.stdout_text())),
        Err(error) => error,
    };
    let timed_out = error.chain().any(|cause| {
        let text = cause.to_string();
        text.contains("context deadline exceeded") || text.contains("timed out")
    });
    if !timed_out {
        return Err(error.context("helm upgrade --install failed"));
    }
    // helm may have rolled the release back already; fall back to what the wait saw last.
    let latest = match kube.get(&["pods,pvc,statefulsets,events"]).await {
        Ok(objects) => release_state(&objects, &request.release),
        Err(_) => ReleaseState::default(),
    };
    let state = if latest.issues().is_empty() {
        observed.into_inner()
    } else {
        latest
    };
    Err(wait_failure(rollout, &state, crash_seen.into_inner()).await)
}

async fn wait_failure(
    rollout: &Rollout<'_>,
    state: &ReleaseState,
    crash_seen: String,
) -> anyhow::Error {
    let Rollout {
        kube,
        request,
        names,
        ..
    } = rollout;
    let mut issues = state.issues();
    let timeout = humantime::format_duration(request.timeout);
    let crash = match issues.first() {
        Some(first) if first.code == "crash_loop" && crash_seen.is_empty() => {
            crash_log(kube, &names.primary_pod).await
        }
        Some(first) if first.code == "crash_loop" => crash_seen,
        _ => String::new(),
    };
    if let Some(mismatch) = issues
        .first()
        .and_then(|first| first.from_crash_log(&crash))
    {
        issues[0] = mismatch;
    }
    let Some(first) = issues.first() else {
        return Failure::new(ExitCode::Timeout, format!("release {} was not ready within {timeout}", names.release))
            .hint("the pods never reported a problem; try a longer --timeout, and see `kubectl get events`")
            .into();
    };
    let mut hint = first.hint.clone();
    let last_lines: Vec<String> = crash
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|line| format!("\n  | {line}"))
        .collect();
    if !last_lines.is_empty() {
        hint.push_str(&format!("; last log lines:{}", last_lines.concat()));
    }
    let others: Vec<&str> = issues
        .iter()
        .skip(1)
        .map(|issue: &Issue| issue.code)
        .collect();
    let also = if others.is_empty() {
        String::new()
    } else {
        format!(" (also: {})", others.join(", "))
    };
    let code = if first.exit == ExitCode::InsufficientResources {
        first.exit
    } else {
        ExitCode::Timeout
    };
    Failure::new(
        code,
        format!(
            "release {} not ready within {timeout}: {}{also}",
            names.release, first.message
        ),
    )
    .hint(hint)
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revision_is_read_from_helms_output() {
        assert_eq!(
            revision_of("NAME: postgresql\nSTATUS: deployed\nREVISION: 3\n"),
            Some(3)
        );
        assert_eq!(revision_of("nothing"), None);
    }
}

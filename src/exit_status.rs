//! The one mapping from an error to an exit code and a hint.
//!
//! Each layer returns its own typed error, naming its object (`KubeError::Forbidden`,
//! `MigrateError::Drift`, `ReleaseError::NoPod`, ...); commands add context with `anyhow`. Here,
//! at the top, one `match` per error type decides how the process exits and what the user is told
//! to try. Nothing below decides an exit code (except [`Failure`], a command's explicit verdict).

use crate::error::{ExitCode, Failure};
use crate::helm::HelmError;
use crate::kube::KubeError;
use crate::migration_engine::MigrateError;
use crate::process::{ProcessError, Tool};
use crate::release::ReleaseError;
use crate::sql_error::SqlError;

/// How an error ends the process: its code, the fix to suggest, and the text of the error that
/// decided (the one-line message ends there; what lies below is evidence, shown with `-v`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The exit code.
    pub code: ExitCode,
    /// What the user can do, when there is a clear answer.
    pub hint: Option<String>,
    /// The classified error's own message.
    pub decided_by: Option<String>,
}

/// The verdict on `error`: a command's [`Failure`] first, then the typed errors of the layers,
/// then what the failed process says; unclassified errors are exit 1.
pub fn classify(error: &anyhow::Error) -> Verdict {
    fn found(code: ExitCode, hint: Option<String>, error: &dyn std::fmt::Display) -> Verdict {
        Verdict {
            code,
            hint,
            decided_by: Some(error.to_string()),
        }
    }
    if let Some(failure) = error.downcast_ref::<Failure>() {
        return found(failure.code, failure.hint.clone(), failure);
    }
    if let Some(migrate) = error.downcast_ref::<MigrateError>() {
        let (code, hint) = migrate_verdict(migrate);
        return found(code, Some(hint), migrate);
    }
    if let Some(release) = error.downcast_ref::<ReleaseError>() {
        let (code, hint) = release_verdict(release);
        return found(code, Some(hint), release);
    }
    if let Some(kube) = error.downcast_ref::<KubeError>() {
        let (code, hint) = kube_verdict(kube);
        return found(code, hint, kube);
    }
    if let Some(HelmError::Unsupported { .. }) = error.downcast_ref::<HelmError>() {
        return found(
            ExitCode::ToolMissing,
            Some(Tool::Helm.install_hint()),
            error,
        );
    }
    if let Some(sql) = error.downcast_ref::<SqlError>() {
        let (code, hint) = sql_verdict(sql);
        return found(code, hint, sql);
    }
    for cause in error.chain() {
        if let Some(process) = cause.downcast_ref::<ProcessError>() {
            let (code, hint) = process_verdict(process);
            return found(code, hint, process);
        }
        if cause.downcast_ref::<clap::Error>().is_some() {
            return found(ExitCode::Usage, None, cause);
        }
    }
    Verdict {
        code: ExitCode::General,
        hint: None,
        decided_by: None,
    }
}

fn kube_verdict(error: &KubeError) -> (ExitCode, Option<String>) {
    let hint = match error {
        KubeError::Unreachable { .. } => {
            "check `kubectl config current-context` and `kubectl cluster-info`, or pass --context/--kubeconfig"
        }
        KubeError::Kubeconfig { .. } => {
            "list contexts with `kubectl config get-contexts` and pass one with --context"
        }
        KubeError::Forbidden { .. } => {
            "your credentials lack permission in this namespace; ask for a Role that allows managing pods, secrets, PVCs and exec"
        }
        KubeError::TooOld { .. } => {
            return (ExitCode::ToolMissing, Some(Tool::Kubectl.install_hint()));
        }
        KubeError::Unreadable { .. } => return (ExitCode::General, None),
    };
    (ExitCode::ClusterUnreachable, Some(hint.to_string()))
}

fn release_verdict(error: &ReleaseError) -> (ExitCode, String) {
    match error {
        ReleaseError::NoPod { namespace, .. } => (
            ExitCode::DatabaseUnreachable,
            format!("deploy it with `pgk8s deploy -n {namespace}`, or check -n/--release"),
        ),
        ReleaseError::NoService { namespace, .. } => (
            ExitCode::General,
            format!("deploy it with `pgk8s deploy -n {namespace}`, or check -n/--release"),
        ),
        ReleaseError::SecretMissing { .. } => (
            ExitCode::General,
            "the credentials Secret is created by `pgk8s deploy` (or named with --password-from-secret)".to_string(),
        ),
    }
}

fn sql_verdict(error: &SqlError) -> (ExitCode, Option<String>) {
    match error {
        SqlError::Statement { .. } => (ExitCode::MigrationFailed, None),
        SqlError::Connect { .. } | SqlError::NoPod { .. } => (ExitCode::DatabaseUnreachable, None),
        SqlError::ContainerNotRunning { .. } => (
            ExitCode::DatabaseUnreachable,
            Some("check the release with `pgk8s verify` (deploy it with `pgk8s deploy`), and -n/--release".to_string()),
        ),
        SqlError::Authentication { .. } => (ExitCode::DatabaseUnreachable, Some(authentication_hint())),
    }
}

/// What to do when the server refused a login.
pub fn authentication_hint() -> String {
    "pgk8s logs in with the password the pod mounts from the release's Secret (key `password` for the app user, \
     `postgres-password` for postgres); a Secret replaced after the data volume was initialised no longer matches: \
     restore the original Secret, or finish an interrupted `pgk8s rotate-password`"
        .to_string()
}

fn migrate_verdict(error: &MigrateError) -> (ExitCode, String) {
    let hint = match error {
        MigrateError::OutOfOrder { .. } => {
            "renumber it above the newest version, or apply it anyway with --allow-out-of-order"
        }
        MigrateError::UnknownTarget { .. } => {
            return (
                ExitCode::Usage,
                "pick a version listed by `pgk8s migrate status`".to_string(),
            );
        }
        MigrateError::MissingFile { .. } => {
            "restore its files into the migrations directory before rolling it back"
        }
        MigrateError::NoDownFile { .. } => {
            "write the down migration first; nothing was rolled back"
        }
        MigrateError::Drift { .. } => {
            "restore the original file, or accept the change with `pgk8s migrate repair --yes`"
        }
        MigrateError::LockTimeout { .. } => {
            "wait for it to finish, or raise --lock-timeout; if that session is stuck, end it with pg_terminate_backend(pid)"
        }
        MigrateError::ScriptFailed { consequence, .. } => consequence,
        MigrateError::LostSession { .. } => {
            "nothing is recorded twice: run `pgk8s migrate status`, then `pgk8s migrate` again to resume where it stopped"
        }
        MigrateError::NotConfirmed { .. } => {
            "inspect pgk8s.schema_history with `pgk8s migrate status` before running anything else"
        }
    };
    (ExitCode::MigrationFailed, hint.to_string())
}

fn process_verdict(error: &ProcessError) -> (ExitCode, Option<String>) {
    match error {
        ProcessError::NotFound { tool } => (ExitCode::ToolMissing, Some(tool.install_hint())),
        ProcessError::TimedOut { .. } => (ExitCode::Timeout, None),
        ProcessError::Deadline { .. } => (ExitCode::Timeout, crate::deadline::expired(None).hint),
        _ => (ExitCode::General, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn a_failure_under_context_decides() {
        let error =
            Err::<(), _>(Failure::new(ExitCode::Refused, "pvc left over").hint("use --yes"))
                .context("deploy failed")
                .unwrap_err();
        let verdict = classify(&error);
        assert_eq!(
            (
                verdict.code,
                verdict.hint.as_deref(),
                verdict.decided_by.as_deref()
            ),
            (ExitCode::Refused, Some("use --yes"), Some("pvc left over"))
        );
    }

    #[test]
    fn typed_errors_of_each_layer_have_their_code() {
        let cases: Vec<(anyhow::Error, ExitCode)> = vec![
            (
                MigrateError::Drift { files: "x".into() }.into(),
                ExitCode::MigrationFailed,
            ),
            (
                MigrateError::UnknownTarget {
                    target: 9,
                    source_name: "embedded".into(),
                }
                .into(),
                ExitCode::Usage,
            ),
            (
                KubeError::TooOld {
                    version: "v1.20.0".into(),
                }
                .into(),
                ExitCode::ToolMissing,
            ),
            (
                HelmError::Unsupported {
                    version: "v2".into(),
                }
                .into(),
                ExitCode::ToolMissing,
            ),
            (
                SqlError::Authentication {
                    message: "FATAL".into(),
                }
                .into(),
                ExitCode::DatabaseUnreachable,
            ),
            (
                SqlError::Statement {
                    line: None,
                    message: "ERROR".into(),
                    context: vec![],
                }
                .into(),
                ExitCode::MigrationFailed,
            ),
            (
                ProcessError::NotFound { tool: Tool::Helm }.into(),
                ExitCode::ToolMissing,
            ),
            (anyhow::anyhow!("something odd"), ExitCode::General),
        ];
        for (error, code) in cases {
            assert_eq!(classify(&error).code, code, "{error:#}");
        }
    }
}

//! The resolved configuration every command receives: global flags checked and turned into the
//! objects commands work with (kubectl and helm handles, chart names, the SQL transport), plus
//! the one confirmation prompt.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::database_url::DatabaseUrl;
use crate::engine::Engine;
use crate::error::{ExitCode, Failure};
use crate::helm::Helm;
use crate::kube::{Kube, KubeAccess};
use crate::names::{Identifier, Namespace, ReleaseName};
use crate::output::Style;
use crate::transport::Transport;

/// What a command knows about where and how to act.
#[derive(Clone)]
pub struct Config {
    /// Target namespace.
    pub namespace: Namespace,
    /// Helm release.
    pub release: ReleaseName,
    /// Application database.
    pub database: Identifier,
    /// Application user.
    pub username: Identifier,
    /// kubeconfig context and file.
    pub access: KubeAccess,
    /// `--database-url`, parsed (password registered for redaction).
    pub database_url: Option<Arc<DatabaseUrl>>,
    /// `--engine`, when given (otherwise commands find the release's engine).
    pub engine: Option<Engine>,
    /// Output format.
    pub format: OutputFormat,
    /// Deadline for the whole operation.
    pub timeout: Duration,
    /// `--yes`.
    pub assume_yes: bool,
    /// Whether text output may be colored (for commands that print before they end).
    pub style: Style,
}

impl Config {
    /// Checks the global flags that clap could not check on its own.
    pub fn resolve(global: &GlobalArgs) -> Result<Config, Failure> {
        let database_url = match &global.database_url {
            Some(text) => Some(Arc::new(DatabaseUrl::parse(text)?)),
            None => None,
        };
        if let Some(context) = &global.context
            && (context.is_empty() || context.starts_with('-'))
        {
            return Err(
                Failure::usage(format!("--context {context:?} is not a context name"))
                    .hint("list contexts with `kubectl config get-contexts`"),
            );
        }
        if let Some(kubeconfig) = &global.kubeconfig
            && !kubeconfig.is_file()
        {
            return Err(Failure::usage(format!(
                "--kubeconfig {} does not exist or is not a file",
                kubeconfig.display()
            ))
            .hint("pass the path of a kubeconfig file, or leave it out to use KUBECONFIG or ~/.kube/config"));
        }
        Ok(Config {
            namespace: global.namespace.clone(),
            release: global.release.clone(),
            database: global.database.clone(),
            username: global.username.clone(),
            access: KubeAccess {
                context: global.context.clone(),
                kubeconfig: global.kubeconfig.clone(),
            },
            database_url,
            engine: global.engine,
            format: global.output,
            timeout: global.timeout,
            assume_yes: global.yes,
            style: Style::detect(global.color),
        })
    }

    /// The same settings aimed at another release run by `engine` (a move's new cluster).
    pub fn for_release(&self, release: ReleaseName, engine: Engine) -> Config {
        Config {
            release,
            engine: Some(engine),
            ..self.clone()
        }
    }

    /// kubectl for the target namespace.
    pub fn kube(&self) -> Kube {
        Kube::new(self.access.clone(), self.namespace.clone())
    }

    /// helm for the target namespace.
    pub fn helm(&self) -> Helm {
        Helm::new(self.access.clone(), self.namespace.clone())
    }

    /// Where SQL runs: the URL if given, else the primary pod named `pod`, run by `engine`.
    pub fn transport_for(&self, pod: &str, engine: Engine) -> Transport {
        match &self.database_url {
            Some(url) => Transport::Url(url.clone()),
            None => Transport::Pod {
                kube: self.kube(),
                pod: pod.to_string(),
                engine,
            },
        }
    }

    /// Asks before a destructive action: `--yes` answers; otherwise a terminal is asked; with
    /// no terminal the action is refused (exit 9).
    pub fn confirm(&self, action: &str) -> Result<(), Failure> {
        if self.assume_yes {
            return Ok(());
        }
        let refused = || {
            Failure::new(
                ExitCode::Refused,
                format!("refused to {action} without confirmation"),
            )
            .hint("re-run with --yes to confirm")
        };
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(refused());
        }
        eprint!("pgk8s: {action}? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        stdin.lock().read_line(&mut answer).map_err(|_| refused())?;
        match answer.trim() {
            "y" | "Y" | "yes" | "YES" | "Yes" => Ok(()),
            _ => Err(refused()),
        }
    }
}

//! Where psql runs and how it logs in: the [`Transport`] (psql inside the primary pod through
//! `kubectl exec`, or a local psql for `--database-url`), the role it logs in as, and the server
//! settings a session starts with.
//!
//! Passwords never reach argv: in the pod, psql reads the mounted Secret file (or a password
//! pgk8s holds, written to stdin ahead of the SQL); with `--database-url`, psql alone gets the
//! password in its environment.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::chart;
use crate::database_url::DatabaseUrl;
pub use crate::engine::Login;
use crate::engine::{Engine, InPodLogin};
use crate::error::Failure;
use crate::kube::Kube;
use crate::names::Identifier;
use crate::process::{Command, Tool};

/// Whether a session may write. Read-only sessions are enforced by the server
/// (`default_transaction_read_only`), so a dry run or a status check cannot change anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Reads only.
    ReadOnly,
    /// Reads and writes.
    ReadWrite,
}

impl Mode {
    /// Server settings for the session (`PGOPTIONS`): read-only when asked, and a
    /// `statement_timeout` of what the command's deadline leaves, so the server itself stops a
    /// statement that would run past `--timeout` — even if pgk8s is killed meanwhile. Being
    /// startup options, they survive the `RESET ALL` between migrations.
    fn options(self) -> Option<String> {
        let mut options = Vec::new();
        if self == Mode::ReadOnly {
            options.push("-c default_transaction_read_only=on".to_string());
        }
        if let Some(remaining) = crate::deadline::remaining() {
            options.push(format!(
                "-c statement_timeout={}",
                remaining.as_millis().max(1)
            ));
        }
        (!options.is_empty()).then(|| options.join(" "))
    }
}

/// Where psql runs.
#[derive(Clone)]
pub enum Transport {
    /// psql inside the primary pod, through `kubectl exec -i`.
    Pod {
        /// kubectl for the release's namespace.
        kube: Kube,
        /// The primary pod.
        pod: String,
        /// The engine that runs it (which container, how to log in).
        engine: Engine,
    },
    /// A local psql against `--database-url`.
    Url(Arc<DatabaseUrl>),
}

impl Transport {
    /// A command running `psql` as `login` on `database`, reading a script from stdin.
    pub fn psql(
        &self,
        login: Login,
        mode: Mode,
        database: &Identifier,
        username: &Identifier,
    ) -> Command {
        match self {
            Transport::Pod { kube, pod, engine } => {
                let login = engine.in_pod_login(login, username);
                let mut args: Vec<String> = PSQL_SCRIPT_FLAGS
                    .iter()
                    .map(|flag| flag.to_string())
                    .collect();
                args.extend([
                    "-U".into(),
                    login.user.clone(),
                    "-d".into(),
                    database.to_string(),
                ]);
                kube.exec(
                    pod,
                    engine.container(),
                    &in_pod_script(&login, mode, "psql", &args),
                )
            }
            Transport::Url(url) => {
                let mut command = Command::new(Tool::Psql)
                    .args(PSQL_SCRIPT_FLAGS)
                    .args(["-d", url.without_password()])
                    .env("PGAPPNAME", "pgk8s");
                if let Some(options) = mode.options() {
                    command = command.env("PGOPTIONS", options);
                }
                if let Some(password) = url.password() {
                    command = command.env("PGPASSWORD", password.expose_secret());
                }
                command
            }
        }
    }

    /// psql as `role` with `password`, on `database` (see [`PasswordLogin`]).
    pub fn psql_with_password(
        &self,
        role: &str,
        password: &SecretString,
        mode: Mode,
        database: &Identifier,
    ) -> PasswordLogin {
        match self {
            Transport::Pod { kube, pod, engine } => {
                let mut args: Vec<String> = PSQL_SCRIPT_FLAGS
                    .iter()
                    .map(|flag| flag.to_string())
                    .collect();
                args.extend(
                    engine
                        .password_login_args()
                        .iter()
                        .map(|arg| arg.to_string()),
                );
                args.extend(["-U".into(), role.into(), "-d".into(), database.to_string()]);
                let script = format!(
                    "IFS= read -r PGPASSWORD && export PGPASSWORD && {}",
                    program_script(mode, None, "psql", &args)
                );
                PasswordLogin {
                    command: kube.exec(pod, engine.container(), &script),
                    preamble: Some(password.clone()),
                }
            }
            Transport::Url(url) => {
                let mut command = Command::new(Tool::Psql)
                    .args(PSQL_SCRIPT_FLAGS)
                    .args(["-d", url.without_password(), "-U", role])
                    .env("PGAPPNAME", "pgk8s")
                    .env("PGPASSWORD", password.expose_secret());
                if let Some(options) = mode.options() {
                    command = command.env("PGOPTIONS", options);
                }
                PasswordLogin {
                    command,
                    preamble: None,
                }
            }
        }
    }

    /// A program other than psql (pg_dump, pg_restore, ...) run in the pod as `login`.
    pub fn in_pod(
        &self,
        login: Login,
        mode: Mode,
        username: &Identifier,
        program: &str,
        args: &[String],
    ) -> anyhow::Result<Command> {
        match self {
            Transport::Pod { kube, pod, engine } => {
                let login = engine.in_pod_login(login, username);
                Ok(kube.exec(
                    pod,
                    engine.container(),
                    &in_pod_script(&login, mode, program, args),
                ))
            }
            Transport::Url(_) => Err(Failure::usage(format!(
                "{program} runs inside the pod; --database-url cannot be used here"
            ))
            .hint("drop --database-url (and PGK8S_DATABASE_URL) for this command")
            .into()),
        }
    }

    /// The engine whose pod this is (None for `--database-url`).
    pub fn engine(&self) -> Option<Engine> {
        match self {
            Transport::Pod { engine, .. } => Some(*engine),
            Transport::Url(_) => None,
        }
    }

    /// Where SQL goes, for reports: `pod learnflow/postgresql-0` or the redacted URL.
    pub fn describe(&self) -> String {
        match self {
            Transport::Pod { kube, pod, .. } => format!("pod {}/{pod}", kube.namespace()),
            Transport::Url(url) => url.without_password().to_string(),
        }
    }
}

/// psql flags for a scripted session: no psqlrc, quiet, unaligned tuples with NUL-separated
/// fields, stop at the first error, script on stdin.
pub const PSQL_SCRIPT_FLAGS: [&str; 9] = [
    "-X",
    "-q",
    "-A",
    "-t",
    "-z",
    "-v",
    "ON_ERROR_STOP=1",
    "-f",
    "-",
];

/// The role a login uses and the Secret key (file in the pod) holding its password.
///
/// The chart keeps the superuser's password under its own key, so `-u postgres` reads
/// `postgres-password` like the superuser login does.
pub fn login_user(login: Login, username: &Identifier) -> (&str, &'static str) {
    match login {
        Login::App => (username.as_str(), chart::password_key(username.as_str())),
        Login::Superuser => (chart::SUPERUSER, chart::SUPERUSER_PASSWORD_KEY),
    }
}

/// A psql that logs in with a password pgk8s holds (read from the Secret) rather than the file
/// mounted in the pod, which the kubelet refreshes only every minute or so: the password is
/// written to the session's stdin ahead of the SQL (`preamble`), or for `--database-url` set in
/// psql's own environment. Never argv.
pub struct PasswordLogin {
    /// The command to open a session with.
    pub command: Command,
    /// A first line for stdin, read by the in-pod shell before psql starts.
    pub preamble: Option<SecretString>,
}

/// The `sh -c` script that runs `program` in the pod logged in as `login` says: with the
/// password read from the mounted Secret file (the value never leaves the pod and never appears
/// in any argv), or over the local socket that trusts the container's user.
pub fn in_pod_script(login: &InPodLogin, mode: Mode, program: &str, args: &[String]) -> String {
    let script = program_script(mode, login.role.as_deref(), program, args);
    match &login.password_file {
        Some(file) => format!("PGPASSWORD=\"$(cat {file})\" {script}"),
        None => script,
    }
}

/// `PGAPPNAME=pgk8s [PGOPTIONS=…] exec PROGRAM ARGS…`, shell-quoted; `role` becomes the
/// session's role from its start (`-c role=…`, which `RESET ROLE` returns to).
fn program_script(mode: Mode, role: Option<&str>, program: &str, args: &[String]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .map(|arg| {
            shlex::try_quote(arg)
                .map(|q| q.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let mut options: Vec<String> = mode.options().into_iter().collect();
    if let Some(role) = role {
        options.push(format!("-c role={role}"));
    }
    let options = if options.is_empty() {
        String::new()
    } else {
        format!("PGOPTIONS='{}' ", options.join(" "))
    };
    format!(
        "PGAPPNAME=pgk8s {options}exec {program} {}",
        quoted.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_pod_script_reads_the_password_file() {
        let superuser = Engine::Bitnami.in_pod_login(Login::Superuser, &"app".parse().unwrap());
        let script = in_pod_script(
            &superuser,
            Mode::ReadWrite,
            "psql",
            &[
                "-U".into(),
                "postgres".into(),
                "-d".into(),
                "learn flow".into(),
            ],
        );
        assert_eq!(
            script,
            "PGPASSWORD=\"$(cat /opt/bitnami/postgresql/secrets/postgres-password)\" PGAPPNAME=pgk8s exec psql -U postgres -d 'learn flow'"
        );
        let app = Engine::Bitnami.in_pod_login(Login::App, &"app".parse().unwrap());
        let read_only = in_pod_script(&app, Mode::ReadOnly, "psql", &[]);
        assert!(
            read_only.contains("PGOPTIONS='-c default_transaction_read_only=on' exec psql"),
            "{read_only}"
        );
    }
}

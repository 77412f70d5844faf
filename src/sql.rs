//! SQL over psql: where psql runs (the [`Transport`]) and how pgk8s talks to it (a [`Session`]).
//!
//! A session is one psql process reading statements on stdin. pgk8s writes a batch, then an
//! `\echo` of a random marker, and reads result rows from stdout until the marker comes back. So a
//! whole migration run — read history, take the lock, apply every file, re-read history — is one
//! `kubectl exec`. Rows are unaligned, tuples only, fields separated by NUL (`-A -t -z`).
//! `ON_ERROR_STOP` makes psql exit at the first error; the open transaction then rolls back and
//! the session's advisory lock is released by the server.
//!
//! Passwords never reach argv: in the pod, psql reads the mounted Secret file; with
//! `--database-url`, the password goes to a private temporary passfile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};

use crate::chart;
use crate::database_url::DatabaseUrl;
use crate::error::{ExitCode, Failure};
use crate::kube::Kube;
use crate::names::Identifier;
use crate::process::{Command, ProcessError, Running, Tool};

/// How often to retry a database that does not accept connections yet.
const CONNECT_RETRY: Duration = Duration::from_secs(2);

/// Which of the chart's two roles a session logs in as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login {
    /// The application user, owner of the application database.
    App,
    /// The `postgres` superuser.
    Superuser,
}

impl Login {
    /// The superuser when `as_admin` (`--as-admin`), else the application user.
    pub fn app_or_admin(as_admin: bool) -> Login {
        if as_admin {
            Login::Superuser
        } else {
            Login::App
        }
    }
}

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
            Transport::Pod { kube, pod } => {
                let (user, key) = login_user(login, username);
                let mut args: Vec<String> = PSQL_SCRIPT_FLAGS
                    .iter()
                    .map(|flag| flag.to_string())
                    .collect();
                args.extend(["-U".into(), user.into(), "-d".into(), database.to_string()]);
                kube.exec(pod, &in_pod_script(key, mode, "psql", &args))
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
            Transport::Pod { kube, pod } => {
                let mut args: Vec<String> = PSQL_SCRIPT_FLAGS
                    .iter()
                    .map(|flag| flag.to_string())
                    .collect();
                args.extend(["-U".into(), role.into(), "-d".into(), database.to_string()]);
                let script = format!(
                    "IFS= read -r PGPASSWORD && export PGPASSWORD && {}",
                    program_script(mode, "psql", &args)
                );
                PasswordLogin {
                    command: kube.exec(pod, &script),
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
            Transport::Pod { kube, pod } => {
                let (_, key) = login_user(login, username);
                Ok(kube.exec(pod, &in_pod_script(key, mode, program, args)))
            }
            Transport::Url(_) => Err(Failure::usage(format!(
                "{program} runs inside the pod; --database-url cannot be used here"
            ))
            .hint("drop --database-url (and PGK8S_DATABASE_URL) for this command")
            .into()),
        }
    }

    /// Where SQL goes, for reports: `pod learnflow/postgresql-0` or the redacted URL.
    pub fn describe(&self) -> String {
        match self {
            Transport::Pod { kube, pod } => format!("pod {}/{pod}", kube.namespace()),
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

/// The `sh -c` script that runs `program` in the pod with the password read from the mounted
/// Secret file: the value never leaves the pod and never appears in any argv.
pub fn in_pod_script(password_key: &str, mode: Mode, program: &str, args: &[String]) -> String {
    format!(
        "PGPASSWORD=\"$(cat {}/{password_key})\" {}",
        chart::SECRETS_DIR,
        program_script(mode, program, args)
    )
}

/// `PGAPPNAME=pgk8s [PGOPTIONS=…] exec PROGRAM ARGS…`, shell-quoted.
fn program_script(mode: Mode, program: &str, args: &[String]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .map(|arg| {
            shlex::try_quote(arg)
                .map(|q| q.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let options = mode
        .options()
        .map(|options| format!("PGOPTIONS='{options}' "))
        .unwrap_or_default();
    format!(
        "PGAPPNAME=pgk8s {options}exec {program} {}",
        quoted.join(" ")
    )
}

/// A failure reported by psql itself.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// psql could not connect or log in.
    #[error("database connection failed: {message}")]
    Connect {
        /// psql's message.
        message: String,
    },
    /// The server refused the login (wrong password, unknown role or database): permanent, so
    /// never retried.
    #[error("database login failed: {message}")]
    Authentication {
        /// psql's message.
        message: String,
    },
    /// The pod psql was to run in does not exist.
    #[error("database connection failed: pod {pod} does not exist")]
    NoPod {
        /// The pod name.
        pod: String,
    },
    /// A statement failed; psql stopped.
    #[error("{message}")]
    Statement {
        /// Line of the session's input where psql stopped, when it said.
        line: Option<usize>,
        /// The PostgreSQL error, e.g. `ERROR:  relation "x" does not exist`.
        message: String,
        /// The lines psql printed after the error (statement context).
        context: Vec<String>,
    },
}

impl SqlError {
    /// What to do about it, where the error alone says.
    pub fn hint(&self) -> Option<String> {
        match self {
            SqlError::Authentication { .. } => Some(
                "pgk8s logs in with the password the pod mounts from the release's Secret (key `password` for the app user, \
                 `postgres-password` for postgres); a Secret replaced after the data volume was initialised no longer matches: \
                 restore the original Secret, or finish an interrupted `pgk8s rotate-password`"
                    .to_string(),
            ),
            _ => None,
        }
    }

    /// Exit code: connection problems are 8, statement errors 7.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            SqlError::Connect { .. } | SqlError::NoPod { .. } | SqlError::Authentication { .. } => {
                ExitCode::DatabaseUnreachable
            }
            SqlError::Statement { .. } => ExitCode::MigrationFailed,
        }
    }
}

/// One row of a result: its fields as text (NULL is the empty string).
pub type Row = Vec<String>;

/// What [`Session::pipeline`] got back.
pub struct Pipelined {
    /// The rows of each batch that completed, in order.
    pub results: Vec<Vec<Row>>,
    /// The input line on which each batch started (psql reports errors by line).
    pub first_lines: Vec<usize>,
    /// Why the batch after the completed ones failed, if one did.
    pub failure: Option<anyhow::Error>,
}

/// A live psql process pgk8s converses with.
pub struct Session {
    /// None once psql has been waited for after a failure.
    running: Option<Running>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    marker_prefix: String,
    sequence: u64,
    lines_sent: usize,
    /// This session's entry among the open sessions, until it is closed or psql has exited. A
    /// session dropped with psql still running (its command was stopped) stays registered, so
    /// that [`terminate_open_sessions`] can end it on the server.
    registration: Option<u64>,
}

/// A session that has not been closed: how to reach its server again, and its backend.
struct OpenSession {
    backend_pid: u32,
    reopen: Command,
    preamble: Option<SecretString>,
}

/// Sessions opened and not closed yet, by registration number.
static OPEN_SESSIONS: std::sync::Mutex<Vec<(u64, OpenSession)>> = std::sync::Mutex::new(Vec::new());
static NEXT_REGISTRATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How long ending the sessions of a stopped command may take.
const TERMINATE_WAIT: Duration = Duration::from_secs(5);

fn open_sessions() -> std::sync::MutexGuard<'static, Vec<(u64, OpenSession)>> {
    OPEN_SESSIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn register(session: OpenSession) -> u64 {
    let number = NEXT_REGISTRATION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    open_sessions().push((number, session));
    number
}

/// Ends, on the server, every session a stopped command left open (`pg_terminate_backend` from
/// a new connection with the same login): killing psql's client does not stop a statement the
/// server is running for it. Bounded by [`TERMINATE_WAIT`]; failures are only logged.
pub async fn terminate_open_sessions() {
    let sessions: Vec<OpenSession> = open_sessions()
        .drain(..)
        .map(|(_, session)| session)
        .collect();
    let terminate_all = async {
        for session in sessions {
            let terminated = async {
                let mut side =
                    Session::open_with_preamble(session.reopen, session.preamble.as_ref()).await?;
                side.query(&format!(
                    "SELECT pg_terminate_backend({});",
                    session.backend_pid
                ))
                .await?;
                side.close().await
            };
            match terminated.await {
                Ok(()) => tracing::info!(
                    "ended the interrupted database session (backend {})",
                    session.backend_pid
                ),
                Err(error) => tracing::warn!(
                    "could not end database session {}: {error:#}",
                    session.backend_pid
                ),
            }
        }
    };
    let _ = tokio::time::timeout(TERMINATE_WAIT, terminate_all).await;
}

impl Session {
    /// Starts psql and checks that it connected.
    pub async fn open(command: Command) -> anyhow::Result<Session> {
        Session::open_with_preamble(command, None).await
    }

    /// Starts psql logging in with a password pgk8s holds, and checks that it connected.
    pub async fn open_with_password(login: PasswordLogin) -> anyhow::Result<Session> {
        Session::open_with_preamble(login.command, login.preamble.as_ref()).await
    }

    async fn open_with_preamble(
        command: Command,
        preamble: Option<&SecretString>,
    ) -> anyhow::Result<Session> {
        let command_again = command.clone();
        let mut running = command.stdin_piped().spawn()?;
        let mut stdin = running
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("psql has no stdin"))?;
        if let Some(password) = preamble {
            let line = format!("{}\n", password.expose_secret());
            // A failed write means the child is gone; the first query reports why.
            let _ = stdin.write_all(line.as_bytes()).await;
        }
        let stdout = running
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("psql has no stdout"))?;
        let nonce: u64 = rand::random();
        let mut session = Session {
            running: Some(running),
            stdin,
            stdout: BufReader::new(stdout),
            marker_prefix: format!("__pgk8s_{nonce:016x}_"),
            sequence: 0,
            lines_sent: 0,
            registration: None,
        };
        let rows = session.query("SELECT pg_backend_pid();").await?;
        let backend_pid = rows
            .first()
            .and_then(|row| row.first())
            .and_then(|pid| pid.parse().ok());
        if let Some(backend_pid) = backend_pid {
            session.registration = Some(register(OpenSession {
                backend_pid,
                reopen: command_again,
                preamble: preamble.cloned(),
            }));
        }
        Ok(session)
    }

    /// Opens a session, retrying while the database does not accept connections yet, up to
    /// `wait`. Each retry is a new psql (a new exec); a healthy database costs one.
    pub async fn open_when_ready(
        make_command: impl Fn() -> Command,
        wait: Duration,
    ) -> anyhow::Result<Session> {
        crate::deadline::step("waiting for the database to accept connections");
        let deadline = Instant::now() + wait;
        loop {
            match Session::open(make_command()).await {
                Ok(session) => return Ok(session),
                Err(error) if Instant::now() + CONNECT_RETRY < deadline && is_retryable(&error) => {
                    tracing::info!("database not ready yet ({error:#}); retrying");
                    tokio::time::sleep(CONNECT_RETRY).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Runs `sql` (one or more statements) and returns the rows it printed.
    pub async fn query(&mut self, sql: &str) -> anyhow::Result<Vec<Row>> {
        let mut pipelined = self.pipeline(&[sql]).await;
        match pipelined.failure {
            Some(error) => Err(error),
            None => Ok(pipelined.results.pop().unwrap_or_default()),
        }
    }

    /// Sends every batch at once and then reads their results in order: one round trip for all
    /// of them, however slow the path to the pod. psql stops at the first failing batch
    /// (`ON_ERROR_STOP`), so the results hold the batches that completed and `failure` says why
    /// the next one did not.
    pub async fn pipeline(&mut self, batches: &[&str]) -> Pipelined {
        let mut input = String::new();
        let mut markers = Vec::with_capacity(batches.len());
        let mut first_lines = Vec::with_capacity(batches.len());
        for sql in batches {
            self.sequence += 1;
            let marker = format!("{}{}__", self.marker_prefix, self.sequence);
            first_lines.push(self.lines_sent + 1);
            let start = input.len();
            input.push_str(sql);
            if !sql.ends_with('\n') {
                input.push('\n');
            }
            input.push_str(&format!("\\echo {marker}\n"));
            self.lines_sent += input[start..].matches('\n').count();
            markers.push(marker);
        }
        let stdin = &mut self.stdin;
        let stdout = &mut self.stdout;
        // Write and read at once: a batch that prints a lot must not block on a full pipe while
        // we are still writing.
        let write = async {
            stdin.write_all(input.as_bytes()).await?;
            stdin.flush().await
        };
        let read = async {
            let mut results = Vec::with_capacity(markers.len());
            for marker in &markers {
                match read_until_marker(stdout, marker).await {
                    Some(rows) => results.push(rows),
                    None => break,
                }
            }
            results
        };
        let (written, results) = tokio::join!(write, read);
        let failure = if results.len() < markers.len() {
            Some(self.failure().await)
        } else {
            written.err().map(anyhow::Error::from)
        };
        Pipelined {
            results,
            first_lines,
            failure,
        }
    }

    /// Runs SQL read from `reader` (a file too large to hold), followed by `suffix`, and returns
    /// the rows it printed. The file crosses to psql in chunks while its output is read.
    pub async fn query_streamed<R>(
        &mut self,
        reader: &mut R,
        suffix: &str,
    ) -> anyhow::Result<Vec<Row>>
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        self.sequence += 1;
        let marker = format!("{}{}__", self.marker_prefix, self.sequence);
        let trailer = format!("{suffix}\\echo {marker}\n");
        let stdin = &mut self.stdin;
        let stdout = &mut self.stdout;
        let write = async {
            let mut lines = 0;
            let mut buffer = vec![0u8; 256 * 1024];
            loop {
                let read = tokio::io::AsyncReadExt::read(reader, &mut buffer).await?;
                if read == 0 {
                    break;
                }
                lines += buffer[..read].iter().filter(|byte| **byte == b'\n').count();
                stdin.write_all(&buffer[..read]).await?;
            }
            stdin.write_all(trailer.as_bytes()).await?;
            stdin.flush().await?;
            Ok::<_, std::io::Error>(lines + trailer.matches('\n').count())
        };
        let (written, rows) = tokio::join!(write, read_until_marker(stdout, &marker));
        match (rows, written) {
            (Some(rows), Ok(lines)) => {
                self.lines_sent += lines;
                Ok(rows)
            }
            (Some(_), Err(error)) => Err(error.into()),
            (None, _) => Err(self.failure().await),
        }
    }

    /// Number of input lines sent so far; psql reports errors by input line.
    pub fn lines_sent(&self) -> usize {
        self.lines_sent
    }

    /// Ends the session cleanly.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.unregister();
        self.stdin.write_all(b"\\q\n").await.ok();
        self.stdin.shutdown().await.ok();
        if let Some(running) = self.running.take() {
            running.wait().await.map_err(explain_exit)?;
        }
        Ok(())
    }

    fn unregister(&mut self) {
        if let Some(number) = self.registration.take() {
            open_sessions().retain(|(registered, _)| *registered != number);
        }
    }

    /// psql stopped before the marker: wait for it and explain why from its stderr.
    async fn failure(&mut self) -> anyhow::Error {
        self.unregister();
        let _ = self.stdin.shutdown().await;
        let Some(running) = self.running.take() else {
            return anyhow::anyhow!("psql session used after it failed");
        };
        let command = running.command().to_string();
        match running.wait_status().await {
            Ok((status, stderr_tail)) if status.success() && stderr_tail.is_empty() => {
                anyhow::anyhow!(
                    "psql ended the session before answering, without reporting an error (`{command}`)"
                )
            }
            Ok((status, stderr_tail)) => explain_exit(ProcessError::Failed {
                command,
                status,
                stderr_tail,
                stdout: Vec::new(),
            }),
            Err(error) => error.into(),
        }
    }
}

/// Reads result lines until `marker`; None when psql's stdout ended first.
async fn read_until_marker(stdout: &mut BufReader<ChildStdout>, marker: &str) -> Option<Vec<Row>> {
    let mut rows = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdout.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let text = String::from_utf8_lossy(&line);
        if text == marker {
            return Some(rows);
        }
        rows.push(text.split('\0').map(str::to_string).collect());
    }
}

/// Turns a failed psql (or kubectl exec) into the right error.
pub fn explain_exit(error: ProcessError) -> anyhow::Error {
    let tail = error.stderr_tail().to_vec();
    if let Some(index) = tail
        .iter()
        .position(|line| line.contains("ERROR:") || line.contains("FATAL:  "))
    {
        let line_text = &tail[index];
        if line_text.starts_with("psql: error:") || line_text.contains("connection to server") {
            return connect_error(line_text).into();
        }
        return SqlError::Statement {
            line: error_line_number(line_text),
            message: clean_psql_message(line_text),
            context: tail[index + 1..].to_vec(),
        }
        .into();
    }
    if let Some(line) = tail
        .iter()
        .find(|line| line.starts_with("psql: error:") || line.contains("could not connect"))
    {
        return connect_error(line).into();
    }
    let stderr = error.stderr_text();
    if let Some(failure) = crate::kube::cluster_failure(&stderr) {
        return anyhow::Error::new(error).context(failure);
    }
    if let Some(pod) = stderr
        .lines()
        .find(|line| line.contains("NotFound") && line.contains("pods \""))
        .and_then(|line| line.split('"').nth(1))
    {
        return anyhow::Error::new(error).context(SqlError::NoPod {
            pod: pod.to_string(),
        });
    }
    for (needle, what) in [
        (
            "container not found",
            "the PostgreSQL container is not running",
        ),
        ("is not running", "the PostgreSQL container is not running"),
        (
            "cannot exec into a container",
            "the PostgreSQL container is not running",
        ),
        (
            "unable to upgrade connection",
            "the PostgreSQL container is not running",
        ),
    ] {
        if stderr.contains(needle) {
            return anyhow::Error::new(error).context(
                Failure::new(ExitCode::DatabaseUnreachable, format!("database connection failed: {what}"))
                    .hint("check the release with `pgk8s verify` (deploy it with `pgk8s deploy`), and -n/--release"),
            );
        }
    }
    error.into()
}

/// Messages of login failures that no amount of waiting heals.
const PERMANENT_LOGIN_FAILURES: [&str; 4] = [
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "authentication failed",
];

/// A connection failure: permanent when the server refused the login itself.
fn connect_error(line: &str) -> SqlError {
    let message = clean_psql_message(line);
    if PERMANENT_LOGIN_FAILURES
        .iter()
        .any(|needle| message.contains(needle))
    {
        SqlError::Authentication { message }
    } else {
        SqlError::Connect { message }
    }
}

/// Whether opening a session may succeed if tried again shortly.
fn is_retryable(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<SqlError>(),
        Some(SqlError::Connect { .. })
    ) || error
        .downcast_ref::<Failure>()
        .is_some_and(|failure| failure.code == ExitCode::DatabaseUnreachable)
}

fn error_line_number(line: &str) -> Option<usize> {
    // psql:<stdin>:42: ERROR:  ...
    let rest = line.strip_prefix("psql:")?;
    let mut parts = rest.splitn(3, ':');
    parts.next()?;
    parts.next()?.trim().parse().ok()
}

fn clean_psql_message(line: &str) -> String {
    let message = match line.find("ERROR:").or_else(|| line.find("FATAL:")) {
        Some(start) => &line[start..],
        None => line.trim_start_matches("psql: error: "),
    };
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn failed(stderr: &[&str]) -> ProcessError {
        ProcessError::Failed {
            command: "kubectl exec".to_string(),
            status: std::process::ExitStatus::from_raw(3 << 8),
            stderr_tail: stderr.iter().map(|line| line.to_string()).collect(),
            stdout: Vec::new(),
        }
    }

    #[test]
    fn the_in_pod_script_reads_the_password_file() {
        let script = in_pod_script(
            "postgres-password",
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
        let read_only = in_pod_script("password", Mode::ReadOnly, "psql", &[]);
        assert!(
            read_only.contains("PGOPTIONS='-c default_transaction_read_only=on' exec psql"),
            "{read_only}"
        );
    }

    #[test]
    fn statement_errors_keep_line_and_message() {
        let error = explain_exit(failed(&[
            "psql:<stdin>:42: ERROR:  syntax error at or near \"CRATE\"",
            "LINE 1: CRATE TABLE x();",
        ]));
        let Some(SqlError::Statement {
            line,
            message,
            context,
        }) = error.downcast_ref::<SqlError>()
        else {
            panic!("{error:#}")
        };
        assert_eq!(*line, Some(42));
        assert_eq!(message, "ERROR: syntax error at or near \"CRATE\"");
        assert_eq!(context, &["LINE 1: CRATE TABLE x();"]);
    }

    #[test]
    fn connection_errors_are_exit_8() {
        let error = explain_exit(failed(&[
            "psql: error: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"postgres\"",
        ]));
        assert_eq!(
            crate::error::classify(&error).0,
            ExitCode::DatabaseUnreachable
        );
        let missing_pod = explain_exit(failed(&[
            "Error from server (NotFound): pods \"postgresql-0\" not found",
        ]));
        assert_eq!(
            crate::error::classify(&missing_pod).0,
            ExitCode::DatabaseUnreachable
        );
        assert!(matches!(
            missing_pod.downcast_ref::<SqlError>(),
            Some(SqlError::NoPod { pod }) if pod == "postgresql-0"
        ));
    }
}

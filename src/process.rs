//! The only module that spawns processes.
//!
//! [`Command`] is a small builder (program, arguments, environment, stdin, timeout) with three
//! ways to run: [`Command::capture`] collects both pipes, [`Command::spawn`] hands back piped
//! stdin/stdout for streaming (psql sessions, dumps) while stderr is drained aside, and
//! [`Command::interactive`] inherits the terminal. Both pipes are always read concurrently, so a
//! chatty child never blocks on a full stderr pipe. Children are killed when their handle is
//! dropped: on timeout and when Ctrl-C drops the running command.
//!
//! Secret arguments display as `<redacted>`, environment values are never displayed, and every
//! line of child stderr kept for an error passes through [`crate::redact::scrub`]. pgk8s itself
//! keeps secrets out of argv altogether; the redaction is the second line of defence.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::task::JoinHandle;

use crate::redact::{REDACTED, scrub};

/// How many lines of a child's stderr an error keeps.
const STDERR_TAIL_LINES: usize = 20;
/// Longest stderr line kept; the rest is cut so one runaway line cannot flood an error.
const STDERR_LINE_MAX: usize = 1000;

/// An external program pgk8s drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// The Kubernetes CLI.
    Kubectl,
    /// The Helm CLI, version 3 or 4.
    Helm,
    /// A local psql, used only with `--database-url`.
    Psql,
}

impl Tool {
    /// The program name searched for on PATH.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Kubectl => "kubectl",
            Tool::Helm => "helm",
            Tool::Psql => "psql",
        }
    }

    /// The environment variable that names the program explicitly.
    pub fn override_variable(self) -> &'static str {
        match self {
            Tool::Kubectl => "PGK8S_KUBECTL",
            Tool::Helm => "PGK8S_HELM",
            Tool::Psql => "PGK8S_PSQL",
        }
    }

    /// Where to get the tool.
    pub fn install_hint(self) -> String {
        let how = match self {
            Tool::Kubectl => {
                "install kubectl 1.25 or newer (https://kubernetes.io/docs/tasks/tools/)"
            }
            Tool::Helm => "install helm 3 or 4 (https://helm.sh/docs/intro/install/)",
            Tool::Psql => "install the PostgreSQL client (e.g. apt-get install postgresql-client)",
        };
        format!("{how}, or set {} to its path", self.override_variable())
    }

    /// Finds the program: the override variable if set, else PATH.
    pub fn locate(self) -> Result<PathBuf, ProcessError> {
        let wanted = std::env::var_os(self.override_variable())
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| OsString::from(self.name()));
        which::which(&wanted).map_err(|_| ProcessError::NotFound { tool: self })
    }
}

/// One argument: shown as typed, or hidden.
#[derive(Clone)]
pub enum Arg {
    /// An ordinary argument.
    Plain(String),
    /// A value that must never be displayed; shown as `<redacted>`.
    Secret(SecretString),
}

/// What a child reads on stdin.
#[derive(Clone)]
enum Input {
    Null,
    Bytes(Vec<u8>),
    Piped,
}

/// A process to run. Build it, then call one of the run methods.
#[derive(Clone)]
pub struct Command {
    tool: Tool,
    /// Set only by unit tests, which run `sh` in place of a real tool.
    program: Option<PathBuf>,
    args: Vec<Arg>,
    env: Vec<(String, OsString)>,
    input: Input,
    timeout: Option<Duration>,
    forward_signals: bool,
}

/// What a finished command printed.
#[derive(Debug, Default)]
pub struct Captured {
    /// Everything the child wrote to stdout.
    pub stdout: Vec<u8>,
    /// The child's stderr, scrubbed.
    pub stderr: String,
}

impl Captured {
    /// stdout as text (lossy), scrubbed of secrets.
    pub fn stdout_text(&self) -> String {
        scrub(&String::from_utf8_lossy(&self.stdout)).into_owned()
    }
}

impl Command {
    /// A command that runs `tool`, located when it is run.
    pub fn new(tool: Tool) -> Command {
        Command {
            tool,
            program: None,
            args: Vec::new(),
            env: Vec::new(),
            input: Input::Null,
            timeout: None,
            forward_signals: false,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Command {
        self.args.push(Arg::Plain(arg.into()));
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args
            .extend(args.into_iter().map(|arg| Arg::Plain(arg.into())));
        self
    }

    /// Appends an argument that is displayed as `<redacted>` everywhere.
    pub fn secret_arg(mut self, secret: SecretString) -> Command {
        self.args.push(Arg::Secret(secret));
        self
    }

    /// Sets an environment variable for the child. Values are never displayed or logged.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<OsString>) -> Command {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Feeds `bytes` to the child's stdin, then closes it.
    pub fn stdin_bytes(mut self, bytes: Vec<u8>) -> Command {
        self.input = Input::Bytes(bytes);
        self
    }

    /// Gives [`Command::spawn`]'s caller a pipe to the child's stdin.
    pub fn stdin_piped(mut self) -> Command {
        self.input = Input::Piped;
        self
    }

    /// Kills the child and fails with [`ProcessError::TimedOut`] after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Command {
        self.timeout = Some(timeout);
        self
    }

    /// Lets the child clean up when pgk8s is interrupted: it runs in its own process group (so a
    /// terminal's Ctrl-C reaches it once, through pgk8s), receives the SIGINT or SIGTERM pgk8s
    /// gets, and is given time to exit (see [`crate::interrupt`]) instead of being killed.
    pub fn forward_signals(mut self) -> Command {
        self.forward_signals = true;
        self
    }

    /// Runs to completion, collecting stdout and stderr; a non-zero exit is an error.
    ///
    /// The command's deadline (its own timeout, or what the command's `--timeout` leaves, the
    /// sooner) is enforced here — except for a child that gets signals forwarded (helm), which
    /// its own `--timeout` bounds and which must be left to roll back.
    pub async fn capture(self) -> Result<Captured, ProcessError> {
        let shown = self.to_string();
        let own_timeout = self.timeout;
        // Until the command is stopped at the deadline (plus its grace): a child started to
        // diagnose a timeout still gets to report.
        let deadline = if self.forward_signals {
            None
        } else {
            crate::deadline::remaining().map(|left| left + crate::deadline::REPORT_GRACE)
        };
        let mut running = self.spawn()?;
        let stdout = running.stdout.take();
        let collect = async {
            let mut bytes = Vec::new();
            if let Some(mut stdout) = stdout {
                stdout
                    .read_to_end(&mut bytes)
                    .await
                    .map_err(|source| ProcessError::Io {
                        command: shown.clone(),
                        source,
                    })?;
            }
            let (status, stderr_tail) = running.wait_status().await?;
            Ok::<_, ProcessError>((status, stderr_tail, bytes))
        };
        let limit = match (own_timeout, deadline) {
            (Some(own), Some(left)) if left < own => Some((left, true)),
            (Some(own), _) => Some((own, false)),
            (None, Some(left)) => Some((left, true)),
            (None, None) => None,
        };
        let (status, stderr_tail, stdout) =
            match limit {
                Some((limit, from_deadline)) => tokio::time::timeout(limit, collect)
                    .await
                    .map_err(|_| match from_deadline {
                        true => ProcessError::Deadline {
                            command: shown.clone(),
                        },
                        false => ProcessError::TimedOut {
                            command: shown.clone(),
                            after: limit,
                        },
                    })??,
                None => collect.await?,
            };
        if !status.success() {
            return Err(ProcessError::Failed {
                command: shown,
                status,
                stderr_tail,
                stdout,
            });
        }
        Ok(Captured {
            stdout,
            stderr: stderr_tail.join("\n"),
        })
    }

    /// Starts the child with stdout piped and stderr drained in the background.
    ///
    /// The caller streams through [`Running::stdin`] and [`Running::stdout`], then calls
    /// [`Running::wait`]. The timeout, if any, is the caller's to enforce around its streaming.
    pub fn spawn(self) -> Result<Running, ProcessError> {
        let shown = self.to_string();
        tracing::debug!("running: {shown}");
        let mut command = self.std_command()?;
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command.stdin(match self.input {
            Input::Null => Stdio::null(),
            Input::Bytes(_) | Input::Piped => Stdio::piped(),
        });
        if self.forward_signals {
            command.process_group(0);
        }
        let mut child = command.spawn().map_err(|source| ProcessError::Spawn {
            command: shown.clone(),
            source,
        })?;
        let forwarded = match (self.forward_signals, child.id()) {
            (true, Some(pid)) => Some(crate::interrupt::forward_to(pid)),
            _ => None,
        };
        let mut stdin = child.stdin.take();
        if let Input::Bytes(bytes) = self.input
            && let Some(mut pipe) = stdin.take()
        {
            // A separate task, so a child that answers before reading everything cannot
            // deadlock against us. A child that exits early closes the pipe: not our error.
            tokio::spawn(async move {
                let _ = pipe.write_all(&bytes).await;
                let _ = pipe.shutdown().await;
            });
        }
        let stderr_task = child
            .stderr
            .take()
            .map(|stderr| tokio::spawn(drain_stderr(stderr)));
        let stdout = child.stdout.take();
        Ok(Running {
            command: shown,
            child,
            stdin,
            stdout,
            stderr_task,
            _forwarded: forwarded,
        })
    }

    /// Runs with the terminal's stdin, stdout and stderr; returns the child's exit status.
    pub async fn interactive(self) -> Result<ExitStatus, ProcessError> {
        let shown = self.to_string();
        tracing::debug!("running: {shown}");
        let mut command = self.std_command()?;
        command
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().map_err(|source| ProcessError::Spawn {
            command: shown.clone(),
            source,
        })?;
        child.wait().await.map_err(|source| ProcessError::Io {
            command: shown,
            source,
        })
    }

    fn std_command(&self) -> Result<tokio::process::Command, ProcessError> {
        let program = match &self.program {
            Some(program) => program.clone(),
            None => self.tool.locate()?,
        };
        let mut command = tokio::process::Command::new(program);
        for arg in &self.args {
            match arg {
                Arg::Plain(value) => command.arg(value),
                Arg::Secret(secret) => command.arg(secret.expose_secret()),
            };
        }
        // A child inherits our environment minus anything holding a secret (such as
        // PGK8S_DATABASE_URL): secrets reach children only through stdin or files.
        for (name, value) in std::env::vars_os() {
            let value = value.to_string_lossy();
            if scrub(&value) != value {
                command.env_remove(name);
            }
        }
        command.envs(self.env.iter().map(|(name, value)| (name, value)));
        command.kill_on_drop(true);
        Ok(command)
    }
}

/// The command line as a person could paste it: shell-quoted, secrets as `<redacted>`, no
/// environment values.
impl fmt::Display for Command {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = vec![self.tool.name().to_string()];
        for arg in &self.args {
            words.push(match arg {
                Arg::Plain(value) => quote(value),
                Arg::Secret(_) => REDACTED.to_string(),
            });
        }
        for (name, _) in &self.env {
            words.insert(0, format!("{name}=…"));
        }
        formatter.write_str(&scrub(&words.join(" ")))
    }
}

/// Debug is as safe as Display: it delegates to it.
impl fmt::Debug for Command {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Command({self})")
    }
}

/// A started child. Drop it to kill it.
pub struct Running {
    command: String,
    child: Child,
    /// The child's stdin, when the command was built with [`Command::stdin_piped`].
    pub stdin: Option<ChildStdin>,
    /// The child's stdout.
    pub stdout: Option<ChildStdout>,
    stderr_task: Option<JoinHandle<Vec<String>>>,
    /// Keeps signals forwarded to the child while it runs.
    _forwarded: Option<crate::interrupt::Forwarded>,
}

impl Running {
    /// The displayed command line, for errors.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Waits for the child; a non-zero exit is an error carrying the stderr tail.
    pub async fn wait(self) -> Result<(), ProcessError> {
        let command = self.command.clone();
        let (status, stderr_tail) = self.wait_status().await?;
        if status.success() {
            Ok(())
        } else {
            Err(ProcessError::Failed {
                command,
                status,
                stderr_tail,
                stdout: Vec::new(),
            })
        }
    }

    /// Waits for the child and returns its status with the last lines of its stderr.
    pub async fn wait_status(mut self) -> Result<(ExitStatus, Vec<String>), ProcessError> {
        drop(self.stdin.take());
        let status = self.child.wait().await.map_err(|source| ProcessError::Io {
            command: self.command.clone(),
            source,
        })?;
        let stderr_tail = match self.stderr_task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => Vec::new(),
        };
        Ok((status, stderr_tail))
    }
}

/// Reads stderr to the end, logging each line at trace level and keeping a scrubbed tail.
async fn drain_stderr(stderr: ChildStderr) -> Vec<String> {
    let mut reader = BufReader::new(stderr);
    let mut tail = VecDeque::with_capacity(STDERR_TAIL_LINES);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let mut text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            continue;
        }
        if text.len() > STDERR_LINE_MAX {
            let cut = (0..=STDERR_LINE_MAX)
                .rev()
                .find(|index| text.is_char_boundary(*index))
                .unwrap_or(0);
            text.truncate(cut);
            text.push('…');
        }
        let text = scrub(&text).into_owned();
        tracing::trace!(target: "pgk8s::child", "{text}");
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text);
    }
    tail.into()
}

/// `word` as a shell would need it: as is when it holds only characters no shell treats
/// specially (so `--timeout=60s` stays readable), else single-quoted.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c));
    if plain {
        return word.to_string();
    }
    shlex::try_quote(word)
        .map(|quoted| quoted.into_owned())
        .unwrap_or_else(|_| format!("{word:?}"))
}

/// Why running a process failed. Every command line in here is already redacted.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The program is not installed (or the override path is wrong).
    #[error("{} not found", .tool.name())]
    NotFound {
        /// Which program.
        tool: Tool,
    },
    /// The program exists but could not be started.
    #[error("could not start `{command}`: {source}")]
    Spawn {
        /// The redacted command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading from or waiting for the child failed.
    #[error("lost contact with `{command}`: {source}")]
    Io {
        /// The redacted command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The program ran and exited unsuccessfully.
    #[error("`{command}` failed ({}){}", describe_status(*.status), last_line(.stderr_tail))]
    Failed {
        /// The redacted command line.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// The last lines of its stderr, scrubbed.
        stderr_tail: Vec<String>,
        /// What it printed on stdout (only kept by [`Command::capture`]).
        stdout: Vec<u8>,
    },
    /// The command's `--timeout` deadline passed while the program ran; it was killed.
    #[error("{}: `{command}` was stopped", crate::deadline::expired(None))]
    Deadline {
        /// The redacted command line.
        command: String,
    },
    /// The program ran past its own time limit and was killed.
    #[error("`{command}` timed out after {}", humantime::format_duration(*.after))]
    TimedOut {
        /// The redacted command line.
        command: String,
        /// The deadline.
        after: Duration,
    },
}

impl ProcessError {
    /// The child's stderr tail, for `-v` and for callers that classify failures by message.
    pub fn stderr_tail(&self) -> &[String] {
        match self {
            ProcessError::Failed { stderr_tail, .. } => stderr_tail,
            _ => &[],
        }
    }

    /// The whole stderr tail joined, empty unless the child ran and failed.
    pub fn stderr_text(&self) -> String {
        self.stderr_tail().join("\n")
    }
}

/// "exit status 3" or "killed by SIGKILL".
fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(signal) => {
            let name = match signal {
                1 => "SIGHUP".to_string(),
                2 => "SIGINT".to_string(),
                9 => "SIGKILL".to_string(),
                13 => "SIGPIPE".to_string(),
                15 => "SIGTERM".to_string(),
                other => format!("signal {other}"),
            };
            format!("killed by {name}")
        }
        None => "unknown status".to_string(),
    }
}

fn last_line(tail: &[String]) -> String {
    tail.last()
        .map(|line| format!(": {line}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sh -c SCRIPT`, displayed as if it were psql.
    fn shell(script: &str) -> Command {
        let mut command = Command::new(Tool::Psql).args(["-c", script]);
        command.program = Some(PathBuf::from("/bin/sh"));
        command
    }

    #[tokio::test]
    async fn a_mebibyte_on_both_pipes_does_not_deadlock() {
        let captured = shell(
            "head -c 1048576 /dev/zero | tr '\\0' e >&2 & head -c 1048576 /dev/zero | tr '\\0' o; wait",
        )
        .capture()
        .await
        .expect("runs");
        assert_eq!(captured.stdout.len(), 1 << 20);
        assert!(captured.stderr.starts_with('e'));
    }

    #[tokio::test]
    async fn stdin_bytes_reach_the_child() {
        let captured = shell("cat")
            .stdin_bytes(b"fed on stdin".to_vec())
            .capture()
            .await;
        assert_eq!(captured.expect("runs").stdout, b"fed on stdin");
    }

    #[tokio::test]
    async fn a_child_past_its_deadline_is_killed() {
        let error = shell("sleep 30")
            .timeout(Duration::from_millis(100))
            .capture()
            .await
            .expect_err("times out");
        assert!(matches!(error, ProcessError::TimedOut { .. }), "{error}");
    }

    #[tokio::test]
    async fn failures_carry_the_scrubbed_stderr_tail() {
        crate::redact::register("Runner-Canary-31337");
        let error = shell("echo 'auth failed for Runner-Canary-31337' >&2; exit 3")
            .capture()
            .await
            .expect_err("fails");
        let shown = error.to_string();
        assert!(shown.contains("exit status 3"), "{shown}");
        assert!(shown.contains("auth failed for <redacted>"), "{shown}");
        assert!(!shown.contains("Runner-Canary-31337"));
    }

    #[test]
    fn the_install_hint_names_the_override_variable() {
        assert!(Tool::Helm.install_hint().contains("PGK8S_HELM"));
    }

    #[test]
    fn display_quotes_arguments_and_hides_secrets() {
        let command = Command::new(Tool::Kubectl)
            .args([
                "exec",
                "-i",
                "postgresql-0",
                "--",
                "sh",
                "-c",
                "echo hi there",
            ])
            .secret_arg(SecretString::from("hunter2-canary"))
            .env("PGPASSFILE", "/tmp/passfile");
        let shown = command.to_string();
        assert_eq!(
            shown,
            "PGPASSFILE=… kubectl exec -i postgresql-0 -- sh -c 'echo hi there' <redacted>"
        );
        assert_eq!(format!("{command:?}"), format!("Command({shown})"));
    }

    #[test]
    fn signals_are_named() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe_status(ExitStatus::from_raw(9)),
            "killed by SIGKILL"
        );
        assert_eq!(
            describe_status(ExitStatus::from_raw(3 << 8)),
            "exit status 3"
        );
    }
}

//! The conversational psql session: one psql process reading statements on stdin.
//!
//! pgk8s writes a batch, then an `\echo` of a random marker, and reads result rows from stdout
//! until the marker comes back. So a whole migration run — read history, take the lock, apply
//! every file, re-read history — is one `kubectl exec`. Rows are unaligned, tuples only, fields
//! separated by NUL (`-A -t -z`). `ON_ERROR_STOP` makes psql exit at the first error; the open
//! transaction then rolls back and the session's advisory lock is released by the server.
//!
//! Every open session is registered with its backend's pid, so that a command stopped by a
//! signal or its deadline can end the session on the server (see [`terminate_open_sessions`]).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};

use crate::poll::Poll;
use crate::process::{Command, ProcessError, Running};
use crate::sql_error::{SqlError, explain_exit};
use crate::transport::PasswordLogin;

/// How often to retry a database that does not accept connections yet.
const CONNECT_RETRY: Duration = Duration::from_secs(2);

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
        let mut poll = Poll::new(
            wait,
            CONNECT_RETRY,
            "the database does not accept connections yet",
        );
        loop {
            match Session::open(make_command()).await {
                Ok(session) => return Ok(session),
                Err(error) if is_retryable(&error) && poll.again().await => {
                    tracing::debug!("not connected yet: {error:#}");
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

/// Whether opening a session may succeed if tried again shortly.
fn is_retryable(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<SqlError>(),
        Some(SqlError::Connect { .. } | SqlError::ContainerNotRunning { .. })
    )
}

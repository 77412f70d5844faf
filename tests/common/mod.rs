//! The test harness: a simulated cluster per test (fake kubectl/helm first on PATH, real
//! PostgreSQL behind the pods) and one builder that runs pgk8s against it and checks the result.
//!
//! On a failed expectation the builder prints the command, both streams and the simulator's call
//! log, so a red test explains itself.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A simulated cluster in a temporary directory. Dropping it stops its PostgreSQL servers.
pub struct Cluster {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

/// The simulator script.
pub fn simulator() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/pgk8s_sim.py")
}

/// Fails under CI, skips (with a printed reason) elsewhere, when a prerequisite is missing.
/// Returns false when the test should stop.
pub fn require(what: &str, available: bool, how: &str) -> bool {
    if available {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{what} is required in CI: {how}");
    }
    eprintln!("skipped: {what} not found ({how})");
    false
}

/// Whether the PostgreSQL server binaries the simulator needs are installed (the simulator
/// looks in `pg_config --bindir`, then /usr/lib/postgresql/*/bin).
pub fn postgres_available() -> bool {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"));
    from_pg_config
        .into_iter()
        .chain(debian)
        .any(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
}

/// Starts a cluster, or returns None (after printing why) when PostgreSQL is not installed.
#[macro_export]
macro_rules! cluster_or_skip {
    () => {
        match $crate::common::Cluster::start() {
            Some(cluster) => cluster,
            None => return,
        }
    };
}

impl Cluster {
    /// A fresh, empty cluster; None when PostgreSQL is missing outside CI.
    pub fn start() -> Option<Cluster> {
        if !require(
            "PostgreSQL server binaries",
            postgres_available(),
            "apt-get install postgresql",
        ) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("pgk8s-sim-")
            .tempdir()
            .expect("temp dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin dir");
        for name in ["kubectl", "helm", "pgk8s-sim"] {
            std::os::unix::fs::symlink(simulator(), bin.join(name)).expect("symlink");
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut env = BTreeMap::new();
        env.insert("PATH".to_string(), path);
        env.insert(
            "PGK8S_SIM_DIR".to_string(),
            dir.path().join("state").display().to_string(),
        );
        env.insert("PGK8S_SIM_CACHE".to_string(), cache_dir());
        // Where the simulator finds the PostgreSQL majors (scripts/get-postgres.sh).
        for (name, value) in std::env::vars() {
            if name == "PGK8S_TOOLS_DIR" || name.starts_with("PGK8S_SIM_PG_BINDIR") {
                env.insert(name, value);
            }
        }
        env.insert("NO_COLOR".to_string(), "1".to_string());
        Some(Cluster { dir, env })
    }

    /// Sets an environment variable for every later call (fault switches, helm version, ...).
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.insert(name.to_string(), value.to_string());
    }

    /// Removes an environment variable set with [`Cluster::set_env`].
    pub fn unset_env(&mut self, name: &str) {
        self.env.remove(name);
    }

    /// The cluster's temporary directory (for files a test writes).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A pgk8s invocation against this cluster.
    pub fn pgk8s<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Run::new(
            self,
            env!("CARGO_BIN_EXE_pgk8s"),
            args.into_iter()
                .map(|arg| arg.as_ref().to_string())
                .collect(),
        )
    }

    /// pgk8s as a process the test manages itself (to signal it, or read its stdout while it
    /// runs), with this cluster's environment.
    pub fn background(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pgk8s"));
        command
            .args(args)
            .env_clear()
            .envs(&self.env)
            .env("HOME", std::env::var("HOME").unwrap_or_default());
        command
    }

    /// Starts `pgk8s port-forward` in the background; returns it with the JSON document it printed.
    pub fn start_forward(
        &self,
        port: u16,
        extra_env: &[(&str, &str)],
    ) -> (std::process::Child, serde_json::Value) {
        let port = port.to_string();
        let mut command = self.background(&[
            "port-forward",
            "--port",
            &port,
            "--show-password",
            "-o",
            "json",
        ]);
        command.stdout(Stdio::piped()).stderr(Stdio::null());
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut document = String::new();
        while !document.ends_with("}\n") {
            let mut line = String::new();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "port-forward ended early: {document}"
            );
            document.push_str(&line);
        }
        std::thread::spawn(move || {
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
        });
        (child, serde_json::from_str(&document).unwrap())
    }

    /// A direct call of the fake kubectl (to arrange state, or read it back).
    pub fn kubectl<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.fake("kubectl", args)
    }

    /// A direct call of the fake helm.
    pub fn helm<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.fake("helm", args)
    }

    /// A call of the simulator's control command (`restart NS POD`, `not-ready NS POD SECS`, ...).
    pub fn sim<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.fake("pgk8s-sim", args)
    }

    /// Runs SQL as the superuser in a pod, through the fake `kubectl exec` and real auth;
    /// returns psql's unaligned output.
    pub fn sql(&self, namespace: &str, pod: &str, database: &str, sql: &str) -> String {
        let script = "PGPASSWORD=\"$(cat /opt/bitnami/postgresql/secrets/postgres-password)\" \
                      exec psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d \"$0\" -f -";
        let output = self
            .kubectl([
                "exec",
                "-i",
                pod,
                "-c",
                "postgresql",
                "-n",
                namespace,
                "--",
                "sh",
                "-c",
                script,
                database,
            ])
            .stdin(sql)
            .run();
        assert!(
            output.status.success(),
            "sql failed: {sql}\n{}",
            output.stderr
        );
        output.stdout.trim_end().to_string()
    }

    /// `kubectl exec -i POD -c postgresql -n learnflow -- sh -c SCRIPT` through the fake, as a
    /// user of the pod would run it.
    pub fn pod_shell(&self, pod: &str, script: &str) -> Run {
        self.kubectl([
            "exec",
            "-i",
            pod,
            "-c",
            "postgresql",
            "-n",
            "learnflow",
            "--",
            "sh",
            "-c",
            script,
        ])
    }

    /// Creates the `learnflow` namespace and the default release's credentials Secret with these
    /// passwords (as a user preparing the cluster would).
    pub fn create_secret(&self, superuser: &str, app: &str) {
        self.kubectl(["apply", "-f", "-"])
            .stdin(secret_manifest(
                "postgresql-credentials",
                "learnflow",
                superuser,
                app,
            ))
            .succeeds();
    }

    fn fake<I, S>(&self, name: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let program = self.dir.path().join("bin").join(name);
        let args = args
            .into_iter()
            .map(|arg| arg.as_ref().to_string())
            .collect();
        Run::new(self, program.to_str().expect("utf-8 path"), args)
    }

    /// One object of namespace `learnflow` (`pod/NAME`, `pvc/NAME`, ...) as the fake API has it.
    pub fn object(&self, reference: &str) -> Value {
        self.kubectl(["get", reference, "-n", "learnflow", "-o", "json"])
            .succeeds()
            .json()
    }

    /// A decoded value of the default release's credentials Secret in `learnflow`.
    pub fn secret_value(&self, key: &str) -> String {
        use base64::Engine;
        let secret = self.object("secret/postgresql-credentials");
        let encoded = secret["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("no key {key}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        String::from_utf8(bytes).expect("utf-8")
    }

    /// Every call the fakes received, in order (one record per call).
    pub fn calls(&self) -> Vec<Call> {
        let log = self.dir.path().join("state/calls.jsonl");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("call log line"))
            .filter(|record| record["phase"] == "start")
            .map(|record| Call {
                tool: record["tool"].as_str().unwrap_or_default().to_string(),
                argv: record["argv"]
                    .as_array()
                    .map(|argv| {
                        argv.iter()
                            .map(|arg| arg.as_str().unwrap_or_default().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
                canary_in_env: record["canary_in_env"]
                    .as_array()
                    .map(|names| names.iter().map(|name| name.to_string()).collect())
                    .unwrap_or_default(),
                env: record["env"]
                    .as_array()
                    .map(|names| {
                        names
                            .iter()
                            .map(|name| name.as_str().unwrap_or_default().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// The raw call log (every record, including stdin and exit records).
    pub fn call_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state/calls.jsonl")).unwrap_or_default()
    }

    /// Asserts `secret` appears in no recorded argv, no child environment value, and none of
    /// `outputs` (stdout and stderr).
    pub fn assert_secret_absent(&self, secret: &str, outputs: &[&Finished]) {
        for call in self.calls() {
            assert!(
                !call.argv.iter().any(|arg| arg.contains(secret)),
                "secret in argv of {} {:?}",
                call.tool,
                call.argv
            );
            assert!(
                call.canary_in_env.is_empty(),
                "secret in env {:?} of {} {:?}",
                call.canary_in_env,
                call.tool,
                call.argv
            );
        }
        for output in outputs {
            assert!(
                !output.stdout.contains(secret),
                "secret on stdout:\n{}",
                output.stdout
            );
            assert!(
                !output.stderr.contains(secret),
                "secret on stderr:\n{}",
                output.stderr
            );
        }
    }

    /// Calls that change cluster state (read-only psql sessions excepted).
    pub fn mutating_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_mutating).collect()
    }

    /// Number of `kubectl exec` calls.
    pub fn exec_calls(&self) -> usize {
        self.calls()
            .iter()
            .filter(|call| call.tool == "kubectl" && call.verb() == "exec")
            .count()
    }

    /// Deploys with default flags (plus `extra`), asserting success.
    pub fn deploy(&self, extra: &[&str]) -> Finished {
        let mut args = vec!["deploy", "--timeout", "60s"];
        args.extend_from_slice(extra);
        self.pgk8s(args).succeeds()
    }

    /// The PostgreSQL majors a pod can run on this machine, lowest first, each with its bin
    /// directory (`pgk8s-sim majors`: the machine's own, and those of scripts/get-postgres.sh).
    pub fn majors(&self) -> Vec<(u32, PathBuf)> {
        self.sim(["majors"])
            .succeeds()
            .stdout
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let major = fields.next()?.parse().ok()?;
                let bindir = fields.nth(1)?;
                Some((major, PathBuf::from(bindir)))
            })
            .collect()
    }

    /// The major a pod's server really runs (its image's, or the machine's when the image's
    /// major is not installed): `pgk8s-sim major NS POD`.
    pub fn pod_major(&self, namespace: &str, pod: &str) -> u32 {
        self.sim(["major", namespace, pod])
            .succeeds()
            .stdout
            .trim()
            .parse()
            .expect("a major")
    }

    /// `helm upgrade --install postgresql … --wait -f - -n learnflow` of these values through the
    /// fake helm, with a wait of `timeout` (to be checked by the caller).
    pub fn helm_values(&self, values: &str, timeout: &str) -> Run {
        self.helm([
            "upgrade",
            "--install",
            "postgresql",
            "oci://registry-1.docker.io/bitnamicharts/postgresql",
            "--version",
            "17.1.0",
            "--wait",
            "--timeout",
            timeout,
            "-f",
            "-",
            "--namespace",
            "learnflow",
        ])
        .stdin(values.to_string())
    }

    /// Kills (SIGKILL) the helm upgrade started last, as a dying machine would: nothing can
    /// forward that signal, so the release stays pending.
    pub fn kill_last_helm_upgrade(&self) {
        let helm_pid = self
            .call_log()
            .lines()
            .rfind(|line| line.contains("\"upgrade\"") && line.contains("\"phase\": \"start\""))
            .and_then(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .and_then(|record| record["pid"].as_i64())
            .expect("helm upgrade ran");
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &helm_pid.to_string()])
            .status();
    }

    /// Forgets the calls made so far, so a test can count only what follows.
    pub fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("state/calls.jsonl"));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.dir.path().join("state/state.json").exists() {
            let _ = self.sim(["teardown"]).run();
        }
    }
}

/// Shared initdb template for every cluster of every test binary.
fn cache_dir() -> String {
    // Under the system temp dir, not target/: the postgres user that runs the servers must be
    // able to reach it, and a checkout under /root would not be.
    std::env::temp_dir()
        .join("pgk8s-sim-cache")
        .display()
        .to_string()
}

/// One recorded call of a fake tool.
#[derive(Debug, Clone)]
pub struct Call {
    /// `kubectl` or `helm`.
    pub tool: String,
    /// Arguments after the program name.
    pub argv: Vec<String>,
    /// Environment variables whose value contained PGK8S_SIM_CANARY.
    pub canary_in_env: Vec<String>,
    /// Names of every environment variable the call saw.
    pub env: Vec<String>,
}

impl Call {
    /// The subcommand: `get`, `exec`, `upgrade`, ...
    pub fn verb(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or_default()
    }

    /// Whether this call changes cluster state. An exec counts unless its psql session is
    /// read-only (enforced by the server through `default_transaction_read_only`).
    pub fn is_mutating(&self) -> bool {
        match self.tool.as_str() {
            "kubectl" if self.verb() == "exec" => !self
                .argv
                .iter()
                .any(|arg| arg.contains("default_transaction_read_only=on")),
            "kubectl" => matches!(
                self.verb(),
                "apply" | "delete" | "create" | "patch" | "label" | "annotate"
            ),
            "helm" => matches!(
                self.verb(),
                "upgrade" | "install" | "uninstall" | "rollback"
            ),
            _ => false,
        }
    }
}

/// A command to run, and then its result.
pub struct Run {
    program: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    stdin: Option<Vec<u8>>,
    call_log: PathBuf,
}

/// What a finished command printed and how it exited.
pub struct Finished {
    /// Exit status.
    pub status: std::process::ExitStatus,
    /// stdout as text.
    pub stdout: String,
    /// stderr as text.
    pub stderr: String,
    /// stdout as it was (a binary dump, say).
    pub stdout_bytes: Vec<u8>,
}

impl Finished {
    /// The exit code (None when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout parsed as the one JSON document it must be.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not one JSON document ({error}):\n{}",
                self.stdout
            )
        })
    }
}

impl Run {
    fn new(cluster: &Cluster, program: &str, args: Vec<String>) -> Run {
        Run {
            program: program.to_string(),
            args,
            env: cluster.env.clone(),
            stdin: None,
            call_log: cluster.dir.path().join("state/calls.jsonl"),
        }
    }

    /// Sets an environment variable for this run only.
    pub fn env(mut self, name: &str, value: &str) -> Run {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// Feeds `input` on stdin.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Run {
        self.stdin = Some(input.into());
        self
    }

    /// Runs and returns the result without checking it.
    pub fn run(self) -> Finished {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .envs(&self.env)
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for passthrough in ["CI", "TMPDIR", "LANG"] {
            if let Ok(value) = std::env::var(passthrough) {
                command.env(passthrough, value);
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.program));
        if let Some(input) = &self.stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("stdin");
            let input = input.clone();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().expect("wait");
        Finished {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            stdout_bytes: stdout,
        }
    }

    /// Runs and asserts exit code `code`, explaining the run if not.
    pub fn expect(self, code: i32) -> Finished {
        let shown = self.describe();
        let call_log = self.call_log.clone();
        let finished = self.run();
        if finished.code() != Some(code) {
            let log = std::fs::read_to_string(call_log).unwrap_or_default();
            panic!(
                "expected exit {code}, got {:?}\ncommand: {shown}\n--- stdout\n{}\n--- stderr\n{}\n--- call log\n{log}",
                finished.code(),
                finished.stdout,
                finished.stderr
            );
        }
        finished
    }

    /// Runs and asserts success.
    pub fn succeeds(self) -> Finished {
        self.expect(0)
    }

    fn describe(&self) -> String {
        let mut shown = String::new();
        for (name, value) in &self.env {
            if name.starts_with("PGK8S_") {
                let _ = write!(shown, "{name}={value} ");
            }
        }
        shown.push_str(&self.program);
        for arg in &self.args {
            let _ = write!(shown, " {arg:?}");
        }
        shown
    }
}

/// Values pgk8s-like for a standalone release (used to deploy through the fake helm directly).
pub const STANDALONE_VALUES: &str = "auth:\n  existingSecret: postgresql-credentials\n  database: learnflow\n  username: learnflow\n";

/// A credentials Secret manifest with the given passwords (JSON, for `kubectl apply -f -`).
pub fn secret_manifest(name: &str, namespace: &str, superuser: &str, app: &str) -> String {
    use base64::Engine;
    let encode = |value: &str| base64::engine::general_purpose::STANDARD.encode(value);
    serde_json::json!({
        "apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
             "data": {"postgres-password": encode(superuser), "password": encode(app)}},
        ]
    })
    .to_string()
}

/// Runs `select current_user` through the machine's psql at `url`; None when it cannot connect.
pub fn local_psql(url: &str) -> Option<String> {
    let output = Command::new("psql")
        .args(["-X", "-At", url, "-c", "select current_user"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

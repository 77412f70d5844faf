//! The harness of the real-control-plane tier: one control plane per test run (real etcd,
//! kube-apiserver, kube-controller-manager and kube-scheduler, the kubelet emulator as the node;
//! `scripts/realcp.sh`), real kubectl and helm 3/4, the real chart, and a builder that runs
//! pgk8s against it and explains a failed expectation.
//!
//! The tier is gated: `PGK8S_REALCP=1` requires it (a missing piece fails the test),
//! `PGK8S_REALCP=0` skips it, and unset runs it when the control plane has been built into the
//! cache (`scripts/realcp-build.sh`), printing `skipped: …` otherwise.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;

/// The Kubernetes version the tier builds and runs.
pub const KUBERNETES_VERSION: &str = "v1.34.4";

/// Which helm pgk8s drives.
#[derive(Clone, Copy, Debug)]
pub enum Helm {
    /// helm 3.19
    V3,
    /// helm 4.1
    V4,
}

impl Helm {
    fn binary(self) -> &'static str {
        match self {
            Helm::V3 => "helm3",
            Helm::V4 => "helm4",
        }
    }

    /// A short tag for object names.
    pub fn tag(self) -> &'static str {
        match self {
            Helm::V3 => "h3",
            Helm::V4 => "h4",
        }
    }
}

/// The running control plane, shared by every test of the run.
pub struct Plane {
    dir: PathBuf,
    tools: PathBuf,
    chart: String,
    /// Tests that change cluster-wide objects (the default StorageClass) take it for writing;
    /// every other test holds it for reading.
    global: RwLock<()>,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tools_dir() -> PathBuf {
    std::env::var_os("PGK8S_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/pgk8s-tools")
        })
}

/// Whether the control plane has been built into the cache.
fn built(tools: &Path) -> bool {
    let bin = tools.join(format!("k8s-{KUBERNETES_VERSION}"));
    [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "pgk8s-kubelet",
    ]
    .iter()
    .all(|name| bin.join(name).exists())
}

/// The control plane, started on first use; None (after printing why) when the tier is off.
pub fn plane() -> Option<&'static Plane> {
    static PLANE: OnceLock<Option<Plane>> = OnceLock::new();
    PLANE.get_or_init(start).as_ref()
}

fn start() -> Option<Plane> {
    let tools = tools_dir();
    match std::env::var("PGK8S_REALCP").as_deref() {
        Ok("0") => {
            eprintln!("skipped: real control-plane tier disabled (PGK8S_REALCP=0)");
            return None;
        }
        Ok("1") => assert!(
            built(&tools),
            "PGK8S_REALCP=1 but the control plane is not built in {}: run scripts/realcp-build.sh",
            tools.display()
        ),
        _ if !built(&tools) => {
            eprintln!(
                "skipped: real control-plane tier not built (run scripts/realcp-build.sh, or set PGK8S_REALCP=1)"
            );
            return None;
        }
        _ => {}
    }
    let script = repo().join("scripts/realcp.sh");
    let dir = match std::env::var_os("PGK8S_REALCP_DIR") {
        // A control plane the developer started with `scripts/realcp.sh up`: reuse, never stop.
        Some(dir)
            if Command::new("bash")
                .arg(&script)
                .arg("status")
                .status()
                .is_ok_and(|status| status.success()) =>
        {
            PathBuf::from(dir)
        }
        _ => {
            let dir =
                std::env::temp_dir().join(format!("pgk8s-realcp-test-{}", std::process::id()));
            let status = Command::new("bash")
                .arg(&script)
                .args(["up", "--owner", &std::process::id().to_string()])
                .env("PGK8S_REALCP_DIR", &dir)
                .stdout(Stdio::null())
                .status()
                .expect("bash runs scripts/realcp.sh");
            assert!(
                status.success(),
                "scripts/realcp.sh up failed (logs in {}/logs)",
                dir.display()
            );
            dir
        }
    };
    let chart = Command::new("bash")
        .arg(repo().join("scripts/realcp-chart.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("bash runs scripts/realcp-chart.sh");
    assert!(chart.status.success(), "scripts/realcp-chart.sh failed");
    let chart = String::from_utf8(chart.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    Some(Plane {
        dir,
        tools,
        chart,
        global: RwLock::new(()),
    })
}

/// Starts the control plane or returns from the test (after printing why) when the tier is off.
#[macro_export]
macro_rules! plane_or_skip {
    () => {
        match $crate::harness::plane() {
            Some(plane) => plane,
            None => return,
        }
    };
}

impl Plane {
    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    /// The chart every deploy uses (`--chart`).
    pub fn chart(&self) -> &str {
        &self.chart
    }

    /// A shared hold for tests that leave cluster-wide objects alone.
    pub fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.global
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An exclusive hold for a test that changes cluster-wide objects.
    pub fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.global
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn kubectl_path(&self) -> PathBuf {
        let cached = self.tools.join("kubectl");
        if cached.exists() {
            cached
        } else {
            PathBuf::from("kubectl")
        }
    }

    /// A fresh namespace name for a test (deleted when the guard drops).
    pub fn namespace(&self, prefix: &str, helm: Helm) -> TestNamespace<'_> {
        let suffix: u32 = rand::random::<u32>() % 100_000;
        TestNamespace {
            plane: self,
            name: format!("{prefix}-{}-{suffix}", helm.tag()),
        }
    }

    /// pgk8s with this helm, the admin kubeconfig and namespace `namespace`.
    pub fn pgk8s(&self, helm: Helm, namespace: &str, args: &[&str]) -> Run {
        // -n first: arguments after `--` belong to psql.
        let mut all = vec!["-n", namespace];
        all.extend_from_slice(args);
        let run = Run::new(env!("CARGO_BIN_EXE_pgk8s"), &all);
        run.env("KUBECONFIG", self.kubeconfig().to_str().expect("utf-8"))
            .env(
                "PGK8S_KUBECTL",
                self.kubectl_path().to_str().expect("utf-8"),
            )
            .env(
                "PGK8S_HELM",
                self.tools.join(helm.binary()).to_str().expect("utf-8"),
            )
    }

    /// `pgk8s deploy` of the tier's chart, with a timeout fit for the emulated node.
    pub fn deploy(&self, helm: Helm, namespace: &str, extra: &[&str]) -> Run {
        let mut args = vec!["deploy", "--chart", self.chart(), "--timeout", "3m"];
        args.extend_from_slice(extra);
        self.pgk8s(helm, namespace, &args)
    }

    /// kubectl as cluster admin.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        let kubectl = self.kubectl_path();
        let mut run = Run::new(kubectl.to_str().expect("utf-8"), args);
        run.env_mut("KUBECONFIG", self.kubeconfig().to_str().expect("utf-8"));
        run
    }

    /// kubectl as cluster admin, as a running process with its stdout piped (for port-forward).
    pub fn kubectl_process(&self, args: &[&str]) -> std::process::Child {
        Command::new(self.kubectl_path())
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kubectl runs")
    }

    /// helm as cluster admin.
    pub fn helm(&self, helm: Helm, args: &[&str]) -> Run {
        let binary = self.tools.join(helm.binary());
        let mut run = Run::new(binary.to_str().expect("utf-8"), args);
        run.env_mut("KUBECONFIG", self.kubeconfig().to_str().expect("utf-8"));
        run
    }

    /// `kubectl get … -o json` as admin, parsed.
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", "json"]);
        self.kubectl(&all).succeeds().json()
    }

    /// Names of the objects of `kind` in `namespace`.
    pub fn names(&self, kind: &str, namespace: &str) -> Vec<String> {
        self.get_json(&[kind, "-n", namespace])["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }
}

/// A namespace a test owns; deleted (without waiting) when dropped.
pub struct TestNamespace<'a> {
    plane: &'a Plane,
    /// Its name.
    pub name: String,
}

impl Drop for TestNamespace<'_> {
    fn drop(&mut self) {
        let _ = self
            .plane
            .kubectl(&[
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .run();
    }
}

/// A command to run, and then its result.
pub struct Run {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
}

/// What a finished command printed and how it exited.
pub struct Finished {
    /// Exit status.
    pub status: std::process::ExitStatus,
    /// stdout as text.
    pub stdout: String,
    /// stderr as text.
    pub stderr: String,
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
    fn new(program: &str, args: &[&str]) -> Run {
        Run {
            program: program.to_string(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            env: vec![("NO_COLOR".to_string(), "1".to_string())],
            stdin: None,
        }
    }

    fn env_mut(&mut self, name: &str, value: &str) {
        self.env.push((name.to_string(), value.to_string()));
    }

    /// Sets an environment variable for this run.
    pub fn env(mut self, name: &str, value: &str) -> Run {
        self.env_mut(name, value);
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
            .env_remove("KUBECONFIG")
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.program));
        if let Some(input) = self.stdin.clone() {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("stdin");
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let output = child.wait_with_output().expect("wait");
        Finished {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs and asserts exit code `code`, explaining the run if not.
    pub fn expect(self, code: i32) -> Finished {
        let shown = self.describe();
        let finished = self.run();
        eprintln!("$ {shown} → {:?}", finished.code());
        if finished.code() != Some(code) {
            panic!(
                "expected exit {code}, got {:?}\ncommand: {shown}\n--- stdout\n{}\n--- stderr\n{}",
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
            if name.starts_with("PGK8S_HELM") {
                let _ = write!(shown, "{name}={value} ");
            }
        }
        shown.push_str(&self.program);
        for arg in &self.args {
            let _ = write!(shown, " {arg}");
        }
        shown
    }
}

//! Typed kubectl operations. Builds kubectl command lines (with `--context`/`--kubeconfig`
//! passthrough), hands them to [`crate::process`], parses `-o json` answers and turns kubectl's
//! failure messages into classified errors (cluster unreachable → exit 2).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::names::Namespace;
use crate::process::{Captured, Command, ProcessError, Tool};

/// Oldest kubectl pgk8s supports.
pub const MIN_KUBECTL_MINOR: u32 = 25;
/// How long one API request may take before kubectl gives up.
const REQUEST_TIMEOUT: &str = "30s";
/// The label pgk8s puts on namespaces it creates (undeploy deletes only those without --force).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] on objects pgk8s created.
pub const MANAGED_BY_VALUE: &str = "pgk8s";

/// How to reach the cluster: the kubeconfig context and file, as the user gave them.
#[derive(Clone, Debug, Default)]
pub struct KubeAccess {
    /// `--context`.
    pub context: Option<String>,
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
}

/// kubectl bound to one namespace.
#[derive(Clone, Debug)]
pub struct Kube {
    access: KubeAccess,
    namespace: Namespace,
}

/// kubectl's client and server versions.
#[derive(Clone, Debug)]
pub struct Versions {
    /// Client `major.minor`.
    pub client: (u32, u32),
    /// Client version string, e.g. `v1.32.4`.
    pub client_text: String,
    /// Server version string.
    pub server_text: String,
}

impl Kube {
    /// kubectl for `namespace` through `access`.
    pub fn new(access: KubeAccess, namespace: Namespace) -> Kube {
        Kube { access, namespace }
    }

    /// The namespace every namespaced call uses.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// `kubectl ARGS...` followed by the namespace and access flags.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut command = Command::new(Tool::Kubectl)
            .args(args)
            .args(["-n", self.namespace.as_str()]);
        if let Some(context) = &self.access.context {
            command = command.args(["--context", context]);
        }
        if let Some(kubeconfig) = &self.access.kubeconfig {
            command = command.args(["--kubeconfig".to_string(), kubeconfig.display().to_string()]);
        }
        command
    }

    /// Client and server versions; checks the client is new enough and the API answers.
    pub async fn versions(&self) -> anyhow::Result<Versions> {
        let command = self.command([
            "version",
            "-o",
            "json",
            "--request-timeout",
            REQUEST_TIMEOUT,
        ]);
        let captured = run(command).await?;
        let document: Value =
            serde_json::from_slice(&captured.stdout).map_err(|error| KubeError::Unreadable {
                reason: format!("kubectl version printed no JSON: {error}"),
            })?;
        let client = &document["clientVersion"];
        let client_text = client["gitVersion"]
            .as_str()
            .unwrap_or("unknown")
            .to_string();
        let minor = client["minor"]
            .as_str()
            .and_then(|minor| minor.trim_end_matches('+').parse().ok())
            .unwrap_or(0);
        let major = client["major"]
            .as_str()
            .and_then(|major| major.parse().ok())
            .unwrap_or(0);
        if (major, minor) < (1, MIN_KUBECTL_MINOR) {
            return Err(KubeError::TooOld {
                version: client_text,
            }
            .into());
        }
        Ok(Versions {
            client: (major, minor),
            client_text,
            server_text: document["serverVersion"]["gitVersion"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
        })
    }

    /// Gets objects: kinds (`pods,pvc`) or `kind/name` references. Missing named objects are
    /// left out rather than failing.
    pub async fn get(&self, what: &[&str]) -> anyhow::Result<Vec<Object>> {
        let command = self
            .command(["get"].into_iter().chain(what.iter().copied()))
            .args([
                "-o",
                "json",
                "--ignore-not-found",
                "--request-timeout",
                REQUEST_TIMEOUT,
            ]);
        let captured = run(command).await?;
        parse_objects(&captured.stdout)
    }

    /// The target namespace: present, missing, or hidden from these credentials (namespace-scoped
    /// roles often may not read Namespace objects; the namespace then has to exist already).
    pub async fn namespace_view(&self) -> anyhow::Result<NamespaceView> {
        match self.get(&[&format!("namespace/{}", self.namespace)]).await {
            Ok(objects) => Ok(objects
                .into_iter()
                .next()
                .map_or(NamespaceView::Missing, |object| {
                    NamespaceView::Present(Box::new(object))
                })),
            Err(error) if is_forbidden(&error) => Ok(NamespaceView::Hidden),
            Err(error) => Err(error),
        }
    }

    /// Gets objects of `kinds` whose labels match `selector`.
    pub async fn get_labelled(&self, kinds: &str, selector: &str) -> anyhow::Result<Vec<Object>> {
        let command = self.command(["get", kinds, "-l", selector]).args([
            "-o",
            "json",
            "--request-timeout",
            REQUEST_TIMEOUT,
        ]);
        let captured = run(command).await?;
        parse_objects(&captured.stdout)
    }

    /// Applies a manifest (an object or a `List`) given on stdin, so no value reaches argv.
    pub async fn apply(&self, manifest: &impl serde::Serialize) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(manifest)?;
        let command = self
            .command(["apply", "-f", "-", "--request-timeout", REQUEST_TIMEOUT])
            .stdin_bytes(bytes);
        run(command).await?;
        Ok(())
    }

    /// Replaces an object with `manifest` (on stdin) and returns it as stored. When the manifest
    /// carries `metadata.resourceVersion`, the API server refuses the write if the object changed
    /// since it was read (a conflict), so a concurrent change is never overwritten.
    pub async fn replace(&self, manifest: &impl serde::Serialize) -> anyhow::Result<Object> {
        let bytes = serde_json::to_vec(manifest)?;
        let command = self
            .command([
                "replace",
                "-f",
                "-",
                "-o",
                "json",
                "--request-timeout",
                REQUEST_TIMEOUT,
            ])
            .stdin_bytes(bytes);
        let captured = run(command).await?;
        parse_objects(&captured.stdout)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("kubectl replace printed no object"))
    }

    /// Deletes `kind/name` references, ignoring ones already gone, and waits until they are.
    pub async fn delete(&self, what: &[&str], timeout: Duration) -> anyhow::Result<()> {
        let command = self
            .command(["delete"].into_iter().chain(what.iter().copied()))
            .args(["--ignore-not-found", "--wait=true"])
            .arg(format!("--timeout={}s", timeout.as_secs().max(1)))
            .timeout(timeout + Duration::from_secs(10));
        run(command).await?;
        Ok(())
    }

    /// Deletes `kind/name` references but not what they own (`--cascade=orphan`): a StatefulSet
    /// goes, its pods and claims stay and keep running.
    pub async fn delete_orphaning(&self, what: &[&str], timeout: Duration) -> anyhow::Result<()> {
        let command = self
            .command(["delete"].into_iter().chain(what.iter().copied()))
            .args(["--ignore-not-found", "--cascade=orphan", "--wait=true"])
            .arg(format!("--timeout={}s", timeout.as_secs().max(1)))
            .timeout(timeout + Duration::from_secs(10));
        run(command).await?;
        Ok(())
    }

    /// `kubectl patch KIND/NAME --subresource=status --type merge -p PATCH`: what an operator's
    /// own tools write to ask it for something (a switchover). No secret may be in the patch.
    pub async fn patch_status_merge(&self, what: &str, patch: &Value) -> anyhow::Result<()> {
        self.patch(what, Some("status"), patch).await
    }

    /// `kubectl annotate KIND/NAME KEY=VALUE --overwrite` (for values that are not secret).
    pub async fn annotate(&self, what: &str, key: &str, value: &str) -> anyhow::Result<()> {
        let command = self.command([
            "annotate".to_string(),
            what.to_string(),
            format!("{key}={value}"),
            "--overwrite".to_string(),
            "--request-timeout".to_string(),
            REQUEST_TIMEOUT.to_string(),
        ]);
        run(command).await?;
        Ok(())
    }

    /// `kubectl patch KIND/NAME --type merge -p PATCH`. For changes that carry no secret only:
    /// the patch is on the command line.
    pub async fn patch_merge(&self, what: &str, patch: &Value) -> anyhow::Result<()> {
        self.patch(what, None, patch).await
    }

    async fn patch(
        &self,
        what: &str,
        subresource: Option<&str>,
        patch: &Value,
    ) -> anyhow::Result<()> {
        let mut args = vec!["patch".to_string(), what.to_string()];
        args.extend(subresource.map(|name| format!("--subresource={name}")));
        args.extend([
            "--type".to_string(),
            "merge".to_string(),
            "-p".to_string(),
            patch.to_string(),
            "--request-timeout".to_string(),
            REQUEST_TIMEOUT.to_string(),
        ]);
        run(self.command(args)).await?;
        Ok(())
    }

    /// `kubectl exec -i POD -c CONTAINER -- sh -c SCRIPT`: the script reads stdin.
    pub fn exec(&self, pod: &str, container: &str, script: &str) -> Command {
        self.command(["exec", "-i", pod, "-c", container])
            .args(["--", "sh", "-c", script])
    }

    /// Like [`Kube::exec`] with a terminal attached, for interactive psql.
    pub fn exec_tty(&self, pod: &str, container: &str, script: &str) -> Command {
        self.command(["exec", "-it", pod, "-c", container])
            .args(["--", "sh", "-c", script])
    }

    /// `kubectl logs` of a pod's container.
    pub fn logs(&self, pod: &str, container: &str, request: LogRequest) -> Command {
        let mut command = self.command(["logs", pod, "-c", container]);
        if request.follow {
            command = command.arg("--follow");
        }
        if let Some(lines) = request.tail {
            command = command.arg(format!("--tail={lines}"));
        }
        if request.previous {
            command = command.arg("--previous");
        }
        command
    }

    /// `kubectl port-forward svc/SERVICE LOCAL:5432`.
    pub fn port_forward(&self, service: &str, local_port: u16) -> Command {
        self.command([
            "port-forward".to_string(),
            format!("svc/{service}"),
            format!("{local_port}:{}", crate::chart::PORT),
            "--address".to_string(),
            "127.0.0.1".to_string(),
        ])
    }
}

/// Which logs `kubectl logs` shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogRequest {
    /// Keep streaming.
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<u32>,
    /// The previous (crashed) container's logs.
    pub previous: bool,
}

/// What pgk8s can see of its namespace.
#[derive(Clone, Debug)]
pub enum NamespaceView {
    /// It exists.
    Present(Box<Object>),
    /// It does not exist.
    Missing,
    /// The credentials may not read it.
    Hidden,
}

/// Why kubectl (or helm, which talks to the same API server) could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The API server did not answer.
    #[error("cluster not reachable: {detail}")]
    Unreachable {
        /// kubectl's line saying so.
        detail: String,
        /// The failed call.
        source: ProcessError,
    },
    /// The kubeconfig or context is missing or broken.
    #[error("kubeconfig problem: {detail}")]
    Kubeconfig {
        /// kubectl's line saying so.
        detail: String,
        /// The failed call.
        source: ProcessError,
    },
    /// The API server refused the request for lack of permission.
    #[error("access denied: {detail}")]
    Forbidden {
        /// kubectl's line naming the verb and resource.
        detail: String,
        /// The failed call.
        source: ProcessError,
    },
    /// kubectl is older than pgk8s supports.
    #[error("kubectl {version} is too old: pgk8s needs 1.{MIN_KUBECTL_MINOR} or newer")]
    TooOld {
        /// The version it reported.
        version: String,
    },
    /// kubectl answered with something pgk8s cannot read.
    #[error("unexpected answer from kubectl: {reason}")]
    Unreadable {
        /// What was wrong with it.
        reason: String,
    },
}

/// Whether the cluster refused the request for lack of permission. Only kubectl's own stderr
/// decides (a namespace called `forbidden-apps` is not a permission problem).
pub fn is_forbidden(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<KubeError>(),
        Some(KubeError::Forbidden { .. })
    )
}

/// Runs a kubectl command and classifies its failure.
pub async fn run(command: Command) -> anyhow::Result<Captured> {
    command.capture().await.map_err(classify)
}

/// Turns a failed kubectl or helm call into a [`KubeError`] when its stderr says the cluster
/// cannot be reached or used, else leaves the process error as it is.
pub fn classify(error: ProcessError) -> anyhow::Error {
    match cluster_error(error) {
        Ok(kube_error) => kube_error.into(),
        Err(error) => error.into(),
    }
}

/// The [`KubeError`] a failed call's stderr shows, or the call's error back when it shows none.
pub fn cluster_error(error: ProcessError) -> Result<KubeError, ProcessError> {
    let stderr = error.stderr_text();
    match read_cluster_failure(&stderr) {
        Some((ClusterFailure::Unreachable, detail)) => Ok(KubeError::Unreachable {
            detail,
            source: error,
        }),
        Some((ClusterFailure::Kubeconfig, detail)) => Ok(KubeError::Kubeconfig {
            detail,
            source: error,
        }),
        Some((ClusterFailure::Forbidden, detail)) => Ok(KubeError::Forbidden {
            detail,
            source: error,
        }),
        None => Err(error),
    }
}

/// The three ways a cluster can fail a caller, before any object is involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClusterFailure {
    Unreachable,
    Kubeconfig,
    Forbidden,
}

/// What kubectl's (or helm's) stderr says about the cluster, as one plain sentence: which API
/// server address did not answer, that no context is set, or who may not do what to which
/// resource. kubectl's own lines (`E1202 … memcache.go …`) stay in the stderr tail for `-v`.
fn read_cluster_failure(stderr: &str) -> Option<(ClusterFailure, String)> {
    let line_with = |needle: &str| stderr.lines().find(|line| line.contains(needle));
    if let Some(line) = line_with("context \"").filter(|line| line.contains("does not exist")) {
        let name = line.split('"').nth(1).unwrap_or_default();
        return Some((
            ClusterFailure::Kubeconfig,
            format!("kubeconfig context {name:?} does not exist"),
        ));
    }
    if stderr.contains("current-context is not set")
        || stderr.contains("no configuration has been provided")
    {
        return Some((
            ClusterFailure::Kubeconfig,
            "no kubeconfig context is set".to_string(),
        ));
    }
    if stderr.contains("invalid configuration") {
        let line = line_with("invalid configuration").unwrap_or_default();
        return Some((ClusterFailure::Kubeconfig, plain(line)));
    }
    if let Some(line) = line_with("cannot ")
        .filter(|line| line.contains("(Forbidden)") || line.contains("is forbidden:"))
    {
        return Some((ClusterFailure::Forbidden, forbidden_sentence(line)));
    }
    if stderr.contains("Unauthorized") || stderr.contains("provide credentials") {
        return Some((
            ClusterFailure::Forbidden,
            "the API server did not accept these credentials (Unauthorized)".to_string(),
        ));
    }
    const UNREACHABLE: [&str; 8] = [
        "connection refused",
        "was refused",
        "Unable to connect to the server",
        "no such host",
        "i/o timeout",
        "no route to host",
        "TLS handshake timeout",
        "Kubernetes cluster unreachable",
    ];
    if !UNREACHABLE.iter().any(|needle| stderr.contains(needle)) {
        return None;
    }
    let address = server_address(stderr);
    if address.as_deref() == Some("localhost:8080") {
        // kubectl's fallback when no kubeconfig names a server.
        return Some((
            ClusterFailure::Kubeconfig,
            "no kubeconfig context is set (kubectl fell back to localhost:8080)".to_string(),
        ));
    }
    let why = [
        ("refused", "refused the connection"),
        ("no such host", "is not a known host name"),
        ("i/o timeout", "did not answer (timeout)"),
        (
            "TLS handshake timeout",
            "did not complete the TLS handshake",
        ),
        ("no route to host", "is not routable from here"),
    ]
    .iter()
    .find(|(needle, _)| stderr.contains(needle))
    .map_or("did not answer", |(_, why)| why);
    Some((
        ClusterFailure::Unreachable,
        match address {
            Some(address) => format!("the API server at {address} {why}"),
            None => format!("the API server {why}"),
        },
    ))
}

/// `host:port` of the API server from kubectl's or helm's messages.
fn server_address(stderr: &str) -> Option<String> {
    for marker in [
        "connection to the server ",
        "dial tcp ",
        "https://",
        "http://",
    ] {
        if let Some(start) = stderr.find(marker) {
            let rest = &stderr[start + marker.len()..];
            let address: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || ".:-[]".contains(*c))
                .collect();
            let address = address.trim_end_matches(':').to_string();
            if !address.is_empty() {
                return Some(address);
            }
        }
    }
    None
}

/// `user X may not get secrets/NAME in namespace N` from the API server's Forbidden message
/// (`… secrets "NAME" is forbidden: User "X" cannot get resource "secrets" in API group "" in
/// the namespace "N"`).
fn forbidden_sentence(line: &str) -> String {
    let quoted_after = |marker: &str| {
        line.split(marker)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_string)
    };
    let user = quoted_after("User \"");
    let resource = quoted_after("resource \"");
    let verb = line
        .split("cannot ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next());
    let (Some(user), Some(verb), Some(resource)) = (user, verb, resource) else {
        return plain(line);
    };
    let object = line
        .split(&format!("{resource} \""))
        .nth(1)
        .and_then(|rest| rest.split_once("\" is forbidden"))
        .map(|(name, _)| format!("{resource}/{name}"))
        .unwrap_or(resource);
    let place = quoted_after("in the namespace \"")
        .map(|namespace| format!(" in namespace {namespace}"))
        .unwrap_or_else(|| " cluster-wide".to_string());
    format!("user {user} may not {verb} {object}{place}")
}

/// A kubectl line without its `error:` / `Error from server (…):` prefix.
fn plain(line: &str) -> String {
    let line = line.trim();
    let line = line
        .strip_prefix("error: ")
        .or_else(|| line.strip_prefix("Error: "))
        .unwrap_or(line);
    match line
        .strip_prefix("Error from server (")
        .and_then(|rest| rest.split_once("): "))
    {
        Some((_, message)) => message.to_string(),
        None => line.to_string(),
    }
}

/// The objects in a `kubectl get -o json` answer (a single object or a `List`).
pub fn parse_objects(stdout: &[u8]) -> anyhow::Result<Vec<Object>> {
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let document: Value =
        serde_json::from_slice(stdout).map_err(|error| KubeError::Unreadable {
            reason: format!("invalid JSON: {error}"),
        })?;
    let items = match document.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => vec![document],
    };
    items
        .into_iter()
        .map(|item| {
            serde_json::from_value(item).map_err(|error| {
                KubeError::Unreadable {
                    reason: format!("an object pgk8s cannot read: {error}"),
                }
                .into()
            })
        })
        .collect()
}

/// The parts of any Kubernetes object pgk8s reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    /// `Pod`, `PersistentVolumeClaim`, `Event`, ...
    pub kind: String,
    /// Name, labels, annotations.
    pub metadata: Metadata,
    /// The spec, as JSON.
    #[serde(default)]
    pub spec: Value,
    /// The status, as JSON.
    #[serde(default)]
    pub status: Value,
    /// Secret data (base64 values), registered for redaction as it is read.
    #[serde(default)]
    pub data: SecretData,
    /// Event fields.
    #[serde(default)]
    pub reason: Option<String>,
    /// Event message.
    #[serde(default)]
    pub message: Option<String>,
    /// `type`: an Event's `Normal` or `Warning`, a Secret's `Opaque`, ...
    #[serde(default, rename = "type")]
    pub type_name: Option<String>,
    /// The object an Event is about.
    #[serde(default)]
    pub involved_object: Option<ObjectReference>,
    /// A StorageClass's `allowVolumeExpansion`.
    #[serde(default)]
    pub allow_volume_expansion: Option<bool>,
}

/// Object metadata.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Name.
    pub name: String,
    /// Namespace (None for cluster-scoped objects).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The version the API server stored, for writes that must not overwrite a newer one.
    #[serde(default)]
    pub resource_version: Option<String>,
    /// The object's identity: a replaced object of the same name has another.
    #[serde(default)]
    pub uid: Option<String>,
}

/// An Event's `involvedObject`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ObjectReference {
    /// Kind of the object.
    #[serde(default)]
    pub kind: String,
    /// Name of the object.
    #[serde(default)]
    pub name: String,
}

impl Object {
    /// A label value.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.metadata.labels.get(name).map(String::as_str)
    }

    /// A decoded Secret value.
    pub fn secret_value(&self, key: &str) -> Option<SecretString> {
        self.data.value(key)
    }
}

/// The `data` of a Secret as kubectl prints it: base64 values by key.
///
/// Every value is registered with the redactor the moment it is parsed, so a tool that later
/// echoes it (in plain text, base64 or URL-encoded) cannot print it. Debug shows only the keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretData(BTreeMap<String, String>);

impl SecretData {
    /// The decoded value of `key`, when present and valid UTF-8.
    pub fn value(&self, key: &str) -> Option<SecretString> {
        decode(self.0.get(key)?).map(SecretString::from)
    }

    /// The keys of `required` that are missing or empty.
    pub fn missing<'a>(&self, required: &[&'a str]) -> Vec<&'a str> {
        required
            .iter()
            .copied()
            .filter(|key| {
                self.value(key)
                    .is_none_or(|value| value.expose_secret().is_empty())
            })
            .collect()
    }

    /// The base64 values by key, for a manifest that writes them back unchanged.
    pub fn encoded(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Sets `key` to `value` (encoded here), registering it for redaction.
    pub fn insert(&mut self, key: &str, value: &SecretString) {
        use base64::Engine;
        crate::redact::register(value.expose_secret());
        self.0.insert(
            key.to_string(),
            base64::engine::general_purpose::STANDARD.encode(value.expose_secret()),
        );
    }

    /// Sets `key` to a value that is not a secret (a basic-auth Secret's `username`).
    pub fn insert_plain(&mut self, key: &str, value: &str) {
        use base64::Engine;
        self.0.insert(
            key.to_string(),
            base64::engine::general_purpose::STANDARD.encode(value),
        );
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
}

/// Keys of a `kubernetes.io/basic-auth` Secret (and of the ones CloudNativePG writes) that hold
/// names, not secrets: redacting them would blank the database and user names everywhere.
const PLAIN_KEYS: [&str; 5] = ["username", "user", "dbname", "host", "port"];

fn decode(encoded: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

impl<'de> Deserialize<'de> for SecretData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let data = BTreeMap::<String, String>::deserialize(deserializer)?;
        for (key, encoded) in &data {
            if PLAIN_KEYS.contains(&key.as_str()) {
                continue;
            }
            if let Some(value) = decode(encoded) {
                crate::redact::register(&value);
            }
        }
        Ok(SecretData(data))
    }
}

impl serde::Serialize for SecretData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl std::fmt::Debug for SecretData {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_map()
            .entries(self.0.keys().map(|key| (key, crate::redact::REDACTED)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(command: &str, stderr: &str) -> ProcessError {
        use std::os::unix::process::ExitStatusExt;
        ProcessError::Failed {
            command: command.to_string(),
            status: std::process::ExitStatus::from_raw(1 << 8),
            stderr_tail: vec![stderr.to_string()],
            stdout: Vec::new(),
        }
    }

    #[test]
    fn cluster_failures_become_one_plain_sentence() {
        let memcache = "E1202 10:00:00.123456    4242 memcache.go:265] \"Unhandled Error\" err=\"couldn't get current server API group list: Get \\\"https://10.1.2.3:6443/api?timeout=32s\\\": dial tcp 10.1.2.3:6443: connect: connection refused\"";
        for (stderr, kind, sentence) in [
            (
                format!("{memcache}\nThe connection to the server 10.1.2.3:6443 was refused - did you specify the right host or port?"),
                ClusterFailure::Unreachable,
                "the API server at 10.1.2.3:6443 refused the connection",
            ),
            (
                "Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout".to_string(),
                ClusterFailure::Unreachable,
                "the API server at 10.0.0.1:443 did not answer (timeout)",
            ),
            (
                "The connection to the server localhost:8080 was refused - did you specify the right host or port?".to_string(),
                ClusterFailure::Kubeconfig,
                "no kubeconfig context is set (kubectl fell back to localhost:8080)",
            ),
            (
                "error: context \"nope\" does not exist".to_string(),
                ClusterFailure::Kubeconfig,
                "kubeconfig context \"nope\" does not exist",
            ),
            (
                "Error from server (Forbidden): secrets is forbidden: User \"system:serviceaccount:learnflow:reader\" cannot create resource \"secrets\" in API group \"\" in the namespace \"learnflow\"".to_string(),
                ClusterFailure::Forbidden,
                "user system:serviceaccount:learnflow:reader may not create secrets in namespace learnflow",
            ),
            (
                "Error from server (Forbidden): secrets \"postgresql-credentials\" is forbidden: User \"system:serviceaccount:ns:reader\" cannot get resource \"secrets\" in API group \"\" in the namespace \"ns\"".to_string(),
                ClusterFailure::Forbidden,
                "user system:serviceaccount:ns:reader may not get secrets/postgresql-credentials in namespace ns",
            ),
            (
                "error: You must be logged in to the server (Unauthorized)".to_string(),
                ClusterFailure::Forbidden,
                "the API server did not accept these credentials (Unauthorized)",
            ),
        ] {
            let (found, text) = read_cluster_failure(&stderr).expect(&stderr);
            assert_eq!((found, text.as_str()), (kind, sentence), "{stderr}");
            assert!(!text.contains("memcache"), "{text}");
        }
        assert!(
            read_cluster_failure("Error from server (NotFound): pods \"x\" not found").is_none()
        );
        let immutable = "Error: UPGRADE FAILED: cannot patch \"postgresql\" with kind StatefulSet: StatefulSet.apps \"postgresql\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden";
        assert!(
            read_cluster_failure(immutable).is_none(),
            "an invalid object is not a permission problem"
        );
    }

    #[test]
    fn a_namespace_named_forbidden_is_not_a_permission_error() {
        let error = classify(failed(
            "kubectl get pods -n forbidden-apps",
            "Error from server (NotFound): namespaces \"forbidden-apps\" not found",
        ))
        .context("reading the namespace forbidden-apps");
        assert!(!is_forbidden(&error), "{error:#}");
    }

    #[test]
    fn single_objects_and_lists_parse() {
        let list = br#"{"kind":"List","items":[{"kind":"Pod","metadata":{"name":"p"}},{"kind":"PersistentVolumeClaim","metadata":{"name":"c","labels":{"a":"b"}}}]}"#;
        let objects = parse_objects(list).unwrap();
        assert_eq!(
            (objects[0].kind.as_str(), objects[0].metadata.name.as_str()),
            ("Pod", "p")
        );
        assert_eq!(objects[1].label("a"), Some("b"));
        let single =
            br#"{"kind":"Secret","metadata":{"name":"s"},"data":{"password":"aHVudGVyMg=="}}"#;
        let secret = &parse_objects(single).unwrap()[0];
        assert_eq!(
            secret
                .secret_value("password")
                .map(|value| value.expose_secret().to_string())
                .as_deref(),
            Some("hunter2")
        );
        assert_eq!(
            format!("{:?}", secret.data),
            r#"{"password": "<redacted>"}"#
        );
        assert_eq!(crate::redact::scrub("echo hunter2"), "echo <redacted>");
        assert!(parse_objects(b"\n").unwrap().is_empty());
    }
}

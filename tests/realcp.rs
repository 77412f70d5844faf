//! The second tier: pgk8s against a real Kubernetes control plane (etcd, kube-apiserver with
//! RBAC, kube-controller-manager, kube-scheduler), the real kubectl, helm 3 and helm 4 and the
//! real Bitnami chart; only the kubelet is emulated (`tests/realcp/kubelet`), its pods real
//! PostgreSQL servers. Every scenario runs once with each helm.
//!
//! Gated (see `harness.rs`): `PGK8S_REALCP=1` requires it, as `.ci/run` does after building the
//! control plane with `scripts/realcp-build.sh`.

#[path = "realcp/harness.rs"]
mod harness;

use harness::{Helm, Plane};

/// Declares one test per helm major for a scenario `fn scenario(plane, helm)`.
macro_rules! with_each_helm {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[test]
                fn helm3() {
                    let plane = $crate::plane_or_skip!();
                    super::$scenario(plane, $crate::harness::Helm::V3);
                }

                #[test]
                fn helm4() {
                    let plane = $crate::plane_or_skip!();
                    super::$scenario(plane, $crate::harness::Helm::V4);
                }
            }
        )*
    };
}

with_each_helm!(
    lifecycle,
    two_releases_in_one_namespace,
    read_only_service_account,
    no_default_storage_class,
    immutable_statefulset_field,
    pod_that_never_becomes_ready,
    server_that_cannot_start,
);

fn users(plane: &Plane, helm: Helm, namespace: &str, release: &[&str]) -> String {
    let mut args = vec!["psql", "-c", "select count(*) from users"];
    args.extend_from_slice(release);
    args.extend(["--", "-At"]);
    plane
        .pgk8s(helm, namespace, &args)
        .succeeds()
        .stdout
        .trim()
        .to_string()
}

/// The lifecycle of `tests/e2e.rs`: deploy → verify → migrate status → seed → backup → restore →
/// redeploy (unchanged, then an upgrade that replaces the pod) keeps data and password →
/// undeploy removes release, volume and namespace.
fn lifecycle(plane: &Plane, helm: Helm) {
    let _hold = plane.shared();
    let namespace = plane.namespace("life", helm);
    let ns = namespace.name.as_str();

    let deployed = plane.deploy(helm, ns, &["-o", "json"]).succeeds().json();
    assert_eq!(deployed["secret_action"], "created");
    assert_eq!(deployed["migrations"]["current_version"], 7);
    let verify = plane
        .pgk8s(
            helm,
            ns,
            &["verify", "--check-schema", "--wait", "2m", "-o", "json"],
        )
        .succeeds()
        .json();
    assert_eq!(verify["healthy"], true, "{verify:#}");
    plane
        .pgk8s(helm, ns, &["migrate", "status", "--exit-code"])
        .succeeds();
    plane.pgk8s(helm, ns, &["seed"]).succeeds();
    assert_eq!(users(plane, helm, ns, &[]), "5");

    // The logs of the real server come back through the API server and the node.
    let logs = plane.pgk8s(helm, ns, &["logs", "--tail", "50"]).succeeds();
    assert!(
        logs.stdout
            .contains("database system is ready to accept connections"),
        "{}",
        logs.stdout
    );

    let dump_dir = tempfile::tempdir().expect("temp dir");
    let dump = dump_dir.path().join("learnflow.dump");
    let dump = dump.to_str().expect("utf-8");
    plane.pgk8s(helm, ns, &["backup", "-f", dump]).succeeds();
    plane
        .pgk8s(helm, ns, &["psql", "-c", "delete from users"])
        .succeeds();
    assert_eq!(users(plane, helm, ns, &[]), "0");
    plane
        .pgk8s(helm, ns, &["restore", "-f", dump, "--yes"])
        .succeeds();
    assert_eq!(users(plane, helm, ns, &[]), "5");

    let pod_uid = |plane: &Plane| {
        plane.get_json(&["pod", "postgresql-0", "-n", ns])["metadata"]["uid"]
            .as_str()
            .expect("uid")
            .to_string()
    };
    let first_pod = pod_uid(plane);
    let again = plane.deploy(helm, ns, &["-o", "json"]).succeeds().json();
    assert_eq!(again["secret_action"], "reused");
    // Checked at the end, so that a wrong answer here does not hide the rest of the lifecycle.
    let unchanged_redeploy = again["release_action"].clone();
    let upgraded = plane
        .deploy(helm, ns, &["--memory-limit", "1536Mi", "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(upgraded["release_action"], "upgraded");
    assert_ne!(pod_uid(plane), first_pod, "the upgrade replaced the pod");
    assert_eq!(
        users(plane, helm, ns, &[]),
        "5",
        "data and password survive the pod's replacement"
    );

    let volume = plane.get_json(&["pvc", "data-postgresql-0", "-n", ns])["spec"]["volumeName"]
        .as_str()
        .expect("bound volume")
        .to_string();
    plane
        .pgk8s(
            helm,
            ns,
            &["undeploy", "--delete-pvc", "--delete-namespace", "--yes"],
        )
        .succeeds();
    let releases = plane.helm(helm, &["list", "-n", ns, "-q"]).succeeds();
    assert_eq!(releases.stdout.trim(), "", "release uninstalled");
    wait_until(60, "the data volume to be deleted", || {
        plane
            .kubectl(&["get", "pv", &volume, "--ignore-not-found", "-o", "name"])
            .succeeds()
            .stdout
            .trim()
            .is_empty()
    });
    wait_until(90, "the namespace to be deleted", || {
        plane
            .kubectl(&["get", "namespace", ns, "--ignore-not-found", "-o", "name"])
            .succeeds()
            .stdout
            .trim()
            .is_empty()
    });
    assert_eq!(
        unchanged_redeploy, "unchanged",
        "a redeploy with the same values and chart leaves the release alone"
    );
}

/// Two releases side by side: undeploying one with its volume leaves the other's volume, data
/// and service alone.
fn two_releases_in_one_namespace(plane: &Plane, helm: Helm) {
    let _hold = plane.shared();
    let namespace = plane.namespace("two", helm);
    let ns = namespace.name.as_str();
    // "postgresql" and "postgresql-analytics": one release's names are a prefix of the other's
    // (data-postgresql-0 / data-postgresql-analytics-0).
    plane.deploy(helm, ns, &[]).succeeds();
    plane
        .deploy(helm, ns, &["-r", "postgresql-analytics"])
        .succeeds();
    plane
        .pgk8s(helm, ns, &["seed", "-r", "postgresql-analytics"])
        .succeeds();
    let claims = plane.names("pvc", ns);
    assert!(
        claims.contains(&"data-postgresql-0".to_string())
            && claims.contains(&"data-postgresql-analytics-0".to_string()),
        "{claims:?}"
    );

    plane
        .pgk8s(
            helm,
            ns,
            &["undeploy", "--delete-pvc", "--yes", "--timeout", "60s"],
        )
        .succeeds();
    let claims = plane.names("pvc", ns);
    assert!(
        !claims.contains(&"data-postgresql-0".to_string()),
        "the undeployed release's volume is gone: {claims:?}"
    );
    assert!(
        claims.contains(&"data-postgresql-analytics-0".to_string()),
        "the other release's volume must survive: {claims:?}"
    );
    let verify = plane
        .pgk8s(
            helm,
            ns,
            &[
                "verify",
                "-r",
                "postgresql-analytics",
                "--wait",
                "1m",
                "-o",
                "json",
            ],
        )
        .succeeds()
        .json();
    assert_eq!(verify["healthy"], true, "{verify:#}");
    assert_eq!(users(plane, helm, ns, &["-r", "postgresql-analytics"]), "5");
}

/// A kubeconfig for a ServiceAccount bound to the built-in `view` role: deploy stops with exit 2
/// naming the verb and resource it was refused, and leaves nothing behind.
fn read_only_service_account(plane: &Plane, helm: Helm) {
    let _hold = plane.shared();
    let namespace = plane.namespace("rbac", helm);
    let ns = namespace.name.as_str();
    plane.kubectl(&["create", "namespace", ns]).succeeds();
    plane
        .kubectl(&["create", "serviceaccount", "reader", "-n", ns])
        .succeeds();
    plane
        .kubectl(&[
            "create",
            "rolebinding",
            "reader-view",
            "--clusterrole",
            "view",
            "--serviceaccount",
            &format!("{ns}:reader"),
            "-n",
            ns,
        ])
        .succeeds();
    let token = plane
        .kubectl(&["create", "token", "reader", "-n", ns, "--duration", "1h"])
        .succeeds()
        .stdout
        .trim()
        .to_string();
    let config = plane
        .kubectl(&["config", "view", "--raw", "--minify", "-o", "json"])
        .succeeds()
        .json();
    let cluster = &config["clusters"][0]["cluster"];
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "realcp", "cluster": cluster}],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [{"name": "reader", "context": {"cluster": "realcp", "user": "reader", "namespace": ns}}],
        "current-context": "reader",
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reader.kubeconfig");
    std::fs::write(&path, kubeconfig.to_string()).expect("kubeconfig written");

    let denied = plane
        .deploy(helm, ns, &[])
        .env("KUBECONFIG", path.to_str().expect("utf-8"))
        .expect(2);
    eprintln!("{}", denied.stderr);
    let reader = format!("user system:serviceaccount:{ns}:reader may not ");
    assert!(
        denied.stderr.contains("access denied: ") && denied.stderr.contains(&reader),
        "the error names who was refused which verb on which resource:\n{}",
        denied.stderr
    );
    assert!(plane.names("secrets", ns).is_empty(), "no Secret created");
    assert!(plane.names("statefulsets", ns).is_empty(), "no StatefulSet");
    assert!(plane.names("pvc", ns).is_empty(), "no volume claim");
    assert!(helm_releases(plane, ns).is_empty(), "no helm release");
}

/// Restores the default StorageClass when dropped.
struct DefaultClassRemoved<'a>(&'a Plane);

impl Drop for DefaultClassRemoved<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .kubectl(&[
                "annotate",
                "storageclass",
                "standard",
                "storageclass.kubernetes.io/is-default-class=true",
                "--overwrite",
            ])
            .run();
    }
}

/// Without a default StorageClass deploy exits 6 before it runs helm.
fn no_default_storage_class(plane: &Plane, helm: Helm) {
    let _hold = plane.exclusive();
    let namespace = plane.namespace("nosc", helm);
    let ns = namespace.name.as_str();
    plane
        .kubectl(&[
            "annotate",
            "storageclass",
            "standard",
            "storageclass.kubernetes.io/is-default-class=false",
            "--overwrite",
        ])
        .succeeds();
    let restore = DefaultClassRemoved(plane);
    let refused = plane.deploy(helm, ns, &[]).expect(6);
    drop(restore);
    assert!(
        refused.stderr.contains("no default StorageClass"),
        "{}",
        refused.stderr
    );
    assert!(helm_releases(plane, ns).is_empty(), "helm never ran");
    assert!(plane.names("statefulsets", ns).is_empty());
}

/// A redeploy with another volume size is refused by pgk8s before helm runs (exit 64, pointing
/// at `resize`). Another StorageClass also changes `volumeClaimTemplates`, which the API server
/// refuses for an existing StatefulSet: pgk8s reports the API server's own reason, helm rolls
/// back, and the running database is untouched.
fn immutable_statefulset_field(plane: &Plane, helm: Helm) {
    let _hold = plane.shared();
    let namespace = plane.namespace("immut", helm);
    let ns = namespace.name.as_str();
    plane
        .deploy(helm, ns, &["--storage-size", "1Gi", "--seed"])
        .succeeds();
    let resize = plane
        .deploy(helm, ns, &["--storage-size", "2Gi"])
        .expect(64);
    assert!(resize.stderr.contains("pgk8s resize"), "{}", resize.stderr);
    let refused = plane
        .deploy(
            helm,
            ns,
            &["--storage-size", "1Gi", "--storage-class", "expandable"],
        )
        .run();
    eprintln!("{}", refused.stderr);
    assert_ne!(refused.code(), Some(0), "the upgrade cannot succeed");
    assert!(
        refused
            .stderr
            .contains("updates to statefulset spec for fields other than"),
        "the API server's reason reaches the user:\n{}",
        refused.stderr
    );
    // A 422 Invalid, not a 403: the text says "spec: Forbidden", but neither the exit code (2 is
    // "cluster not reachable or forbidden") nor the hint may send the user after RBAC.
    assert_ne!(
        refused.code(),
        Some(2),
        "an invalid spec is not an access problem:\n{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("lack permission") && !refused.stderr.contains("access denied"),
        "{}",
        refused.stderr
    );
    let status = plane
        .helm(helm, &["status", "postgresql", "-n", ns, "-o", "json"])
        .succeeds()
        .json();
    assert_eq!(
        status["info"]["status"], "deployed",
        "rolled back: {status:#}"
    );
    let claim = plane.get_json(&["pvc", "data-postgresql-0", "-n", ns]);
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "1Gi");
    assert_eq!(users(plane, helm, ns, &[]), "5");
}

/// A pod that never becomes Ready (its image cannot be pulled): deploy gives up at --timeout with
/// exit 4 and says why.
fn pod_that_never_becomes_ready(plane: &Plane, helm: Helm) {
    let _hold = plane.shared();
    let namespace = plane.namespace("never", helm);
    let ns = namespace.name.as_str();
    let timed_out = plane
        .pgk8s(
            helm,
            ns,
            &[
                "deploy",
                "--chart",
                plane.chart(),
                "--image",
                "registry.example.invalid/bitnami/postgresql:17.6.0",
                "--timeout",
                "25s",
            ],
        )
        .expect(4);
    assert!(
        timed_out.stderr.contains("ImagePullBackOff")
            || timed_out.stderr.contains("ErrImagePull")
            || timed_out.stderr.contains("cannot pull its image"),
        "the diagnosis names the cause:\n{}",
        timed_out.stderr
    );
    assert!(timed_out.stderr.contains("--image"), "{}", timed_out.stderr);
}

/// A server that cannot start (a bad setting in its data directory) crash-loops: verify exits 5
/// naming CrashLoopBackOff, and the previous container's log holds PostgreSQL's own FATAL.
fn server_that_cannot_start(plane: &Plane, helm: Helm) {
    let _hold = plane.shared();
    let namespace = plane.namespace("crash", helm);
    let ns = namespace.name.as_str();
    plane.deploy(helm, ns, &["--skip-migrations"]).succeeds();
    plane
        .kubectl(&[
            "exec",
            "postgresql-0",
            "-c",
            "postgresql",
            "-n",
            ns,
            "--",
            "sh",
            "-c",
            "echo \"shared_buffers = 'lots'\" >> /bitnami/postgresql/data/postgresql.conf",
        ])
        .succeeds();
    plane
        .kubectl(&["delete", "pod", "postgresql-0", "-n", ns, "--wait=true"])
        .succeeds();
    wait_until(90, "CrashLoopBackOff", || {
        let pod = plane
            .kubectl(&[
                "get",
                "pod",
                "postgresql-0",
                "-n",
                ns,
                "-o",
                "json",
                "--ignore-not-found",
            ])
            .succeeds()
            .stdout;
        pod.contains("\"CrashLoopBackOff\"")
    });
    let verify = plane.pgk8s(helm, ns, &["verify", "-o", "json"]).expect(5);
    assert!(
        verify.stdout.contains("CrashLoopBackOff") || verify.stdout.contains("keeps crashing"),
        "{}",
        verify.stdout
    );
    let logs = plane
        .pgk8s(helm, ns, &["logs", "--previous", "--tail", "20"])
        .succeeds();
    assert!(
        logs.stdout
            .contains("invalid value for parameter \"shared_buffers\": \"lots\"")
            && logs.stdout.contains("FATAL:  configuration file"),
        "{}",
        logs.stdout
    );
}

/// The emulated node streams stdin and stdout of `kubectl exec` and propagates exit codes, as
/// pgk8s's conversational psql session needs; the server reports the version the tier built.
#[test]
fn exec_streams_and_propagates_exit_codes() {
    let plane = plane_or_skip!();
    let _hold = plane.shared();
    let version = plane.kubectl(&["version", "-o", "json"]).succeeds().json();
    assert_eq!(
        version["serverVersion"]["gitVersion"],
        harness::KUBERNETES_VERSION
    );
    let namespace = plane.namespace("exec", Helm::V4);
    let ns = namespace.name.as_str();
    plane
        .deploy(Helm::V4, ns, &["--skip-migrations"])
        .succeeds();
    let exec = |script: &str, input: &str| {
        plane
            .kubectl(&[
                "exec",
                "-i",
                "postgresql-0",
                "-c",
                "postgresql",
                "-n",
                ns,
                "--",
                "sh",
                "-c",
                script,
            ])
            .stdin(input)
            .run()
    };
    let echoed = exec("cat; exit 3", "line one\nline two\n");
    assert_eq!(echoed.code(), Some(3));
    assert_eq!(echoed.stdout, "line one\nline two\n");
    assert!(
        echoed
            .stderr
            .contains("command terminated with exit code 3")
    );
    let secret = exec("cat /opt/bitnami/postgresql/secrets/password | wc -c", "");
    assert_eq!(
        secret.stdout.trim(),
        "32",
        "the Secret is mounted where the chart says"
    );
    // The pod's own server on its own loopback, with the password from the mounted Secret.
    let psql = exec(
        "PGPASSWORD=\"$(cat /opt/bitnami/postgresql/secrets/password)\" psql -X -At -h 127.0.0.1 -U learnflow -d learnflow -c 'select current_user'",
        "",
    );
    assert_eq!(psql.stdout.trim(), "learnflow", "{}", psql.stderr);

    // port-forward reaches the same server from the host, through the API server and the node.
    let secret = plane.get_json(&["secret", "postgresql-credentials", "-n", ns]);
    let password = {
        use base64::Engine;
        let encoded = secret["data"]["password"].as_str().expect("password key");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        String::from_utf8(bytes).expect("utf-8")
    };
    let mut forward =
        plane.kubectl_process(&["port-forward", "pod/postgresql-0", ":5432", "-n", ns]);
    let port = {
        use std::io::BufRead;
        let stdout = forward.stdout.take().expect("stdout");
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("port-forward prints its port");
        // Keep reading: kubectl dies of a broken pipe if its stdout closes.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        // "Forwarding from 127.0.0.1:PORT -> 5432"
        line.split(" -> ")
            .next()
            .and_then(|from| from.rsplit(':').next())
            .expect("a port")
            .trim()
            .to_string()
    };
    let forwarded = std::process::Command::new("psql")
        .args([
            "-X",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "learnflow",
            "-d",
            "learnflow",
        ])
        .args(["-c", "select 40 + 2"])
        .env("PGPASSWORD", &password)
        .output()
        .expect("psql runs");
    let _ = forward.kill();
    let _ = forward.wait();
    assert_eq!(
        String::from_utf8_lossy(&forwarded.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&forwarded.stderr)
    );
}

/// The release records helm keeps in `namespace` (Secrets labelled owner=helm), whatever their
/// state: helm 4's `list` has no `--all`.
fn helm_releases(plane: &Plane, namespace: &str) -> Vec<String> {
    plane
        .kubectl(&[
            "get",
            "secrets",
            "-n",
            namespace,
            "-l",
            "owner=helm",
            "-o",
            "name",
        ])
        .succeeds()
        .stdout
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_until(seconds: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

//! End-to-end against a real cluster (the current kube context), ignored unless asked for
//! (`PGK8S_E2E=1 cargo test --test e2e -- --ignored`):
//! deploy → verify → migrate status → seed → backup → restore → redeploy (data and password
//! kept) → undeploy, in a throwaway namespace. `.github/workflows/e2e.yml` runs it on kind.

use std::process::Command;

struct Namespace(String);

impl Drop for Namespace {
    /// Whatever happened, leave nothing behind.
    fn drop(&mut self) {
        let _ = pgk8s(
            &self.0,
            &["undeploy", "--delete-pvc", "--delete-namespace", "--yes"],
        );
    }
}

fn pgk8s(namespace: &str, args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_pgk8s"))
        .args(args)
        .args(["-n", namespace])
        .output()
        .expect("pgk8s runs");
    eprintln!(
        "$ pgk8s {} -n {namespace} → {:?}\n{}",
        args.join(" "),
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn succeeds(namespace: &str, args: &[&str]) -> String {
    let output = pgk8s(namespace, args);
    assert!(
        output.status.success(),
        "pgk8s {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("one JSON document")
}

fn users(namespace: &str) -> String {
    succeeds(
        namespace,
        &["psql", "-c", "select count(*) from users", "--", "-At"],
    )
    .trim()
    .to_string()
}

#[test]
#[ignore = "needs a real cluster: PGK8S_E2E=1 cargo test --test e2e -- --ignored"]
fn deploy_verify_seed_backup_restore_redeploy_undeploy_on_a_real_cluster() {
    // Run only on purpose: it deploys into the current kube context.
    assert_eq!(
        std::env::var("PGK8S_E2E").as_deref(),
        Ok("1"),
        "set PGK8S_E2E=1 to run against the current kube context (e.g. kind or minikube)"
    );
    let suffix: u32 = rand::random::<u32>() % 100_000;
    let namespace = Namespace(format!("pgk8s-e2e-{suffix}"));
    let ns = namespace.0.as_str();
    let deployed = json(&succeeds(ns, &["deploy", "--timeout", "10m", "-o", "json"]));
    assert_eq!(deployed["secret_action"], "created");
    assert_eq!(deployed["migrations"]["current_version"], 7);
    let verify = json(&succeeds(
        ns,
        &["verify", "--check-schema", "--wait", "3m", "-o", "json"],
    ));
    assert_eq!(verify["healthy"], true);
    succeeds(ns, &["migrate", "status", "--exit-code"]);
    succeeds(ns, &["seed"]);
    assert_eq!(users(ns), "5");
    let dump = std::env::temp_dir().join(format!("{ns}.dump"));
    succeeds(ns, &["backup", "-f", dump.to_str().unwrap()]);
    succeeds(ns, &["psql", "-c", "delete from users"]);
    assert_eq!(users(ns), "0");
    succeeds(ns, &["restore", "-f", dump.to_str().unwrap(), "--yes"]);
    assert_eq!(users(ns), "5");
    let again = json(&succeeds(ns, &["deploy", "--timeout", "10m", "-o", "json"]));
    assert_eq!(again["secret_action"], "reused");
    assert_eq!(again["release_action"], "unchanged");
    let upgraded = json(&succeeds(
        ns,
        &[
            "deploy",
            "--memory-limit",
            "1536Mi",
            "--timeout",
            "10m",
            "-o",
            "json",
        ],
    ));
    assert_eq!(upgraded["release_action"], "upgraded");
    assert_eq!(users(ns), "5", "data and password survive an upgrade");
    succeeds(
        ns,
        &["undeploy", "--delete-pvc", "--delete-namespace", "--yes"],
    );
    let _ = std::fs::remove_file(&dump);
    let _ = std::fs::remove_file(dump.with_extension("dump.json"));
}

//! Agents read less: the default text result of the everyday commands stays short — a status and
//! how to connect, not the cluster's state — and details wait behind `-v` or `-o json`.
//!
//! Every command runs on a healthy release of the simulated cluster; the size of its text and of
//! its JSON document is measured (bytes, and tokens approximated as bytes / 4, the usual rule of
//! thumb for English and code). The everyday results must stay at or under [`TEXT_BUDGET`].
//! `PGK8S_OUTPUT_TABLE=docs/agent-output.md cargo test --test agent_output` rewrites the
//! published table.

mod common;

use common::Cluster;

/// The most tokens the default text of an everyday command may take.
const TEXT_BUDGET: usize = 150;

/// Approximate tokens of `text`.
fn tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

#[test]
fn everyday_results_stay_under_150_tokens() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let dump = cluster.path().join("size.dump").display().to_string();
    // (command, whether it is held to the budget); run in this order on one release.
    let commands: Vec<(Vec<&str>, bool)> = vec![
        (
            vec!["deploy", "--timeout", "60s", "--skip-migrations"],
            true,
        ),
        (vec!["migrate"], true),
        (vec!["seed"], true),
        (vec!["verify", "--check-schema"], true),
        (vec!["info"], true),
        (vec!["status"], true),
        (vec!["migrate", "status"], false),
        (vec!["backup", "-f", &dump], false),
        (vec!["restore", "-f", &dump, "--dry-run"], false),
        (vec!["rotate-password", "--dry-run"], false),
        (vec!["undeploy", "--dry-run"], false),
        (vec!["deploy", "--timeout", "60s"], true),
    ];
    let mut table = String::from(
        "| command | text bytes | text ≈tokens | JSON bytes | JSON ≈tokens |\n|---|---:|---:|---:|---:|\n",
    );
    let mut over = Vec::new();
    for (args, budgeted) in &commands {
        let text = cluster.pgk8s(args).succeeds().stdout;
        if args[0] == "backup" {
            let _ = std::fs::remove_file(&dump);
            let _ = std::fs::remove_file(format!("{dump}.json"));
        }
        let mut json_args = args.clone();
        json_args.extend(["-o", "json"]);
        let json = cluster.pgk8s(&json_args).succeeds().stdout;
        let shown = args
            .iter()
            .map(|arg| if arg.contains('/') { "FILE" } else { arg })
            .collect::<Vec<_>>()
            .join(" ");
        table.push_str(&format!(
            "| `pgk8s {shown}` | {} | {} | {} | {} |\n",
            text.len(),
            tokens(&text),
            json.len(),
            tokens(&json)
        ));
        if *budgeted && tokens(&text) > TEXT_BUDGET {
            over.push(format!("pgk8s {shown}: {} tokens\n{text}", tokens(&text)));
        }
    }
    eprintln!("{table}");
    if let Ok(path) = std::env::var("PGK8S_OUTPUT_TABLE") {
        let page = format!(
            "# How much an agent reads\n\n\
             The size of each command's result on stdout, on a healthy release of the simulated\n\
             cluster: the default text, then the `-o json` document of the same command run again\n\
             right after (so `migrate` and `seed` show their idempotent second run in JSON).\n\
             Tokens are approximated as bytes / 4. The everyday results (`deploy`,\n\
             `migrate`, `seed`, `verify`, `info`, `status`) are held to {TEXT_BUDGET} tokens by\n\
             `tests/agent_output.rs`; details are behind `-v` (stderr) or `-o json`.\n\n{table}\n\
             Regenerate with `PGK8S_OUTPUT_TABLE=docs/agent-output.md cargo test --test agent_output`.\n"
        );
        std::fs::write(path, page).expect("table written");
    }
    assert!(
        over.is_empty(),
        "over {TEXT_BUDGET} tokens:\n{}",
        over.join("\n")
    );
}

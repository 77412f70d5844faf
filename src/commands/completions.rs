//! `pgk8s completions SHELL`: a completion script generated from the CLI definition.

use clap::CommandFactory;
use serde::Serialize;

use crate::cli::{Cli, CompletionsArgs};
use crate::output::{Outcome, Report, Text};

/// The generated script; printed raw in text mode.
#[derive(Serialize)]
struct Completions {
    shell: String,
    script: String,
}

impl Report for Completions {
    fn render(&self, text: &mut Text) {
        text.line(self.script.trim_end());
    }
}

/// Generates the completion script for the requested shell.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "pgk8s", &mut script);
    Ok(Outcome::success(&Completions {
        shell: args.shell.to_string(),
        script: String::from_utf8_lossy(&script).into_owned(),
    }))
}

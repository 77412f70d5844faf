//! One module per subcommand. Each orchestrates the lower modules and returns an
//! [`Outcome`]: a serializable report plus its exit code. None of them prints to stdout.

mod completions;

use crate::cli::Command;
use crate::context::Context;
use crate::error::Failure;
use crate::output::Outcome;

/// Runs `command`.
pub async fn run(command: Command, context: &Context) -> anyhow::Result<Outcome> {
    match command {
        Command::Completions(args) => completions::run(&args),
        other => Err(Failure::new(
            crate::error::ExitCode::General,
            format!("{} is not implemented yet", command_name(&other)),
        )
        .into()),
    }
    .map_err(|error| {
        let _ = context;
        error
    })
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Deploy(_) => "deploy",
        Command::Undeploy(_) => "undeploy",
        Command::Migrate(_) => "migrate",
        Command::Seed(_) => "seed",
        Command::Verify(_) => "verify",
        Command::Info(_) => "info",
        Command::Status => "status",
        Command::Backup(_) => "backup",
        Command::Restore(_) => "restore",
        Command::Psql(_) => "psql",
        Command::PortForward(_) => "port-forward",
        Command::Logs(_) => "logs",
        Command::RotatePassword(_) => "rotate-password",
        Command::Skill(_) => "skill",
        Command::Completions(_) => "completions",
    }
}

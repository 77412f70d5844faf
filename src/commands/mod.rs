//! One module per subcommand. Each orchestrates the lower modules — the release layer
//! ([`crate::release`]) first — and returns an [`Outcome`]: a serializable report plus its exit
//! code. None of them prints to stdout, and none imports another.

mod backup;
mod completions;
mod deploy;
mod info;
mod logs;
mod migrate;
mod move_to;
mod operator;
mod port_forward;
mod psql;
mod resize;
mod restore;
mod rotate_password;
mod seed;
pub mod skill;
mod status;
mod switchover;
mod undeploy;
mod upgrade;
mod verify;

use crate::cli::Command;
use crate::config::Config;
use crate::output::Outcome;

/// Runs `command`.
pub async fn run(command: Command, config: &Config) -> anyhow::Result<Outcome> {
    match &command {
        Command::Deploy(args) => deploy::run(args, config).await,
        Command::Undeploy(args) => undeploy::run(args, config).await,
        Command::Resize(args) => resize::run(args, config).await,
        Command::Upgrade(args) => upgrade::run(args, config).await,
        Command::Info(args) => info::run(args, config).await,
        Command::Migrate(args) => migrate::run(args, config).await,
        Command::Seed(args) => seed::run(args, config).await,
        Command::Verify(args) => verify::run(args, config).await,
        Command::Backup(args) => backup::run(args, config).await,
        Command::Restore(args) => restore::run(args, config).await,
        Command::Completions(args) => completions::run(args),
        Command::Status => status::run(config).await,
        Command::Psql(args) => psql::run(args, config).await,
        Command::PortForward(args) => port_forward::run(args, config).await,
        Command::Logs(args) => logs::run(args, config).await,
        Command::RotatePassword(args) => rotate_password::run(args, config).await,
        Command::Move(args) => move_to::run(args, config).await,
        Command::Switchover(args) => switchover::run(args, config).await,
        Command::Operator(args) => operator::run(args, config).await,
        Command::Skill(args) => skill::run(args),
    }
}

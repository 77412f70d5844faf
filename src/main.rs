//! The `pgk8s` binary: parse flags, run, exit with the documented code.

use clap::FromArgMatches;

fn main() -> std::process::ExitCode {
    let parsed = pgk8s::cli::command()
        .try_get_matches()
        .and_then(|matches| pgk8s::cli::Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => return std::process::ExitCode::from(pgk8s::run::usage_error(&error)),
    };
    std::process::ExitCode::from(pgk8s::run::run(cli))
}

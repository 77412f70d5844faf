//! The `pgk8s` binary: parse flags, run, exit with the documented code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = match pgk8s::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return std::process::ExitCode::from(pgk8s::run::usage_error(&error)),
    };
    std::process::ExitCode::from(pgk8s::run::run(cli))
}

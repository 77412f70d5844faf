//! From parsed flags to an exit code: logging setup, the async runtime, Ctrl-C, dispatch, and
//! printing the result or the error — once, here.

use std::io::ErrorKind;

use crate::cli::{Cli, OutputFormat};
use crate::config::Config;
use crate::error::ExitCode;
use crate::exit_status::{Verdict, classify};
use crate::interrupt::Stop;
use crate::output::{Outcome, Style, print_json_error};
use crate::process::ProcessError;

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    init_logging(cli.global.verbose, cli.global.quiet);
    let format = cli.global.output;
    let verbose = cli.global.verbose;
    let style = Style::detect(cli.global.color);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::General.code();
        }
    };
    let result = runtime.block_on(async {
        let stop = tokio::select! {
            result = dispatch(cli) => return result,
            stop = crate::interrupt::stop_requested() => stop,
        };
        // The command was cut short: its children are gone with its future, but a statement
        // they started may still run on the server. End those sessions (briefly, best effort).
        crate::session::terminate_open_sessions().await;
        Err(match stop {
            Stop::Signal(code) => anyhow::Error::new(Stopped(code)),
            Stop::Deadline => crate::deadline::expired(None).into(),
        })
    });
    // Dropping the runtime drops any child still running, which kills it.
    drop(runtime);
    // A signal that arrived during a shielded step let the step finish; the command still stops
    // with the signal's code.
    let result = match crate::interrupt::received() {
        Some(code) => Err(anyhow::Error::new(Stopped(code))),
        None => result,
    };
    match result {
        Ok(outcome) => match outcome.print(format, style) {
            Ok(()) => outcome.code.code(),
            Err(error) if error.kind() == ErrorKind::BrokenPipe => ExitCode::Success.code(),
            Err(error) => {
                eprintln!("error: could not write the result: {error}");
                ExitCode::General.code()
            }
        },
        Err(error) => report_error(&error, format, verbose),
    }
}

/// Prints a clap parse error (help and version are not errors) and returns its exit code:
/// 0 for help/version, 64 for everything else.
pub fn usage_error(error: &clap::Error) -> u8 {
    use clap::error::ErrorKind as ClapKind;
    match error.kind() {
        ClapKind::DisplayHelp
        | ClapKind::DisplayVersion
        | ClapKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::Success.code()
        }
        _ => {
            let command = command_path(std::env::args().skip(1));
            let (message, hint) = one_line(&error.render().to_string(), &command);
            eprintln!("{message}");
            eprintln!("hint: {hint}");
            if json_requested(std::env::args()) {
                let text = message.trim_start_matches("error: ");
                let _ = print_json_error(ExitCode::Usage, text, Some(&hint));
            }
            ExitCode::Usage.code()
        }
    }
}

/// `pgk8s migrate down`: the program and the subcommands named in `args`, whose help a usage
/// error points at. Read without clap's matches (parsing failed): words naming a subcommand of
/// the command reached so far, in order.
fn command_path(args: impl Iterator<Item = String>) -> String {
    let mut command = crate::cli::command();
    let mut path = vec!["pgk8s".to_string()];
    for arg in args {
        let Some(sub) = command.find_subcommand(&arg).cloned() else {
            continue;
        };
        path.push(arg);
        command = sub;
    }
    path.join(" ")
}

/// Whether the command line (or PGK8S_OUTPUT) asked for JSON, read without clap: parsing failed.
fn json_requested(args: impl Iterator<Item = String>) -> bool {
    let args: Vec<String> = args.collect();
    let from_flags = args
        .windows(2)
        .any(|pair| (pair[0] == "-o" || pair[0] == "--output") && pair[1] == "json")
        || args
            .iter()
            .any(|arg| arg == "--output=json" || arg == "-ojson");
    from_flags || std::env::var("PGK8S_OUTPUT").is_ok_and(|value| value == "json")
}

/// Folds clap's multi-line error into one `error:` line (a message ending in `:` takes the
/// indented lines that follow, as does a `[possible values: …]` line) and a hint (clap's tip,
/// or the usage line).
fn one_line(rendered: &str, command: &str) -> (String, String) {
    let mut lines = rendered.lines().peekable();
    let mut message = lines
        .next()
        .unwrap_or("error: invalid usage")
        .trim_end()
        .to_string();
    let mut listed = Vec::new();
    while let Some(line) = lines.next_if(|line| line.starts_with(' ') && !line.trim().is_empty()) {
        listed.push(line.trim().to_string());
    }
    if !listed.is_empty() {
        message = format!("{message} {}", listed.join(", "));
    }
    let tip = rendered
        .lines()
        .find_map(|line| line.trim().strip_prefix("tip: "))
        .map(str::to_string);
    let see = format!("see '{command} --help'");
    (
        message,
        match tip {
            Some(tip) => format!("{tip}; {see}"),
            None => see,
        },
    )
}

/// Ctrl-C or SIGTERM arrived.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
struct Stopped(ExitCode);

async fn dispatch(cli: Cli) -> anyhow::Result<Outcome> {
    let config = Config::resolve(&cli.global)?;
    if cli.command.has_deadline() {
        crate::deadline::start(config.timeout);
    }
    crate::commands::run(cli.command, &config).await
}

fn report_error(error: &anyhow::Error, format: OutputFormat, verbose: u8) -> u8 {
    if let Some(Stopped(code)) = error.downcast_ref::<Stopped>() {
        eprintln!("pgk8s: interrupted; the running command was stopped");
        return code.code();
    }
    let verdict = classify(error);
    let (code, hint) = (verdict.code, verdict.hint.clone());
    let message = crate::redact::scrub(&one_line_message(error, &verdict)).into_owned();
    eprintln!("error: {message}");
    if let Some(hint) = &hint {
        eprintln!("hint: {}", crate::redact::scrub(hint));
    }
    if verbose > 0 {
        for cause in error.chain().skip(1) {
            eprintln!("  caused by: {}", crate::redact::scrub(&cause.to_string()));
        }
        for cause in error.chain() {
            if let Some(process_error) = cause.downcast_ref::<ProcessError>() {
                for line in process_error.stderr_tail() {
                    eprintln!("  | {line}");
                }
            }
        }
    }
    if format == OutputFormat::Json {
        let _ = print_json_error(code, &message, hint.as_deref());
    }
    code.code()
}

/// The error chain joined with ": ", down to the error that decided the exit code: what lies
/// below it is the evidence it was built from (command lines, stderr), shown with `-v`.
fn one_line_message(error: &anyhow::Error, verdict: &Verdict) -> String {
    let Some(decided_by) = &verdict.decided_by else {
        return format!("{error:#}");
    };
    let mut layers = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        let done = &text == decided_by;
        layers.push(text);
        if done {
            break;
        }
    }
    layers.join(": ")
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default_level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("pgk8s={default_level},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::redact::ScrubbingStderr::default)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

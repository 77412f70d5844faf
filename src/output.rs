//! Rendering of command results: the only module that writes to stdout.
//!
//! Every command returns an [`Outcome`]: a serializable report plus the exit code it implies.
//! With `-o json` stdout receives exactly one JSON document; with `-o text`, a short summary
//! (colored only when allowed). Everything printed is scrubbed of registered secrets first.

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::cli::{ColorChoice, OutputFormat};
use crate::error::ExitCode;
use crate::redact::scrub;

/// A command's result, renderable as text and as JSON.
pub trait Report: Serialize {
    /// Writes the human summary.
    fn render(&self, text: &mut Text);
}

/// What a command hands back to `main`: its report and how the process should exit.
pub struct Outcome {
    json: Option<serde_json::Value>,
    text: Text,
    scrub: bool,
    /// The exit code; non-zero when a report describes a failure (e.g. verify found problems).
    pub code: ExitCode,
}

impl Outcome {
    /// A successful outcome.
    pub fn success(report: &impl Report) -> Outcome {
        Outcome::with_code(report, ExitCode::Success)
    }

    /// An outcome with an explicit exit code.
    pub fn with_code(report: &impl Report, code: ExitCode) -> Outcome {
        let mut text = Text::default();
        report.render(&mut text);
        let json = serde_json::to_value(report).unwrap_or_else(|error| {
            serde_json::json!({ "error": format!("report could not be serialized: {error}") })
        });
        Outcome {
            json: Some(json),
            text,
            scrub: true,
            code,
        }
    }

    /// An outcome that prints nothing: the command already streamed its result (logs, psql).
    pub fn streamed(code: ExitCode) -> Outcome {
        Outcome {
            json: None,
            text: Text::default(),
            scrub: true,
            code,
        }
    }

    /// Prints this outcome without scrubbing secrets: only for output the user explicitly asked
    /// to contain one (`info --show-password`).
    pub fn revealing_secrets(mut self) -> Outcome {
        self.scrub = false;
        self
    }

    /// Prints the outcome to stdout in `format`.
    pub fn print(&self, format: OutputFormat, style: Style) -> std::io::Result<()> {
        let rendered = match (format, &self.json) {
            (_, None) => return Ok(()),
            (OutputFormat::Json, Some(json)) => json_document(json),
            (OutputFormat::Text, Some(_)) => self.text.finish(style),
        };
        if self.scrub {
            write_stdout(&rendered)
        } else {
            write_stdout_unscrubbed(&rendered)
        }
    }
}

/// Prints an error as the one JSON document of a `-o json` run.
pub fn print_json_error(code: ExitCode, message: &str, hint: Option<&str>) -> std::io::Result<()> {
    let document = serde_json::json!({
        "error": { "code": code.code(), "message": message, "hint": hint },
    });
    write_stdout(&json_document(&document))
}

/// Writes raw text (a log line, SKILL.md) to stdout as it comes, scrubbed.
pub fn print_raw(text: &str) -> std::io::Result<()> {
    write_stdout(text)
}

fn json_document(value: &serde_json::Value) -> String {
    let mut rendered = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".to_string());
    rendered.push('\n');
    rendered
}

fn write_stdout(text: &str) -> std::io::Result<()> {
    write_stdout_unscrubbed(&scrub(text))
}

fn write_stdout_unscrubbed(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// Whether text output may use ANSI colors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Decides from `--color` and the environment: `auto` colors only a terminal stdout, with
    /// `NO_COLOR` unset and `TERM` not `dumb`.
    pub fn detect(choice: ColorChoice) -> Style {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
                    && std::env::var("TERM").map_or(true, |term| term != "dumb")
            }
        };
        Style { color }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// A text summary under construction. Marks are painted when it is printed.
#[derive(Default)]
pub struct Text {
    lines: Vec<Line>,
}

enum Line {
    Plain(String),
    Check { state: CheckState, label: String },
}

/// The state of one line of a checklist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckState {
    /// Passed.
    Ok,
    /// Worth a look, not a failure.
    Warn,
    /// Failed.
    Fail,
    /// Not run.
    Skipped,
}

impl Text {
    /// Adds a plain line.
    pub fn line(&mut self, line: impl Into<String>) {
        self.lines.push(Line::Plain(line.into()));
    }

    /// Adds an aligned `name: value` line.
    pub fn field(&mut self, name: &str, value: impl std::fmt::Display) {
        self.line(format!("  {:<12} {value}", format!("{name}:")));
    }

    /// Adds a checklist line with a mark for `state`.
    pub fn check(&mut self, state: CheckState, label: impl Into<String>) {
        self.lines.push(Line::Check {
            state,
            label: label.into(),
        });
    }

    fn finish(&self, style: Style) -> String {
        let mut rendered = String::new();
        for line in &self.lines {
            match line {
                Line::Plain(text) => rendered.push_str(text),
                Line::Check { state, label } => {
                    let mark = match state {
                        CheckState::Ok => style.paint("32", "ok  "),
                        CheckState::Warn => style.paint("33", "warn"),
                        CheckState::Fail => style.paint("31", "FAIL"),
                        CheckState::Skipped => style.paint("2", "skip"),
                    };
                    rendered.push_str(&format!("  [{mark}] {label}"));
                }
            }
            rendered.push('\n');
        }
        rendered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Example {
        healthy: bool,
    }

    impl Report for Example {
        fn render(&self, text: &mut Text) {
            text.line("example");
            text.check(CheckState::Ok, "database connected");
            text.field("host", "db.svc");
        }
    }

    #[test]
    fn text_and_json_render_the_same_report() {
        let outcome = Outcome::success(&Example { healthy: true });
        assert_eq!(
            outcome.text.finish(Style { color: false }),
            "example\n  [ok  ] database connected\n  host:        db.svc\n"
        );
        assert_eq!(
            json_document(outcome.json.as_ref().unwrap()),
            "{\n  \"healthy\": true\n}\n"
        );
    }

    #[test]
    fn color_is_applied_only_when_allowed() {
        let outcome = Outcome::success(&Example { healthy: true });
        assert!(
            outcome
                .text
                .finish(Style { color: true })
                .contains("\x1b[32mok  \x1b[0m")
        );
    }
}

//! Progress on stderr while something slow runs: a spinner on a terminal, and otherwise one log
//! line each time the state changes (so CI logs show what happened without control codes).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress line.
pub struct Progress {
    bar: Option<ProgressBar>,
    last: String,
}

impl Progress {
    /// Starts showing `message`; silent under `-q` (when info logs are off).
    pub fn start(message: &str) -> Progress {
        let target = ProgressDrawTarget::stderr();
        let bar = (!target.is_hidden() && tracing::enabled!(tracing::Level::INFO)).then(|| {
            let bar = ProgressBar::with_draw_target(None, target);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let mut progress = Progress {
            bar,
            last: String::new(),
        };
        progress.update(message);
        progress
    }

    /// Shows a new state; without a terminal, logs it only when it changed.
    pub fn update(&mut self, message: &str) {
        let message = crate::redact::scrub(message).into_owned();
        if message == self.last {
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_message(message.clone()),
            None => tracing::info!("{message}"),
        }
        self.last = message;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

//! The process-wide redactor: every secret value pgk8s learns is registered here, and every
//! string that leaves the process (logs, errors, reports) is scrubbed through [`scrub`].
//!
//! Keeping secrets out of argv is the first line of defence (values travel on stdin or stay in
//! Kubernetes Secrets); this is the second, for the day a tool echoes something back.

use std::borrow::Cow;
use std::io::Write;
use std::sync::RwLock;

use base64::Engine;

/// What a secret is replaced with wherever it would have been shown.
pub const REDACTED: &str = "<redacted>";

/// Values shorter than this are not registered: scrubbing "a" or "12" out of every line would
/// mangle output without protecting anything a generated or user-chosen password looks like.
const MIN_SECRET_LEN: usize = 4;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Characters a URL keeps as they are in its user-info and query (RFC 3986 unreserved).
const URL_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes everything but unreserved URL characters (for user names and passwords in
/// connection URLs).
pub fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, URL_UNRESERVED).to_string()
}

/// Registers a secret value in every form a tool could echo it in: as is, base64 (Secret
/// objects), percent-encoded (URLs) and JSON-escaped (manifests).
pub fn register(secret: &str) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let forms = [
        secret.to_string(),
        base64::engine::general_purpose::STANDARD.encode(secret),
        percent_encode(secret),
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
        serde_json::to_string(secret)
            .map(|quoted| quoted.trim_matches('"').to_string())
            .unwrap_or_default(),
    ];
    let mut secrets = SECRETS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for value in forms {
        if value.len() < MIN_SECRET_LEN {
            continue;
        }
        if !secrets.contains(&value) {
            secrets.push(value);
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    secrets.sort_by_key(|value| std::cmp::Reverse(value.len()));
}

/// Replaces every registered secret in `text` with [`REDACTED`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut scrubbed = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if scrubbed.contains(secret.as_str()) {
            scrubbed = Cow::Owned(scrubbed.replace(secret.as_str(), REDACTED));
        }
    }
    scrubbed
}

/// A writer for log lines: buffers one event and writes it to stderr scrubbed.
///
/// `tracing-subscriber` formats an event completely before writing it, so a secret is never split
/// across two buffers.
#[derive(Default)]
pub struct ScrubbingStderr {
    buffer: Vec<u8>,
}

impl Write for ScrubbingStderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let result = std::io::stderr().write_all(scrub(&text).as_bytes());
        self.buffer.clear();
        result
    }
}

impl Drop for ScrubbingStderr {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secret_and_its_base64_are_scrubbed() {
        register("Canary-Redact-7d1f");
        let encoded = base64::engine::general_purpose::STANDARD.encode("Canary-Redact-7d1f");
        let line = format!("password=Canary-Redact-7d1f data={encoded}");
        assert_eq!(scrub(&line), "password=<redacted> data=<redacted>");
    }

    #[test]
    fn url_encoded_and_json_escaped_forms_are_scrubbed() {
        register("Canary/Pass word\"7");
        for form in ["Canary%2FPass%20word%227", "Canary/Pass word\\\"7"] {
            assert_eq!(scrub(&format!("x {form} y")), "x <redacted> y", "{form}");
        }
    }

    #[test]
    fn unregistered_text_is_borrowed_unchanged() {
        assert!(matches!(scrub("nothing secret here"), Cow::Borrowed(_)));
    }

    #[test]
    fn very_short_values_are_not_registered() {
        register("ab");
        assert_eq!(scrub("tab stop"), "tab stop");
    }
}

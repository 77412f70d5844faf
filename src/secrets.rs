//! Passwords and the credentials Secret: generation from the OS RNG, the Secret manifest (applied
//! through stdin, never argv), and reading values back when the user explicitly asks.
//!
//! Every password that enters the process is registered with [`crate::redact`] at once.

use std::collections::BTreeMap;

use base64::Engine;
use rand::distr::Alphanumeric;
use rand::{Rng, TryRngCore};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::chart;
use crate::kube::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// Length of generated passwords: 32 alphanumerics is about 190 bits.
pub const PASSWORD_LENGTH: usize = 32;

/// A new random password from the operating system's RNG, registered for redaction.
pub fn generate_password() -> SecretString {
    let password: String = rand::rngs::OsRng
        .unwrap_err()
        .sample_iter(&Alphanumeric)
        .take(PASSWORD_LENGTH)
        .map(char::from)
        .collect();
    adopt(password)
}

/// Wraps a password that came from elsewhere (a Secret, a URL) and registers it for redaction.
pub fn adopt(password: String) -> SecretString {
    crate::redact::register(&password);
    SecretString::from(password)
}

/// The passwords of one release, keyed as the chart expects them.
pub struct Credentials {
    keys: BTreeMap<&'static str, SecretString>,
}

impl Credentials {
    /// Fresh passwords for the superuser, the app user and (with replicas) replication.
    pub fn generate(replication: bool) -> Credentials {
        let mut keys = BTreeMap::new();
        keys.insert(chart::SUPERUSER_PASSWORD_KEY, generate_password());
        keys.insert(chart::APP_PASSWORD_KEY, generate_password());
        if replication {
            keys.insert(chart::REPLICATION_PASSWORD_KEY, generate_password());
        }
        Credentials { keys }
    }

    /// The Secret manifest holding these passwords (JSON, for `kubectl apply -f -`).
    pub fn manifest(&self, name: &str, namespace: &str, database: &str, username: &str) -> Value {
        let data: BTreeMap<&str, String> = self
            .keys
            .iter()
            .map(|(key, secret)| (*key, encode(secret.expose_secret())))
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": { MANAGED_BY_LABEL: MANAGED_BY_VALUE },
                "annotations": {
                    "pgk8s.io/database": database,
                    "pgk8s.io/username": username,
                },
            },
            "data": data,
        })
    }
}

fn encode(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

/// The keys of `required` that `secret` lacks or leaves empty.
pub fn missing_keys<'a>(secret: &crate::kube::Object, required: &[&'a str]) -> Vec<&'a str> {
    required
        .iter()
        .copied()
        .filter(|key| {
            secret
                .secret_value(key)
                .is_none_or(|value| value.is_empty())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_32_alphanumerics_and_distinct() {
        let first = generate_password();
        let second = generate_password();
        assert_eq!(first.expose_secret().len(), PASSWORD_LENGTH);
        assert!(
            first
                .expose_secret()
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
        assert_ne!(first.expose_secret(), second.expose_secret());
        assert_eq!(
            crate::redact::scrub(first.expose_secret()),
            crate::redact::REDACTED
        );
    }

    #[test]
    fn the_manifest_carries_every_key_base64_encoded() {
        let credentials = Credentials::generate(true);
        let manifest =
            credentials.manifest("db-credentials", "learnflow", "learnflow", "learnflow");
        let data = manifest["data"].as_object().unwrap();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["password", "postgres-password", "replication-password"]
        );
        assert_eq!(manifest["metadata"]["labels"][MANAGED_BY_LABEL], "pgk8s");
    }
}

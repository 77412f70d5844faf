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
use sha2::Digest;

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

/// Iterations of PBKDF2 in SCRAM verifiers (PostgreSQL's default).
const SCRAM_ITERATIONS: u32 = 4096;

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password`, computed here so that
/// `ALTER ROLE … PASSWORD` never sends (or logs) the plain text, as psql's `\password` does.
pub fn scram_verifier(password: &SecretString) -> String {
    let salt: [u8; 16] = rand::random();
    scram_verifier_with(password.expose_secret().as_bytes(), &salt, SCRAM_ITERATIONS)
}

fn scram_verifier_with(password: &[u8], salt: &[u8], iterations: u32) -> String {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut round = hmac(password, &block);
    let mut salted = round;
    for _ in 1..iterations {
        round = hmac(password, &round);
        for (byte, next) in salted.iter_mut().zip(round) {
            *byte ^= next;
        }
    }
    let stored_key = sha2::Sha256::digest(hmac(&salted, b"Client Key"));
    let server_key = hmac(&salted, b"Server Key");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        b64(salt),
        b64(&stored_key),
        b64(&server_key)
    )
}

/// HMAC-SHA-256 (RFC 2104).
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&sha2::Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |value: u8| block.iter().map(|byte| byte ^ value).collect::<Vec<u8>>();
    let inner = sha2::Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    sha2::Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
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

    const SCRAM_PENCIL: &str = "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$nQpbZ77WudtqufPwikHXGRt6g2QJ4zns8bZLw273DRM=:jn2amWP1q1h+jgjy0YTO14S6/F02SV7taipOeB7ef20=";

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn scram_verifiers_have_postgresql_shape() {
        // Expected value computed independently with Python's hashlib.pbkdf2_hmac and hmac.
        let verifier = scram_verifier_with(b"pencil", b"0123456789abcdef", 4096);
        assert_eq!(verifier, SCRAM_PENCIL);
        let random = scram_verifier(&SecretString::from("pencil"));
        assert!(random.starts_with("SCRAM-SHA-256$4096:") && random != verifier);
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

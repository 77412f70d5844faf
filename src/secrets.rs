//! Passwords and the credentials Secret: generation from the OS RNG, the Secret manifest (applied
//! through stdin, never argv), and reading values back when the user explicitly asks.
//!
//! Every password that enters the process is registered with [`crate::redact`] at once.

use std::collections::BTreeMap;

use base64::Engine;
use rand::distr::Alphanumeric;
use rand::{Rng, TryRngCore};
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest;

use crate::chart;
use crate::kube::SecretData;

/// The prefix of the staging key a password rotation writes into the Secret before it changes
/// the role (`pending-password`): present only while a rotation is under way or was cut short.
pub const PENDING_KEY_PREFIX: &str = "pending-";

/// The staging keys of rotations that did not finish.
pub fn interrupted_rotations(data: &crate::kube::SecretData) -> Vec<String> {
    data.encoded()
        .keys()
        .filter(|key| key.starts_with(PENDING_KEY_PREFIX))
        .cloned()
        .collect()
}

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

    /// These passwords as Secret data (each registered for redaction).
    pub fn data(&self) -> SecretData {
        let mut data = SecretData::default();
        for (key, password) in &self.keys {
            data.insert(key, password);
        }
        data
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
    let (stored_key, server_key) = scram_keys(password, salt, iterations);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        b64(salt),
        b64(&stored_key),
        b64(&server_key)
    )
}

/// Whether `password` is the one a `SCRAM-SHA-256$…` verifier (from `pg_authid.rolpassword`)
/// was made from; None when the text is not a SCRAM verifier. Lets pgk8s tell which of two
/// candidate passwords the database holds without sending either to the server.
pub fn scram_matches(verifier: &str, password: &SecretString) -> Option<bool> {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.decode(text).ok();
    let rest = verifier.strip_prefix("SCRAM-SHA-256$")?;
    let (parameters, keys) = rest.split_once('$')?;
    let (iterations, salt) = parameters.split_once(':')?;
    let (stored_key, _) = keys.split_once(':')?;
    let (expected, _) = scram_keys(
        password.expose_secret().as_bytes(),
        &b64(salt)?,
        iterations.parse().ok()?,
    );
    Some(b64(stored_key)? == expected)
}

/// SCRAM's StoredKey and ServerKey for a password (RFC 5802, as PostgreSQL computes them for
/// ASCII passwords).
fn scram_keys(password: &[u8], salt: &[u8], iterations: u32) -> (Vec<u8>, Vec<u8>) {
    use hmac::Mac;
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut salted);
    let keyed = |message: &[u8]| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&salted)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    };
    let stored_key = sha2::Sha256::digest(keyed(b"Client Key")).to_vec();
    (stored_key, keyed(b"Server Key"))
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
    fn scram_verifiers_have_postgresql_shape() {
        // Expected value computed independently with Python's hashlib.pbkdf2_hmac and hmac.
        let verifier = scram_verifier_with(b"pencil", b"0123456789abcdef", 4096);
        assert_eq!(verifier, SCRAM_PENCIL);
        let random = scram_verifier(&SecretString::from("pencil"));
        assert!(random.starts_with("SCRAM-SHA-256$4096:") && random != verifier);
    }

    #[test]
    fn verifiers_tell_which_password_they_were_made_from() {
        let pencil = SecretString::from("pencil");
        let verifier = scram_verifier(&pencil);
        assert_eq!(scram_matches(&verifier, &pencil), Some(true));
        assert_eq!(scram_matches(SCRAM_PENCIL, &pencil), Some(true));
        assert_eq!(
            scram_matches(&verifier, &SecretString::from("crayon")),
            Some(false)
        );
        assert_eq!(scram_matches("md5abcdef", &pencil), None);
    }

    #[test]
    fn the_manifest_carries_every_key_base64_encoded() {
        let credentials = Credentials::generate(true);
        let manifest = crate::manifests::SecretManifest::credentials(
            "db-credentials",
            "learnflow",
            "learnflow",
            "learnflow",
            credentials.data(),
        );
        let manifest = serde_json::to_value(&manifest).unwrap();
        let data = manifest["data"].as_object().unwrap();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["password", "postgres-password", "replication-password"]
        );
        assert_eq!(
            manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "pgk8s"
        );
        assert_eq!(manifest["type"], "Opaque");
        assert_eq!(
            manifest["metadata"]["annotations"]["pgk8s.io/username"],
            "learnflow"
        );
    }
}

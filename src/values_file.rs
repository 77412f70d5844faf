//! `deploy --values FILE`: the user's chart values, read with a bound, checked against what
//! pgk8s manages, merged over pgk8s's own values, and shown with every credential redacted.

use serde_json::{Value, json};

use crate::error::Failure;

/// Values pgk8s owns: overriding them from a values file would break credentials, names or
/// the architecture pgk8s expects.
const MANAGED_VALUES: [&str; 7] = [
    "auth",
    "global.postgresql",
    "architecture",
    "fullnameOverride",
    "nameOverride",
    "readReplicas.replicaCount",
    "primary.persistence.existingClaim",
];

/// The largest `--values` file pgk8s reads: chart values are kilobytes, so anything near this
/// is a mistake (or `/dev/zero`), not configuration.
const VALUES_FILE_MAX: u64 = 4 << 20;

/// Reads `--values FILE`: it must be a YAML mapping and must not touch what pgk8s manages.
/// Values under keys that name a password or secret are registered for redaction.
pub fn read_values_file(path: &std::path::Path) -> Result<Value, Failure> {
    let shown = path.display();
    let text = crate::input::read_regular_text(path, VALUES_FILE_MAX).map_err(|why| {
        Failure::usage(format!("cannot read --values {shown}: {why}"))
            .hint("pass the path of a readable YAML file")
    })?;
    let value: Value = serde_yaml::from_str(&text).map_err(|error| {
        Failure::usage(format!("--values {shown} is not valid YAML: {error}"))
            .hint("check the file with `helm template` or a YAML linter")
    })?;
    let value = if value.is_null() { json!({}) } else { value };
    if !value.is_object() {
        return Err(Failure::usage(format!(
            "--values {shown} must be a YAML mapping of chart values"
        ))
        .hint("map chart keys to values, e.g. `primary: {persistence: {size: 20Gi}}`"));
    }
    for path_of_key in MANAGED_VALUES {
        let set = path_of_key
            .split('.')
            .try_fold(&value, |node, key| node.get(key));
        if let Some(node) = set {
            // Name the exact key: `auth.postgresPassword` says more than `auth`.
            let key = match node.as_object().and_then(|fields| fields.keys().next()) {
                Some(child) => format!("{path_of_key}.{child}"),
                None => path_of_key.to_string(),
            };
            return Err(Failure::usage(format!("--values {shown} sets {key}, which pgk8s manages"))
                .hint("use pgk8s's flags instead (--database, --username, --password-from-secret, --replicas, --release); passwords never go in values files"));
        }
    }
    register_secret_values(&value);
    Ok(value)
}

/// Whether a chart value's key names a credential (`primary.initdb.password`, `ldap.bindpw`,
/// `apiToken`, ...): its value is never shown. Keys that name a Secret object
/// (`existingSecret`, `certificatesSecret`) hold names, not secrets.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "passphrase",
        "token",
        "bindpw",
        "privatekey",
        "secretkey",
        "credential",
    ]
    .iter()
    .any(|word| key.contains(word))
        || key == "secret"
        || key == "pw"
}

/// Registers the values of secret-named keys (strings, at any depth) for redaction.
fn register_secret_values(value: &Value) {
    if let Value::Object(fields) = value {
        for (key, field) in fields {
            match field {
                Value::String(secret) if is_secret_key(key) => crate::redact::register(secret),
                _ => register_secret_values(field),
            }
        }
    }
}

/// `values` with the value of every secret-named key replaced by `<redacted>`, for reports.
pub fn redact_secret_values(values: &Value) -> Value {
    match values {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, field)| {
                    let shown = match field {
                        Value::String(_) | Value::Number(_) if is_secret_key(key) => {
                            json!(crate::redact::REDACTED)
                        }
                        _ => redact_secret_values(field),
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Merges `overlay` into `base` as helm merges values files: mappings key by key, anything
/// else replaced.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_values_override_ours_deeply() {
        let mut base = json!({"primary": {"resources": {"limits": {"memory": "1Gi"}}, "persistence": {"size": "8Gi"}}});
        merge(
            &mut base,
            &json!({"primary": {"persistence": {"size": "20Gi"}}, "metrics": {"enabled": true}}),
        );
        assert_eq!(base["primary"]["persistence"]["size"], "20Gi");
        assert_eq!(base["primary"]["resources"]["limits"]["memory"], "1Gi");
        assert_eq!(base["metrics"]["enabled"], true);
    }

    #[test]
    fn credentials_in_values_are_redacted_but_secret_names_are_not() {
        let values = json!({
            "primary": {"initdb": {"user": "init", "password": "p4ss-canary"}},
            "ldap": {"bindpw": "ldap-canary"},
            "tls": {"certificatesSecret": "tls-certs"},
        });
        let shown = redact_secret_values(&values);
        assert_eq!(shown["primary"]["initdb"]["password"], "<redacted>");
        assert_eq!(shown["primary"]["initdb"]["user"], "init");
        assert_eq!(shown["ldap"]["bindpw"], "<redacted>");
        assert_eq!(shown["tls"]["certificatesSecret"], "tls-certs");
    }
}

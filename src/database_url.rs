//! `--database-url` (or `PGK8S_DATABASE_URL`): a `postgres://` URL for a local psql, used instead
//! of exec-ing into the pod (through `kubectl port-forward`, or a database reachable from CI).
//!
//! Every form a password can take in a libpq URL is a secret: the user-info password and a
//! `password` query parameter, percent-encoded or not. All of them are registered with the
//! redactor before anything else happens (so the variable holding the URL is also stripped from
//! every child's environment), removed from the URL that is shown or passed to psql, and handed
//! to psql alone through its `PGPASSWORD` environment — never argv, never a file that a `kill
//! -9` could leave behind.

use secrecy::SecretString;

use crate::error::Failure;

/// A parsed `--database-url`: the URL without its password, and the password apart.
pub struct DatabaseUrl {
    shown: String,
    password: Option<SecretString>,
}

impl DatabaseUrl {
    /// Parses `postgres[ql]://[user[:password]@]host[:port][/db][?params]`.
    pub fn parse(text: &str) -> Result<DatabaseUrl, Failure> {
        register_password_forms(text);
        let invalid = |why: &str| {
            Failure::usage(format!("--database-url is not a valid PostgreSQL URL: {why}"))
                .hint("use postgresql://USER:PASSWORD@HOST:PORT/DATABASE (prefer setting PGK8S_DATABASE_URL to passing it on the command line)")
        };
        let Some((scheme, _)) = text.split_once("://") else {
            return Err(invalid("it has no scheme"));
        };
        if scheme != "postgres" && scheme != "postgresql" {
            return Err(invalid("the scheme must be postgres:// or postgresql://"));
        }
        let mut url = url::Url::parse(text).map_err(|error| match error {
            url::ParseError::InvalidPort => invalid("the port is not a number"),
            url::ParseError::EmptyHost => invalid("it has no host"),
            _ => invalid("it cannot be parsed (one host only; percent-encode special characters)"),
        })?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it has no host"));
        }
        let from_user_info = (!url.password().unwrap_or_default().is_empty()).then(|| {
            percent_encoding::percent_decode_str(url.password().unwrap_or_default())
                .decode_utf8_lossy()
                .into_owned()
        });
        let from_query = url
            .query_pairs()
            .find(|(name, _)| name == "password")
            .map(|(_, value)| value.into_owned());
        let password = from_user_info.or(from_query);
        if let Some(password) = &password {
            crate::redact::register(password);
        }
        url.set_password(None)
            .map_err(|()| invalid("it has no host"))?;
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| name != "password")
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        Ok(DatabaseUrl {
            shown: url.to_string(),
            password: password.map(SecretString::from),
        })
    }

    /// The URL with every password removed: safe to show and to pass to psql.
    pub fn without_password(&self) -> &str {
        &self.shown
    }

    /// The password, for psql's environment only.
    pub fn password(&self) -> Option<&SecretString> {
        self.password.as_ref()
    }
}

/// Registers whatever looks like a password in `text` before it is validated, so that even a
/// URL pgk8s rejects cannot leak through an error or a child's environment: the user-info
/// password and any `password=` value (URL or conninfo form), raw and decoded.
fn register_password_forms(text: &str) {
    let mut candidates = Vec::new();
    if let Some((_, rest)) = text.split_once("://")
        && let Some((user_info, _)) = rest.split('/').next().unwrap_or_default().rsplit_once('@')
        && let Some((_, password)) = user_info.split_once(':')
    {
        candidates.push(password.to_string());
    }
    for (index, _) in text.match_indices("password=") {
        let value = &text[index + "password=".len()..];
        let end = value.find(['&', ' ', '#']).unwrap_or(value.len());
        candidates.push(value[..end].trim_matches('\'').to_string());
    }
    for candidate in candidates {
        crate::redact::register(&candidate);
        crate::redact::register(
            &percent_encoding::percent_decode_str(&candidate).decode_utf8_lossy(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitCode;
    use secrecy::ExposeSecret;

    #[test]
    fn user_info_passwords_leave_the_url_and_are_redacted_in_every_form() {
        let url = DatabaseUrl::parse(
            "postgresql://app:Url%3ACanary-99@db.example:5433/learnflow?sslmode=require",
        )
        .unwrap();
        assert_eq!(
            url.without_password(),
            "postgresql://app@db.example:5433/learnflow?sslmode=require"
        );
        assert_eq!(url.password().unwrap().expose_secret(), "Url:Canary-99");
        for form in ["Url:Canary-99", "Url%3ACanary-99"] {
            assert_eq!(
                crate::redact::scrub(form),
                crate::redact::REDACTED,
                "{form}"
            );
        }
    }

    #[test]
    fn query_passwords_are_secrets_too() {
        let url = DatabaseUrl::parse(
            "postgres://app@db:5432/learnflow?password=Query%2FCanary-42&sslmode=disable",
        )
        .unwrap();
        assert_eq!(
            url.without_password(),
            "postgres://app@db:5432/learnflow?sslmode=disable"
        );
        assert_eq!(url.password().unwrap().expose_secret(), "Query/Canary-42");
        assert_eq!(
            crate::redact::scrub("x Query%2FCanary-42 Query/Canary-42"),
            "x <redacted> <redacted>"
        );
    }

    #[test]
    fn malformed_urls_are_usage_errors_and_still_register_their_password() {
        for bad in [
            "mysql://x@h/db",
            "postgres://",
            "localhost:5432",
            "postgres://u:Bad-Url-Canary-1@h:port/db",
        ] {
            assert_eq!(
                DatabaseUrl::parse(bad).err().map(|failure| failure.code),
                Some(ExitCode::Usage),
                "{bad}"
            );
        }
        assert_eq!(
            crate::redact::scrub("Bad-Url-Canary-1"),
            crate::redact::REDACTED
        );
    }
}

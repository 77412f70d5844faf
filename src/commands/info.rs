//! `pgk8s info`: how to connect. The password is read only with `--show-password`, and only
//! then printed.

use serde::Serialize;

use secrecy::ExposeSecret;

use crate::chart;
use crate::cli::InfoArgs;
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::output::{Outcome, Report, Text};
use crate::redact::REDACTED;
use crate::release::{find_endpoints, password_command, read_secret};

/// Connection settings of the release.
#[derive(Serialize)]
struct InfoReport {
    release: String,
    namespace: String,
    host: String,
    port: u16,
    database: String,
    username: String,
    secret: String,
    url: String,
    password_shown: bool,
    password_command: String,
    local_access: String,
}

impl Report for InfoReport {
    fn render(&self, text: &mut Text) {
        text.line(format!(
            "PostgreSQL release {} in namespace {}:",
            self.release, self.namespace
        ));
        text.field("host", &self.host);
        text.field("port", self.port);
        text.field("database", &self.database);
        text.field("user", &self.username);
        text.field("url", &self.url);
        text.field("secret", &self.secret);
        if !self.password_shown {
            text.line(format!("  password:    {}", self.password_command));
        }
        text.line(format!("  from here:   {}", self.local_access));
    }
}

/// Runs `pgk8s info`.
pub async fn run(args: &InfoArgs, config: &Config) -> anyhow::Result<Outcome> {
    let kube = config.kube();
    let endpoints = find_endpoints(&kube, &config.release).await?;
    let secret_name = endpoints.secret(&config.release);
    let service = endpoints.service;
    let namespace = config.namespace.as_str();
    let host = format!("{service}.{namespace}.svc.cluster.local");
    let key = chart::password_key(config.username.as_str());
    let password = if args.show_password {
        let secret = read_secret(&kube, &secret_name).await?;
        Some(secret.secret_value(key).ok_or_else(|| {
            Failure::new(
                ExitCode::General,
                format!("Secret {secret_name} has no key {key}"),
            )
        })?)
    } else {
        None
    };
    let shown_password = password
        .as_ref()
        .map(|password| crate::redact::percent_encode(password.expose_secret()))
        .unwrap_or_else(|| REDACTED.to_string());
    let report = InfoReport {
        release: config.release.to_string(),
        namespace: namespace.to_string(),
        url: format!(
            "postgresql://{}:{shown_password}@{host}:{}/{}",
            config.username,
            chart::PORT,
            config.database
        ),
        host,
        port: chart::PORT,
        database: config.database.to_string(),
        username: config.username.to_string(),
        secret: secret_name.clone(),
        password_shown: password.is_some(),
        password_command: password_command(&secret_name, namespace, key),
        local_access: format!("pgk8s port-forward -n {namespace} (then connect to 127.0.0.1:5432)"),
    };
    let outcome = Outcome::success(&report);
    // The user asked to see the password: this is the one output it is not scrubbed from.
    Ok(if password.is_some() {
        outcome.revealing_secrets()
    } else {
        outcome
    })
}

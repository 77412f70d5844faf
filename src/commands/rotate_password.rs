//! `pgk8s rotate-password`: a new password for the app user or the superuser, set in the
//! database and in the Secret so that the two never disagree.
//!
//! The database changes first, inside a superuser session that stays open while the Secret is
//! updated; if the Secret update fails, the same session puts the old password back. The
//! password is sent as a SCRAM verifier, so its plain text reaches neither argv nor server logs.

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;

use crate::chart::Names;
use crate::cli::{Role, RotatePasswordArgs};
use crate::context::Context;
use crate::error::{ExitCode, Failure};
use crate::migrate::literal;
use crate::output::{Outcome, Report, Text};
use crate::secrets::{adopt, generate_password, scram_verifier};
use crate::sql::{Login, Mode, login_user};

/// How long the superuser session waits for the database.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Serialize)]
struct RotateReport {
    dry_run: bool,
    role: String,
    secret: String,
    key: String,
    rotated: bool,
    note: String,
}

impl Report for RotateReport {
    fn render(&self, text: &mut Text) {
        if self.dry_run {
            text.line(format!(
                "Dry run: would set a new password for role {} in the database and in Secret {} (key {}); nothing was changed.",
                self.role, self.secret, self.key
            ));
        } else {
            text.line(format!(
                "Rotated the password of role {} (Secret {}, key {}).",
                self.role, self.secret, self.key
            ));
        }
        text.line(format!("note: {}", self.note));
    }
}

/// Runs `pgk8s rotate-password`.
pub async fn run(args: &RotatePasswordArgs, context: &Context) -> anyhow::Result<Outcome> {
    let login = match args.role {
        Role::App => Login::App,
        Role::Postgres => Login::Superuser,
    };
    let (role, key) = login_user(login, &context.username);
    let names = Names::new(&context.release, false);
    let kube = context.kube();
    let secret = kube
        .get(&[&format!("secret/{}", names.secret)])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Failure::new(
                ExitCode::General,
                format!(
                    "Secret {} not found in namespace {}",
                    names.secret, context.namespace
                ),
            )
            .hint("rotate-password works on releases deployed by pgk8s")
        })?;
    let old = adopt(secret.secret_value(key).ok_or_else(|| {
        Failure::new(
            ExitCode::General,
            format!("Secret {} has no key {key}", names.secret),
        )
    })?);
    let mut report = RotateReport {
        dry_run: args.dry_run,
        role: role.to_string(),
        secret: names.secret.clone(),
        key: key.to_string(),
        rotated: false,
        note: "pods read the mounted Secret (the kubelet refreshes it within about a minute); applications holding the old password must reload it".to_string(),
    };
    if args.dry_run {
        return Ok(Outcome::success(&report));
    }
    context.confirm(&format!("change the password of role {role}"))?;
    let new = generate_password();
    let (mut session, _) =
        super::open_primary(context, Login::Superuser, Mode::ReadWrite, CONNECT_WAIT).await?;
    let alter = |password| {
        format!(
            "ALTER ROLE \"{role}\" PASSWORD {};",
            literal(&scram_verifier(password))
        )
    };
    session
        .query(&alter(&new))
        .await
        .context("changing the password in the database")?;
    let mut manifest = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": names.secret, "namespace": context.namespace.as_str() },
        "data": secret.data,
    });
    manifest["metadata"]["labels"] = json!(secret.metadata.labels);
    manifest["metadata"]["annotations"] = json!(secret.metadata.annotations);
    {
        use base64::Engine;
        use secrecy::ExposeSecret;
        manifest["data"][key] =
            json!(base64::engine::general_purpose::STANDARD.encode(new.expose_secret()));
    }
    if let Err(error) = kube.apply(&manifest).await {
        return Err(match session.query(&alter(&old)).await {
            Ok(_) => error.context(
                Failure::new(
                    ExitCode::General,
                    format!("could not update Secret {}; the database password of {role} was changed back, so nothing changed", names.secret),
                )
                .hint("fix the cause (run with -v to see it; often RBAC on secrets), then run rotate-password again"),
            ),
            Err(rollback) => recovery(context, &names.secret, key, role, &new, &format!("{error:#}; rollback failed: {rollback:#}")),
        });
    }
    session.close().await?;
    report.rotated = true;
    Ok(Outcome::success(&report))
}

/// Both steps failed halfway: the database has the new password, the Secret the old. Save the new
/// one to a private file and print the exact command that completes the rotation.
fn recovery(
    context: &Context,
    secret: &str,
    key: &str,
    role: &str,
    new: &secrecy::SecretString,
    why: &str,
) -> anyhow::Error {
    use secrecy::ExposeSecret;
    let file = std::path::PathBuf::from(format!("pgk8s-{role}-password.txt"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let saved = options.open(&file).and_then(|mut handle| {
        std::io::Write::write_all(&mut handle, new.expose_secret().as_bytes())
    });
    let command = format!(
        "kubectl patch secret {secret} -n {} --type merge -p \"{{\\\"data\\\":{{\\\"{key}\\\":\\\"$(base64 -w0 < {})\\\"}}}}\" && rm {}",
        context.namespace,
        file.display(),
        file.display()
    );
    let hint = match saved {
        Ok(()) => format!(
            "the new password is in ./{} (mode 0600); finish with: {command}",
            file.display()
        ),
        Err(error) => format!(
            "could not save the new password ({error}); reset it with `pgk8s psql -U postgres` and ALTER ROLE"
        ),
    };
    Failure::new(
        ExitCode::General,
        format!(
            "role {role} now has a new password but Secret {secret} still has the old one ({why})"
        ),
    )
    .hint(hint)
    .into()
}

//! `pgk8s rotate-password`: a new password for the app user or the superuser, set in the
//! database and in the Secret so that the two never disagree — even when the run is cut short.
//!
//! The rotation writes its intent first: the new password goes into the Secret under a staging
//! key (`pending-<key>`) before the role changes; the role is altered; then the Secret's key takes
//! the new value while the staging key goes — all with Ctrl-C and SIGTERM held back. A run
//! killed anywhere in between (even with `kill -9`) leaves a staging key behind; the next
//! `rotate-password` finds it, asks the database which of the two passwords it holds (comparing
//! SCRAM verifiers locally, so neither password is sent to the server), and finishes or undoes
//! the rotation before anything else. `verify` reports such a leftover.
//!
//! Sessions log in with the password read from the Secret, fed on stdin, not with the file the
//! kubelet mounts (which lags behind a rotation by up to a minute). The new password reaches
//! the database only as a SCRAM verifier, so it appears in no argv and no server log.

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::chart;
use crate::cli::{Role, RotatePasswordArgs};
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::kube::{Kube, Object};
use crate::manifests::SecretManifest;
use crate::migration_engine::literal;
use crate::output::{Outcome, Report, Text};
use crate::release::{find_primary, read_secret};
use crate::secrets::{PENDING_KEY_PREFIX, generate_password, scram_matches, scram_verifier};
use crate::session::Session;
use crate::sql_error::SqlError;
use crate::transport::{Login, Mode, Transport};

#[derive(Serialize)]
struct RotateReport {
    dry_run: bool,
    role: String,
    secret: String,
    key: String,
    rotated: bool,
    repaired: Vec<String>,
    note: String,
}

impl Report for RotateReport {
    fn render(&self, text: &mut Text) {
        for repaired in &self.repaired {
            text.line(format!("Repaired an interrupted rotation: {repaired}."));
        }
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

/// One role whose password lives under one Secret key.
#[derive(Clone, Copy)]
struct Target<'a> {
    role: &'a str,
    key: &'static str,
}

impl Target<'_> {
    fn pending_key(&self) -> String {
        format!("{PENDING_KEY_PREFIX}{}", self.key)
    }
}

/// Runs `pgk8s rotate-password`.
pub async fn run(args: &RotatePasswordArgs, config: &Config) -> anyhow::Result<Outcome> {
    let role = match args.role {
        Role::App => config.username.as_str(),
        Role::Postgres => chart::SUPERUSER,
    };
    let target = Target {
        role,
        key: chart::password_key(role),
    };
    let kube = config.kube();
    let primary = find_primary(&kube, &config.release).await?;
    if primary.engine == crate::engine::Engine::Cnpg && role == chart::SUPERUSER {
        return Err(Failure::usage(
            "a CloudNativePG cluster's postgres role has no password: it logs in only over the pod's local socket",
        )
        .hint("rotate the application user's password instead (pgk8s rotate-password)")
        .into());
    }
    let secret_name = primary
        .secret
        .clone()
        .unwrap_or_else(|| chart::credentials_secret(&config.release));
    let secret = read_secret(&kube, &secret_name).await?;
    if secret.secret_value(target.key).is_none() {
        return Err(Failure::new(
            ExitCode::General,
            format!("Secret {secret_name} has no key {}", target.key),
        )
        .hint("rotate-password works on the Secret the release's pods mount")
        .into());
    }
    let mut report = RotateReport {
        dry_run: args.dry_run,
        role: role.to_string(),
        secret: secret_name.clone(),
        key: target.key.to_string(),
        rotated: false,
        repaired: Vec::new(),
        note: match primary.engine {
            crate::engine::Engine::Cnpg => "the role and the Secret changed together; applications holding the old password must reload it",
            crate::engine::Engine::Bitnami => "pods read the mounted Secret (the kubelet refreshes it within about a minute); applications holding the old password must reload it",
        }
        .to_string(),
    };
    if args.dry_run {
        report.repaired = interrupted(&secret, config)
            .iter()
            .map(|target| format!("would finish or undo the rotation of {}", target.role))
            .collect();
        return Ok(Outcome::success(&report));
    }
    config.confirm(&format!("change the password of role {role}"))?;
    let mut rotation = Rotation {
        kube: &kube,
        transport: primary.transport(config),
        secret,
        config,
    };
    for interrupted in interrupted(&rotation.secret, config) {
        report
            .repaired
            .push(rotation.repair(interrupted).await.with_context(|| {
                format!("repairing the interrupted rotation of {}", interrupted.role)
            })?);
    }
    rotation.rotate(target).await?;
    report.rotated = true;
    Ok(Outcome::success(&report))
}

/// The rotations a Secret shows as interrupted (a staging key is present), the superuser's
/// first: repairing the others needs a superuser session.
fn interrupted<'a>(secret: &Object, config: &'a Config) -> Vec<Target<'a>> {
    let superuser = Target {
        role: chart::SUPERUSER,
        key: chart::SUPERUSER_PASSWORD_KEY,
    };
    let app = Target {
        role: config.username.as_str(),
        key: chart::password_key(config.username.as_str()),
    };
    [superuser, app]
        .into_iter()
        .filter(|target| secret.data.contains(&target.pending_key()))
        .fold(Vec::new(), |mut targets, target| {
            if !targets.iter().any(|seen: &Target| seen.key == target.key) {
                targets.push(target);
            }
            targets
        })
}

/// A rotation in progress: the Secret as last written, and where SQL runs.
struct Rotation<'a> {
    kube: &'a Kube,
    transport: Transport,
    secret: Object,
    config: &'a Config,
}

impl Rotation<'_> {
    /// Rotates `target`: stage, alter the role, commit. See the module docs.
    async fn rotate(&mut self, target: Target<'_>) -> anyhow::Result<()> {
        let old = self.value(target.key)?;
        let new = generate_password();
        // From the staging write to the final one, Ctrl-C and SIGTERM wait: the rotation ends
        // finished or undone, never half-way (only `kill -9` can cut it, and the staging key
        // lets the next run repair that).
        let _shield = crate::interrupt::shield("the password change");
        let mut staged = self.secret.clone();
        staged.data.insert(&target.pending_key(), &new);
        self.write(staged)
            .await
            .context("staging the new password in the Secret")?;
        let mut session = self.superuser_session().await?;
        session
            .query(&alter_role(target.role, &new))
            .await
            .context("changing the password in the database")?;
        let mut committed = self.secret.clone();
        committed.data.insert(target.key, &new);
        committed.data.remove(&target.pending_key());
        let Err(error) = self.write(committed).await else {
            session.close().await?;
            return Ok(());
        };
        // The write may have taken effect although kubectl reported a failure: look again
        // before deciding what to undo.
        if let Ok(current) = read_secret(self.kube, name_of(&self.secret)).await {
            let has_new = current
                .secret_value(target.key)
                .is_some_and(|value| value.expose_secret() == new.expose_secret());
            if has_new && !current.data.contains(&target.pending_key()) {
                tracing::warn!("kubectl reported a failure, but the Secret holds the new password");
                self.secret = current;
                session.close().await?;
                return Ok(());
            }
        }
        if let Err(rollback) = session.query(&alter_role(target.role, &old)).await {
            return Err(error.context(Failure::new(
                ExitCode::General,
                format!(
                    "role {} has the new password, but Secret {} could not be updated, nor the database changed back ({rollback:#})",
                    target.role,
                    name_of(&self.secret)
                ),
            )
            .hint(format!(
                "the new password is kept in the Secret under {}; run `pgk8s rotate-password` again to finish the rotation",
                target.pending_key()
            ))));
        }
        let mut undone = self.secret.clone();
        undone.data.remove(&target.pending_key());
        let _ = self.write(undone).await;
        session.close().await?;
        Err(error.context(
            Failure::new(
                ExitCode::General,
                format!(
                    "could not update Secret {}; the database password of {} was changed back, so nothing changed",
                    name_of(&self.secret),
                    target.role
                ),
            )
            .hint("fix the cause (run with -v to see it; often RBAC on secrets), then run rotate-password again"),
        ))
    }

    /// Finishes or undoes an interrupted rotation of `target`, whichever matches the database.
    async fn repair(&mut self, target: Target<'_>) -> anyhow::Result<String> {
        let old = self.value(target.key)?;
        let new = self.value(&target.pending_key())?;
        let mut session = self.superuser_session().await?;
        let rows = session
            .query(&format!(
                "SELECT rolpassword FROM pg_authid WHERE rolname = {};",
                literal(target.role)
            ))
            .await?;
        session.close().await?;
        let verifier = rows
            .first()
            .and_then(|row| row.first())
            .cloned()
            .unwrap_or_default();
        let mut repaired = self.secret.clone();
        repaired.data.remove(&target.pending_key());
        let outcome = if scram_matches(&verifier, &new) == Some(true) {
            repaired.data.insert(target.key, &new);
            "the database had the new password; the Secret now has it too"
        } else if scram_matches(&verifier, &old) == Some(true) {
            "the database kept the old password; the staged one was dropped"
        } else {
            return Err(Failure::new(
                ExitCode::Refused,
                format!(
                    "the database password of role {} matches neither the Secret's {} nor its staged {}",
                    target.role,
                    target.key,
                    target.pending_key()
                ),
            )
            .hint(format!(
                "someone changed it by hand: set it to the Secret's value with `pgk8s psql -U postgres` and `\\password {}`, then delete the key {}",
                target.role,
                target.pending_key()
            ))
            .into());
        };
        self.write(repaired).await?;
        Ok(format!("role {}: {outcome}", target.role))
    }

    /// A superuser session logged in with the password from the Secret: the current one, or the
    /// staged one when an interrupted superuser rotation already changed the database.
    async fn superuser_session(&self) -> anyhow::Result<Session> {
        if self.transport.engine() == Some(crate::engine::Engine::Cnpg) {
            // CloudNativePG's postgres logs in over the pod's socket: no password to pick.
            return Session::open(self.transport.psql(
                Login::Superuser,
                Mode::ReadWrite,
                &self.config.database,
                &self.config.username,
            ))
            .await;
        }
        let staged = format!("{PENDING_KEY_PREFIX}{}", chart::SUPERUSER_PASSWORD_KEY);
        let mut candidates = vec![self.value(chart::SUPERUSER_PASSWORD_KEY)?];
        candidates.extend(self.secret.secret_value(&staged));
        let mut last_error = None;
        for password in &candidates {
            let login = self.transport.psql_with_password(
                chart::SUPERUSER,
                password,
                Mode::ReadWrite,
                &self.config.database,
            );
            match Session::open_with_password(login).await {
                Ok(session) => return Ok(session),
                Err(error) if is_authentication_failure(&error) => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("no superuser password in the Secret"))
            .context("logging in as the superuser with the password from the Secret"))
    }

    /// Replaces the Secret with `secret` (refused by the API server if it changed since it was
    /// read) and keeps what was stored.
    async fn write(&mut self, secret: Object) -> anyhow::Result<()> {
        let manifest = SecretManifest::rewrite(&secret, secret.data.clone());
        self.secret = self.kube.replace(&manifest).await?;
        Ok(())
    }

    fn value(&self, key: &str) -> Result<SecretString, Failure> {
        self.secret.secret_value(key).ok_or_else(|| {
            Failure::new(
                ExitCode::General,
                format!("Secret {} has no key {key}", name_of(&self.secret)),
            )
        })
    }
}

fn name_of(secret: &Object) -> &str {
    &secret.metadata.name
}

fn alter_role(role: &str, password: &SecretString) -> String {
    format!(
        "ALTER ROLE \"{role}\" PASSWORD {};",
        literal(&scram_verifier(password))
    )
}

fn is_authentication_failure(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<SqlError>(),
        Some(SqlError::Authentication { .. })
    )
}

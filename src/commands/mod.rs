//! One module per subcommand. Each orchestrates the lower modules and returns an
//! [`Outcome`]: a serializable report plus its exit code. None of them prints to stdout.

mod backup;
mod completions;
mod deploy;
mod info;
mod logs;
mod migrate;
mod port_forward;
mod psql;
mod restore;
mod rotate_password;
mod seed;
pub mod skill;
mod status;
mod undeploy;
pub mod verify;

use std::time::Duration;

use serde::Serialize;

use crate::chart::{Names, Topology};
use crate::cli::Command;
use crate::config::Config;
use crate::error::Failure;
use crate::migration_engine::{Applied, UpOptions};
use crate::migration_files::MigrationSet;
use crate::output::Outcome;
use crate::release::{find_primary, no_pod};
use crate::seed::TableCount;
use crate::session::Session;
use crate::sql_error::SqlError;
use crate::transport::{Login, Mode, Transport, login_user};

/// How long the post-deploy migration waits for connections and for the lock.
const POST_DEPLOY_WAIT: Duration = Duration::from_secs(120);

/// Runs `command`.
pub async fn run(command: Command, config: &Config) -> anyhow::Result<Outcome> {
    match &command {
        Command::Deploy(args) => deploy::run(args, config).await,
        Command::Undeploy(args) => undeploy::run(args, config).await,
        Command::Info(args) => info::run(args, config).await,
        Command::Migrate(args) => migrate::run(args, config).await,
        Command::Seed(args) => seed::run(args, config).await,
        Command::Verify(args) => verify::run(args, config).await,
        Command::Backup(args) => backup::run(args, config).await,
        Command::Restore(args) => restore::run(args, config).await,
        Command::Completions(args) => completions::run(args),
        Command::Status => status::run(config).await,
        Command::Psql(args) => psql::run(args, config).await,
        Command::PortForward(args) => port_forward::run(args, config).await,
        Command::Logs(args) => logs::run(args, config).await,
        Command::RotatePassword(args) => rotate_password::run(args, config).await,
        Command::Skill(args) => skill::run(args),
    }
}

/// What `deploy` did after the release was ready: migrations, then seed data.
#[derive(Serialize)]
pub struct PostDeploy {
    migrations: &'static str,
    applied: Vec<Applied>,
    current_version: Option<u64>,
    seeded: bool,
    tables: Vec<TableCount>,
}

impl PostDeploy {
    /// The steps a dry run would take.
    fn planned(skip_migrations: bool, seed: bool) -> PostDeploy {
        PostDeploy {
            migrations: if skip_migrations {
                "skipped (--skip-migrations)"
            } else {
                "would apply pending migrations"
            },
            applied: Vec::new(),
            current_version: None,
            seeded: seed,
            tables: Vec::new(),
        }
    }

    fn describe(&self) -> String {
        let version = self
            .current_version
            .map(|version| format!(", at version {version}"))
            .unwrap_or_default();
        let seeded = if self.seeded {
            "; seed data loaded"
        } else {
            ""
        };
        format!("{}{version}{seeded}", self.migrations)
    }
}

/// The name of the release's primary pod (one `kubectl get` by label).
pub async fn primary_pod(config: &Config) -> anyhow::Result<String> {
    Ok(find_primary(&config.kube(), &config.release).await?.pod)
}

/// The primary pod as a transport, for commands that run programs in it (pg_dump, pg_restore);
/// `--database-url` cannot serve them, which is refused before any call.
async fn pod_transport(config: &Config, command: &str) -> anyhow::Result<Transport> {
    if config.database_url.is_some() {
        return Err(Failure::usage(format!(
            "{command} runs pg_dump/pg_restore inside the pod; --database-url cannot be used"
        ))
        .hint("unset PGK8S_DATABASE_URL (or drop --database-url) for this command")
        .into());
    }
    Ok(config.transport_for(&primary_pod(config).await?))
}

/// How a session reaches the database: as whom, and how long to wait for it to accept.
#[derive(Clone, Copy, Debug)]
pub struct Connect {
    /// The role to log in as.
    pub login: Login,
    /// How long to retry while the database is not ready.
    pub wait: Duration,
}

/// Opens a psql session on the release's primary, retrying while the database starts up to
/// `wait`. The standalone pod name is tried first without a lookup (so a migration run stays one
/// `kubectl exec`); when that pod does not exist, the replicated name.
pub async fn open_primary(
    config: &Config,
    connect: Connect,
    mode: Mode,
) -> anyhow::Result<(Session, Transport)> {
    let Connect { login, wait } = connect;
    let open = |transport: Transport| async move {
        let command = || transport.psql(login, mode, &config.database, &config.username);
        Session::open_when_ready(command, wait)
            .await
            .map(|session| (session, transport.clone()))
    };
    let standalone = Names::new(&config.release, Topology::Standalone).primary_pod;
    let replicated = Names::new(&config.release, Topology::Replication).primary_pod;
    let opened = match open(config.transport_for(&standalone)).await {
        Err(error) if config.database_url.is_none() && is_missing_pod(&error) => {
            match open(config.transport_for(&replicated)).await {
                Err(error) if is_missing_pod(&error) => Err(no_pod(
                    &config.release,
                    config.namespace.as_str(),
                    &format!("looked for {standalone} and {replicated}"),
                )
                .into()),
                result => result,
            }
        }
        result => result,
    };
    opened.map_err(|error| {
        if !matches!(
            error.downcast_ref::<SqlError>(),
            Some(SqlError::Authentication { .. })
        ) {
            return error;
        }
        let (user, key) = login_user(login, &config.username);
        let source = match &config.database_url {
            Some(_) => "the password in --database-url".to_string(),
            None => format!("the password under Secret key `{key}` mounted in the pod"),
        };
        error.context(format!("logging in as {user} with {source}"))
    })
}

fn is_missing_pod(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<SqlError>(),
        Some(SqlError::NoPod { .. })
    )
}

/// Runs migrations (unless skipped) and then seed data (if asked) on a freshly deployed release.
async fn after_deploy(
    set: Option<&MigrationSet>,
    seed: bool,
    config: &Config,
) -> anyhow::Result<PostDeploy> {
    let Some(set) = set else {
        return Ok(PostDeploy::planned(true, false));
    };
    let options = UpOptions {
        lock_timeout: POST_DEPLOY_WAIT,
        ..UpOptions::default()
    };
    let connect = Connect {
        login: Login::App,
        wait: POST_DEPLOY_WAIT,
    };
    let report = migrate::up(config, set, &options, connect).await?;
    crate::deadline::step("loading the seed data");
    let mut post = PostDeploy {
        migrations: if report.applied.is_empty() {
            "up to date"
        } else {
            "applied"
        },
        current_version: report.current_version,
        applied: report.applied,
        seeded: false,
        tables: Vec::new(),
    };
    if seed {
        let loaded = seed::load(
            config,
            &crate::seed::embedded(),
            crate::seed::ExistingRows::Keep,
            Login::App,
        )
        .await?;
        post.seeded = true;
        post.tables = loaded.tables;
    }
    Ok(post)
}

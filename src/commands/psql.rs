//! `pgk8s psql`: psql in the primary pod, interactive on a terminal, or fed piped SQL, or `-c`.
//! The password is read from the mounted Secret file inside the pod (CloudNativePG: the local
//! socket's peer login, then the application role); the exit status is psql's.

use std::io::IsTerminal;

use crate::cli::{PsqlArgs, Role};
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::output::Outcome;
use crate::transport::{Login, Mode, in_pod_script};

/// Runs `pgk8s psql`.
pub async fn run(args: &PsqlArgs, config: &Config) -> anyhow::Result<Outcome> {
    if config.database_url.is_some() {
        return Err(Failure::usage(
            "pgk8s psql runs psql inside the pod; with --database-url, run psql yourself",
        )
        .hint("unset PGK8S_DATABASE_URL, or use `psql \"$PGK8S_DATABASE_URL\"`")
        .into());
    }
    let primary = crate::release::primary(config).await?;
    let login = match args.role {
        Role::App => Login::app_or_admin(args.as_admin),
        Role::Postgres => Login::Superuser,
    };
    let login = primary.engine.in_pod_login(login, &config.username);
    let mut psql_args = vec![
        "-U".to_string(),
        login.user.clone(),
        "-d".to_string(),
        config.database.to_string(),
    ];
    if let Some(sql) = &args.command {
        psql_args.extend(["-c".to_string(), sql.clone()]);
    }
    psql_args.extend(args.psql_args.iter().cloned());
    let script = in_pod_script(&login, Mode::ReadWrite, "psql", &psql_args);
    let kube = config.kube();
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let container = primary.engine.container();
    let command = if terminal {
        kube.exec_tty(&primary.pod, container, &script)
    } else {
        kube.exec(&primary.pod, container, &script)
    };
    let status = command.interactive().await?;
    let code = status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .unwrap_or(1);
    Ok(Outcome::streamed(if code == 0 {
        ExitCode::Success
    } else {
        ExitCode::Child(code)
    }))
}

//! The engines that can run a release's PostgreSQL: the Bitnami chart (a StatefulSet helm
//! installs) and CloudNativePG (a `Cluster` whose pods the operator makes). What differs between
//! them for every command that only talks to the database lives here, and nowhere else: which
//! container runs PostgreSQL, which pod is the primary, and how a program in that container
//! logs in. Installing, waiting and tearing down are each engine's own modules
//! ([`crate::chart`] with deploy's rollout, [`crate::cnpg`]).

use crate::chart;
use crate::cnpg;
use crate::kube::Object;
use crate::names::Identifier;

/// Which of the two roles a session logs in as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login {
    /// The application user, owner of the application database.
    App,
    /// The `postgres` superuser.
    Superuser,
}

impl Login {
    /// The superuser when `as_admin` (`--as-admin`), else the application user.
    pub fn app_or_admin(as_admin: bool) -> Login {
        if as_admin {
            Login::Superuser
        } else {
            Login::App
        }
    }
}

/// Which engine runs a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// The Bitnami PostgreSQL chart: one primary (and read replicas), deployed with helm.
    Bitnami,
    /// A CloudNativePG `Cluster`: instances with automatic failover, run by the operator.
    Cnpg,
}

/// How a program inside the pod logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InPodLogin {
    /// The role psql connects as (`-U`).
    pub user: String,
    /// The mounted Secret file whose content is the password (Bitnami); None when the pod's
    /// local socket trusts the OS user (CloudNativePG's peer authentication for `postgres`).
    pub password_file: Option<String>,
    /// A role the session takes on after connecting (`-c role=…`), so that what it creates is
    /// owned by the application user although it connected as `postgres`.
    pub role: Option<String>,
}

impl Engine {
    /// The engine whose pod this is (CloudNativePG labels every instance with its cluster).
    pub fn of_pod(pod: &Object) -> Engine {
        if pod.label(cnpg::CLUSTER_LABEL).is_some() {
            Engine::Cnpg
        } else {
            Engine::Bitnami
        }
    }

    /// The container that runs PostgreSQL.
    pub fn container(self) -> &'static str {
        match self {
            Engine::Bitnami => chart::CONTAINER,
            Engine::Cnpg => cnpg::CONTAINER,
        }
    }

    /// Whether `pod` is the one that takes writes.
    pub fn is_primary(self, pod: &Object) -> bool {
        match self {
            Engine::Bitnami => pod.label(chart::COMPONENT_LABEL) == Some("primary"),
            Engine::Cnpg => pod.label(cnpg::ROLE_LABEL) == Some("primary"),
        }
    }

    /// How `login` logs in inside the pod. Bitnami: as the role itself, with the password the
    /// chart mounts. CloudNativePG: as `postgres` over the local socket (peer authentication,
    /// no password anywhere), taking on the application role for application work.
    pub fn in_pod_login(self, login: Login, username: &Identifier) -> InPodLogin {
        match (self, login) {
            (Engine::Bitnami, Login::App) => InPodLogin {
                user: username.to_string(),
                password_file: Some(format!(
                    "{}/{}",
                    chart::SECRETS_DIR,
                    chart::password_key(username.as_str())
                )),
                role: None,
            },
            (Engine::Bitnami, Login::Superuser) => InPodLogin {
                user: chart::SUPERUSER.to_string(),
                password_file: Some(format!(
                    "{}/{}",
                    chart::SECRETS_DIR,
                    chart::SUPERUSER_PASSWORD_KEY
                )),
                role: None,
            },
            (Engine::Cnpg, Login::App) if username.as_str() != chart::SUPERUSER => InPodLogin {
                user: chart::SUPERUSER.to_string(),
                password_file: None,
                role: Some(username.to_string()),
            },
            (Engine::Cnpg, _) => InPodLogin {
                user: chart::SUPERUSER.to_string(),
                password_file: None,
                role: None,
            },
        }
    }

    /// Extra psql arguments for a login with a password pgk8s holds: CloudNativePG trusts only
    /// `postgres` on the local socket, so a password login goes over TCP.
    pub fn password_login_args(self) -> &'static [&'static str] {
        match self {
            Engine::Bitnami => &[],
            Engine::Cnpg => &["-h", "127.0.0.1"],
        }
    }

    /// The name users see.
    pub fn describe(self) -> &'static str {
        match self {
            Engine::Bitnami => "Bitnami chart",
            Engine::Cnpg => "CloudNativePG",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_logs_in_its_own_way() {
        let app: Identifier = "learnflow".parse().unwrap();
        let bitnami = Engine::Bitnami.in_pod_login(Login::App, &app);
        assert_eq!(bitnami.user, "learnflow");
        assert_eq!(
            bitnami.password_file.as_deref(),
            Some("/opt/bitnami/postgresql/secrets/password")
        );
        let cnpg = Engine::Cnpg.in_pod_login(Login::App, &app);
        assert_eq!(
            (cnpg.user.as_str(), cnpg.password_file, cnpg.role.as_deref()),
            ("postgres", None, Some("learnflow"))
        );
        let admin = Engine::Cnpg.in_pod_login(Login::Superuser, &app);
        assert_eq!(admin.role, None);
    }
}

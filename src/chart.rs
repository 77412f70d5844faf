//! Everything specific to the Bitnami PostgreSQL chart: the pinned reference, the names it gives
//! objects, the Secret keys it reads, the in-pod paths, and the values pgk8s sets.
//!
//! Facts here are checked against the chart's real rendering (version 17.1.0) kept in
//! `tests/fixtures/bitnami-postgresql-17.1.0/`. A chart bump is a deliberate change to this file.

use serde::Serialize;
use serde_json::Value;

use crate::names::{Identifier, ObjectName, Quantity, ReleaseName};

/// The chart pgk8s installs unless `--chart` says otherwise.
pub const DEFAULT_CHART: &str = "oci://registry-1.docker.io/bitnamicharts/postgresql";
/// The pinned chart version (the one whose renderings the tests reproduce).
pub const DEFAULT_CHART_VERSION: &str = "17.1.0";
/// The image pgk8s deploys unless `--image` says otherwise: docker.io/bitnami images are no
/// longer pullable, their last builds live on in bitnamilegacy.
pub const DEFAULT_IMAGE: &str = "bitnamilegacy/postgresql";
/// The image tag the pinned chart runs unless told otherwise (its appVersion 17.6.0).
pub const DEFAULT_IMAGE_TAG: &str = "17.6.0-debian-12-r4";

/// The PostgreSQL major an image tag runs: `17.6.0-debian-12-r4` → 17, `15` → 15.
pub fn postgres_major(tag: &str) -> Option<u32> {
    tag.split(['.', '-']).next()?.parse().ok()
}

/// The PostgreSQL major a release's values run (the chart's default tag when none is set).
pub fn major_of_values(values: &Value) -> Option<u32> {
    postgres_major(values["image"]["tag"].as_str().unwrap_or(DEFAULT_IMAGE_TAG))
}

/// The claim a release's primary mounts instead of its StatefulSet's own, if any.
pub fn existing_claim(values: &Value) -> Option<String> {
    values["primary"]["persistence"]["existingClaim"]
        .as_str()
        .map(str::to_string)
}

/// `values` running `image` instead (and trusting it, when it is not from the original Bitnami
/// catalogue, as [`Values::to_value`] does).
pub fn with_image(values: &Value, image: &Image) -> Value {
    let mut values = values.clone();
    let document = ImageValues {
        registry: image.registry.as_deref(),
        repository: &image.repository,
        tag: image.tag.as_deref(),
    };
    values["image"] = serde_json::to_value(document).unwrap_or_default();
    if image.needs_insecure_override() {
        values["global"]["security"]["allowInsecureImages"] = Value::Bool(true);
    }
    values
}

/// `values` with the primary on the claim `claim` (a major upgrade's), or on its
/// StatefulSet's own when None.
pub fn with_existing_claim(values: &Value, claim: Option<&str>) -> Value {
    let mut values = values.clone();
    match claim {
        Some(claim) => {
            values["primary"]["persistence"]["existingClaim"] = Value::String(claim.to_string())
        }
        None => {
            if let Some(persistence) = values["primary"]["persistence"].as_object_mut() {
                persistence.remove("existingClaim");
            }
        }
    }
    values
}

/// The image a release's values run (the chart's default tag when none is set).
pub fn image_of_values(values: &Value) -> Image {
    let field = |name: &str| values["image"][name].as_str().map(str::to_string);
    Image {
        registry: field("registry"),
        repository: field("repository").unwrap_or_else(|| "bitnami/postgresql".to_string()),
        tag: field("tag"),
    }
}

/// The data volume size the chart (and pgk8s) use unless told otherwise.
pub const DEFAULT_STORAGE_SIZE: &str = "8Gi";

/// [`DEFAULT_STORAGE_SIZE`] as a quantity.
pub fn default_storage_size() -> crate::names::Quantity {
    DEFAULT_STORAGE_SIZE
        .parse()
        .expect("the default storage size is a valid quantity")
}
/// The container that runs PostgreSQL in every pod of the chart.
pub const CONTAINER: &str = "postgresql";
/// The port the chart's services expose.
pub const PORT: u16 = 5432;
/// Where the chart mounts the credentials Secret when `usePasswordFiles` is on (the default).
pub const SECRETS_DIR: &str = "/opt/bitnami/postgresql/secrets";
/// The pod volume that mounts the credentials Secret at [`SECRETS_DIR`].
pub const PASSWORD_VOLUME: &str = "postgresql-password";
/// Secret key of the superuser password.
pub const SUPERUSER_PASSWORD_KEY: &str = "postgres-password";
/// Secret key of the application user's password.
pub const APP_PASSWORD_KEY: &str = "password";
/// Secret key of the replication user's password (architecture: replication).
pub const REPLICATION_PASSWORD_KEY: &str = "replication-password";
/// The replication role the chart creates for read replicas.
pub const REPLICATION_USER: &str = "repl_user";
/// The superuser role.
pub const SUPERUSER: &str = "postgres";
/// Image repositories of the original Bitnami catalogue, which the chart trusts by default.
const TRUSTED_REPOSITORIES: [&str; 2] = ["bitnami/postgresql", "docker.io/bitnami/postgresql"];

/// Label every object of a release carries: the release name.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Label naming the chart's application on every object it renders.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The value of [`NAME_LABEL`] on this chart's objects.
pub const NAME_LABEL_VALUE: &str = "postgresql";
/// Label telling the primary's objects from the read replicas'.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// How a release is laid out: one server, or a primary with read replicas. The two name their
/// objects differently (`F-0` against `F-primary-0`), so the topology decides every name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// `architecture: standalone`: StatefulSet `F`, pod `F-0`, claim `data-F-0`.
    Standalone,
    /// `architecture: replication`: `F-primary` and `F-read` StatefulSets.
    Replication,
}

impl Topology {
    /// The topology a number of read replicas asks for.
    pub fn with_read_replicas(read_replicas: u8) -> Topology {
        if read_replicas > 0 {
            Topology::Replication
        } else {
            Topology::Standalone
        }
    }

    /// The topology of a release's values (`architecture`).
    pub fn of_values(values: &Value) -> Topology {
        if values["architecture"] == "replication" {
            Topology::Replication
        } else {
            Topology::Standalone
        }
    }

    /// `standalone` or `replicated`, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Topology::Standalone => "standalone",
            Topology::Replication => "replicated",
        }
    }
}

/// The label selector of a release's objects rendered by this chart.
pub fn release_selector(release: &ReleaseName) -> String {
    format!("{INSTANCE_LABEL}={release},{NAME_LABEL}={NAME_LABEL_VALUE}")
}

/// The credentials Secret pgk8s creates for `release` (unless `--password-from-secret`).
pub fn credentials_secret(release: &ReleaseName) -> String {
    format!("{release}-credentials")
}

/// The Secret key holding the password of `username`: the chart keeps the superuser's under its
/// own key, whichever role the application uses.
pub fn password_key(username: &str) -> &'static str {
    if username == SUPERUSER {
        SUPERUSER_PASSWORD_KEY
    } else {
        APP_PASSWORD_KEY
    }
}

/// The names the chart gives a release's objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The release.
    pub release: String,
    /// The chart's "fullname": the release name if it contains `postgresql`, else
    /// `<release>-postgresql`, cut to 63 characters.
    pub fullname: String,
    /// StatefulSet, service and pod prefix of the primary.
    pub primary: String,
    /// Pod that runs the primary.
    pub primary_pod: String,
    /// Data volume claim of the primary.
    pub primary_pvc: String,
    /// Service clients connect to.
    pub service: String,
    /// The credentials Secret pgk8s creates.
    pub secret: String,
}

impl Names {
    /// Names for `release` laid out as `topology`.
    pub fn new(release: &ReleaseName, topology: Topology) -> Names {
        let secret = credentials_secret(release);
        let release = release.as_str();
        let mut fullname = if release.contains("postgresql") {
            release.to_string()
        } else {
            format!("{release}-postgresql")
        };
        fullname.truncate(63);
        let fullname = fullname.trim_end_matches('-').to_string();
        let primary = match topology {
            Topology::Replication => format!("{fullname}-primary"),
            Topology::Standalone => fullname.clone(),
        };
        Names {
            release: release.to_string(),
            primary_pod: format!("{primary}-0"),
            primary_pvc: format!("data-{primary}-0"),
            service: primary.clone(),
            secret,
            primary,
            fullname,
        }
    }

    /// The topology whose StatefulSets would own a data claim named `claim`, if this release's
    /// StatefulSets own it at all: `data-F-<n>` (standalone), `data-F-primary-<n>` or
    /// `data-F-read-<n>` (replication). An exact match, so release `postgresql` never claims
    /// `data-postgresql-test-0`, which belongs to release `postgresql-test`.
    pub fn data_claim_topology(&self, claim: &str) -> Option<Topology> {
        let rest = claim
            .strip_prefix("data-")?
            .strip_prefix(self.fullname.as_str())?
            .strip_prefix('-')?;
        // A claim a major upgrade made for the primary: `<its claim>-pg<major>`.
        let rest = match rest.rsplit_once("-pg") {
            Some((claim, major))
                if !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) =>
            {
                claim
            }
            _ => rest,
        };
        member_topology(rest)
    }

    /// The topology whose StatefulSets would create a pod named `pod`, if this release's would:
    /// `F-<n>`, `F-primary-<n>` or `F-read-<n>`, exactly (so the events about a pod that is
    /// gone still count as the release's, and never a neighbour's).
    pub fn pod_topology(&self, pod: &str) -> Option<Topology> {
        member_topology(
            pod.strip_prefix(self.fullname.as_str())?
                .strip_prefix('-')?,
        )
    }

    /// The claim a major upgrade to PostgreSQL `major` moves the primary's data to (the old
    /// claim is kept as it was): `data-<primary>-0-pg<major>`.
    pub fn upgraded_claim(&self, major: u32) -> String {
        format!("{}-pg{major}", self.primary_pvc)
    }

    /// The in-cluster DNS name of the primary service.
    pub fn service_host(&self, namespace: &str) -> String {
        format!("{}.{namespace}.svc.cluster.local", self.service)
    }
}

/// What follows the fullname in the name of a StatefulSet's member (pod or claim): `<n>`
/// (standalone) or `primary-<n>` / `read-<n>` (replication).
fn member_topology(rest: &str) -> Option<Topology> {
    let ordinal = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if ordinal(rest) {
        return Some(Topology::Standalone);
    }
    let (statefulset, number) = rest.split_once('-')?;
    (matches!(statefulset, "primary" | "read") && ordinal(number)).then_some(Topology::Replication)
}

/// An image reference split the way the chart's values want it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Registry host, when one was given.
    pub registry: Option<String>,
    /// Repository path.
    pub repository: String,
    /// Tag, when one was given (else the chart's default tag).
    pub tag: Option<String>,
}

impl Image {
    /// Parses `[REGISTRY/]REPOSITORY[:TAG]`.
    pub fn parse(text: &str) -> Result<Image, String> {
        let invalid = || format!("{text:?} is not a valid image");
        let allowed = |c: char| c.is_ascii_alphanumeric() || "/.:-_@".contains(c);
        if text.is_empty() || !text.chars().all(allowed) || text.starts_with('/') {
            return Err(invalid());
        }
        let (registry, rest) = match text.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first.to_string()), rest)
            }
            _ => (None, text),
        };
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag.to_string())),
            _ => (rest, None),
        };
        // A repository is lowercase (an image reference with capitals does not resolve).
        if repository.is_empty()
            || repository.ends_with('/')
            || repository.chars().any(|c| c.is_ascii_uppercase())
            || tag.as_deref() == Some("")
        {
            return Err(invalid());
        }
        Ok(Image {
            registry,
            repository: repository.to_string(),
            tag,
        })
    }

    /// The PostgreSQL major this image runs (the chart's default tag when none is given).
    pub fn major(&self) -> Option<u32> {
        postgres_major(self.tag.as_deref().unwrap_or(DEFAULT_IMAGE_TAG))
    }

    /// Whether the chart would refuse this image without `global.security.allowInsecureImages`.
    pub fn needs_insecure_override(&self) -> bool {
        let full = match &self.registry {
            Some(registry) => format!("{registry}/{}", self.repository),
            None => self.repository.clone(),
        };
        !TRUSTED_REPOSITORIES.contains(&full.as_str())
    }
}

impl std::fmt::Display for Image {
    /// `[REGISTRY/]REPOSITORY:TAG`, with the chart's default tag when none is given.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        let tag = self.tag.as_deref().unwrap_or(DEFAULT_IMAGE_TAG);
        write!(f, "{}:{tag}", self.repository)
    }
}

/// Container resources for the PostgreSQL containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resources {
    /// CPU request.
    pub cpu_request: Quantity,
    /// Memory request.
    pub memory_request: Quantity,
    /// CPU limit (unset unless asked for: limits throttle PostgreSQL).
    pub cpu_limit: Option<Quantity>,
    /// Memory limit.
    pub memory_limit: Quantity,
}

/// Everything pgk8s decides about a release, turned into chart values by [`Values::to_value`].
#[derive(Clone, Debug)]
pub struct Values {
    /// The Secret holding the passwords (`auth.existingSecret`).
    pub secret: String,
    /// Application database.
    pub database: Identifier,
    /// Application user.
    pub username: Identifier,
    /// Data volume size.
    pub storage_size: Quantity,
    /// Data volume StorageClass (None: the cluster default).
    pub storage_class: Option<ObjectName>,
    /// Container resources of primary and replicas.
    pub resources: Resources,
    /// Number of read replicas; more than zero switches to `architecture: replication`.
    pub read_replicas: u8,
    /// The PostgreSQL image.
    pub image: Image,
    /// Enable the metrics exporter.
    pub metrics: bool,
    /// Create a ServiceMonitor for the exporter.
    pub service_monitor: bool,
    /// A claim the primary mounts instead of the StatefulSet's own (`existingClaim`), set by a
    /// major upgrade that moved the data to a new volume.
    pub existing_claim: Option<String>,
}

impl Values {
    /// The values document: typed below, serialised once.
    pub fn to_value(&self) -> Value {
        let replicated = self.read_replicas > 0;
        let persistence = Persistence {
            size: self.storage_size.as_str(),
            storage_class: self.storage_class.as_ref().map(ObjectName::as_str),
            existing_claim: None,
        };
        let resources = ResourceValues {
            requests: Amounts {
                cpu: Some(self.resources.cpu_request.as_str()),
                memory: self.resources.memory_request.as_str(),
            },
            limits: Amounts {
                cpu: self.resources.cpu_limit.as_ref().map(Quantity::as_str),
                memory: self.resources.memory_limit.as_str(),
            },
        };
        // The exporter's docker.io/bitnami image is gone too; follow the server image's legacy
        // repository when that is what runs.
        let exporter = (self.image.registry.is_none()
            && self.image.repository == "bitnamilegacy/postgresql")
            .then_some(ImageValues {
                registry: None,
                repository: "bitnamilegacy/postgres-exporter",
                tag: None,
            });
        let document = ChartValues {
            architecture: replicated.then_some("replication"),
            auth: Auth {
                existing_secret: &self.secret,
                database: self.database.as_str(),
                username: self.username.as_str(),
                replication_username: replicated.then_some(REPLICATION_USER),
            },
            image: ImageValues {
                registry: self.image.registry.as_deref(),
                repository: &self.image.repository,
                tag: self.image.tag.as_deref(),
            },
            global: self.image.needs_insecure_override().then_some(Global {
                security: Security {
                    allow_insecure_images: true,
                },
            }),
            primary: Workload {
                replica_count: None,
                resources: resources.clone(),
                persistence: Persistence {
                    existing_claim: self.existing_claim.as_deref(),
                    ..persistence.clone()
                },
            },
            read_replicas: replicated.then_some(Workload {
                replica_count: Some(self.read_replicas),
                resources,
                persistence,
            }),
            metrics: self.metrics.then_some(Metrics {
                enabled: true,
                service_monitor: Enabled {
                    enabled: self.service_monitor,
                },
                image: exporter,
            }),
        };
        serde_json::to_value(document).unwrap_or_else(|error| {
            unreachable!("chart values are plain strings and numbers: {error}")
        })
    }
}

/// The part of the chart's values.yaml pgk8s sets, as the chart names it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChartValues<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    architecture: Option<&'static str>,
    auth: Auth<'a>,
    image: ImageValues<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    global: Option<Global>,
    primary: Workload<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_replicas: Option<Workload<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<Metrics<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Auth<'a> {
    existing_secret: &'a str,
    database: &'a str,
    username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    replication_username: Option<&'static str>,
}

#[derive(Serialize)]
struct ImageValues<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    registry: Option<&'a str>,
    repository: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'a str>,
}

#[derive(Serialize)]
struct Global {
    security: Security,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Security {
    allow_insecure_images: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Workload<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    replica_count: Option<u8>,
    resources: ResourceValues<'a>,
    persistence: Persistence<'a>,
}

#[derive(Clone, Serialize)]
struct ResourceValues<'a> {
    requests: Amounts<'a>,
    limits: Amounts<'a>,
}

#[derive(Clone, Serialize)]
struct Amounts<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<&'a str>,
    memory: &'a str,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Persistence<'a> {
    size: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_class: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    existing_claim: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metrics<'a> {
    enabled: bool,
    service_monitor: Enabled,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<ImageValues<'a>>,
}

#[derive(Serialize)]
struct Enabled {
    enabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(name: &str) -> ReleaseName {
        name.parse().unwrap()
    }

    #[test]
    fn fullname_follows_the_chart_helper() {
        let standalone = Names::new(&release("postgresql"), Topology::Standalone);
        assert_eq!(standalone.fullname, "postgresql");
        assert_eq!(standalone.primary_pod, "postgresql-0");
        assert_eq!(standalone.primary_pvc, "data-postgresql-0");
        assert_eq!(standalone.secret, "postgresql-credentials");
        let replicated = Names::new(&release("db"), Topology::Replication);
        assert_eq!(replicated.fullname, "db-postgresql");
        assert_eq!(replicated.primary_pod, "db-postgresql-primary-0");
        assert_eq!(replicated.primary_pvc, "data-db-postgresql-primary-0");
        assert_eq!(replicated.service, "db-postgresql-primary");
        let long = Names::new(&release(&"a".repeat(53)), Topology::Standalone);
        assert_eq!(long.fullname.len(), 63);
    }

    #[test]
    fn data_claims_are_matched_by_exact_name_never_by_prefix() {
        let names = Names::new(&release("postgresql"), Topology::Standalone);
        let owner = |claim| names.data_claim_topology(claim);
        assert_eq!(owner("data-postgresql-0"), Some(Topology::Standalone));
        assert_eq!(owner("data-postgresql-12"), Some(Topology::Standalone));
        assert_eq!(
            owner("data-postgresql-primary-0"),
            Some(Topology::Replication)
        );
        assert_eq!(owner("data-postgresql-read-2"), Some(Topology::Replication));
        assert_eq!(names.upgraded_claim(18), "data-postgresql-0-pg18");
        assert_eq!(
            names.pod_topology("postgresql-0"),
            Some(Topology::Standalone)
        );
        assert_eq!(names.pod_topology("postgresql-test-0"), None);
        assert_eq!(
            names.pod_topology("postgresql-read-1"),
            Some(Topology::Replication)
        );
        assert_eq!(owner("data-postgresql-0-pg18"), Some(Topology::Standalone));
        for foreign in [
            "data-postgresql-test-0",
            "data-postgresql-test-0-pg18",
            "data-postgresql-0-0-pg18",
            "data-postgresql-0-pg",
            "data-postgresql-pg18",
            "data-postgresql-primary-x",
            "data-postgresql-",
            "data-postgresql",
            "postgresql-0",
            "data-postgresql-read-",
        ] {
            assert_eq!(owner(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn majors_come_from_the_tag_or_the_charts_default() {
        assert_eq!(postgres_major("17.6.0-debian-12-r4"), Some(17));
        assert_eq!(postgres_major("15"), Some(15));
        assert_eq!(postgres_major("latest"), None);
        assert_eq!(
            Image::parse("bitnamilegacy/postgresql").unwrap().major(),
            Some(17)
        );
        assert_eq!(
            Image::parse("bitnamilegacy/postgresql:16.4.0")
                .unwrap()
                .major(),
            Some(16)
        );
    }

    #[test]
    fn images_split_into_registry_repository_and_tag() {
        let plain = Image::parse("bitnamilegacy/postgresql").unwrap();
        assert_eq!((plain.registry, plain.tag), (None, None));
        let full = Image::parse("ghcr.io/acme/postgresql:17.6.0").unwrap();
        assert_eq!(full.registry.as_deref(), Some("ghcr.io"));
        assert_eq!(full.repository, "acme/postgresql");
        assert_eq!(full.tag.as_deref(), Some("17.6.0"));
        let port = Image::parse("localhost:5000/pg").unwrap();
        assert_eq!(port.registry.as_deref(), Some("localhost:5000"));
        assert!(Image::parse("").is_err());
        assert!(Image::parse("bad image").is_err());
        assert!(Image::parse("repo:").is_err());
        assert!(
            Image::parse("BITNAMI/PG:18").is_err(),
            "repositories are lowercase"
        );
        assert!(Image::parse("REGISTRY.example.com/pg:18").is_ok());
        assert!(
            !Image::parse("bitnami/postgresql")
                .unwrap()
                .needs_insecure_override()
        );
        assert!(
            Image::parse("bitnamilegacy/postgresql")
                .unwrap()
                .needs_insecure_override()
        );
    }
}

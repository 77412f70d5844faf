//! Everything specific to CloudNativePG: the pinned operator chart, the `Cluster` resource pgk8s
//! writes (a typed document, like [`crate::chart`]'s values), the names and labels the operator
//! gives its objects, and how to read a Cluster's status.
//!
//! Facts are those of CloudNativePG 1.30.0 (chart `cloudnative-pg` 0.29.0); ARCHITECTURE.md
//! names the sources.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::chart::Resources;
use crate::kube::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, Object};
use crate::names::{Identifier, ObjectName, Quantity, ReleaseName};

/// The operator's chart (an OCI artifact the project publishes beside its helm repository).
pub const OPERATOR_CHART: &str = "oci://ghcr.io/cloudnative-pg/charts/cloudnative-pg";
/// The pinned chart version.
pub const OPERATOR_CHART_VERSION: &str = "0.29.0";
/// The operator version that chart installs.
pub const OPERATOR_VERSION: &str = "1.30.0";
/// Where the operator runs.
pub const OPERATOR_NAMESPACE: &str = "cnpg-system";
/// The operator's helm release.
pub const OPERATOR_RELEASE: &str = "cnpg";
/// The operator's Deployment (`<release>-<chart>`).
pub const OPERATOR_DEPLOYMENT: &str = "cnpg-cloudnative-pg";
/// The CustomResourceDefinition of `Cluster`.
pub const CRD: &str = "clusters.postgresql.cnpg.io";
/// The PostgreSQL image pgk8s pins (the operator's own default is PostgreSQL 18).
pub const DEFAULT_IMAGE: &str = "ghcr.io/cloudnative-pg/postgresql:17.11-standard-trixie";
/// The container that runs PostgreSQL in an instance pod.
pub const CONTAINER: &str = "postgres";
/// Label on every instance pod and claim: the cluster's name.
pub const CLUSTER_LABEL: &str = "cnpg.io/cluster";
/// Label on instance pods and claims: `primary` or `replica`.
pub const ROLE_LABEL: &str = "cnpg.io/instanceRole";
/// Label on claims: what the volume holds (`PG_DATA`, `PG_WAL`).
pub const PVC_ROLE_LABEL: &str = "cnpg.io/pvcRole";
/// The annotation that stops every instance and keeps the volumes.
pub const HIBERNATION_ANNOTATION: &str = "cnpg.io/hibernation";
/// The phase of a cluster with every instance ready.
pub const HEALTHY_PHASE: &str = "Cluster in healthy state";
/// The phase of a cluster the operator gave up on (a failed bootstrap or import).
pub const UNRECOVERABLE_PHASE: &str = "Cluster is unrecoverable and needs manual intervention";

/// `clusters.postgresql.cnpg.io/<release>`, as kubectl names it.
pub fn cluster_ref(release: &ReleaseName) -> String {
    format!("{CRD}/{release}")
}

/// The longest cluster name the operator accepts (its webhook's limit, leaving room for the
/// `-<n>` of instance and volume names).
pub const MAX_CLUSTER_NAME: usize = 50;

/// Refuses a cluster name the operator's webhook would refuse once the namespace and Secret
/// exist: a DNS-1035 label (starting with a letter) of at most [`MAX_CLUSTER_NAME`] characters.
pub fn check_cluster_name(name: &ReleaseName) -> Result<(), crate::error::Failure> {
    let text = name.as_str();
    if text.len() > MAX_CLUSTER_NAME || !text.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(crate::error::Failure::usage(format!(
            "{text:?} cannot name a CloudNativePG cluster: it must start with a letter and have at most {MAX_CLUSTER_NAME} characters"
        ))
        .hint("pass a shorter name with -r (deploy) or --target (move)"));
    }
    Ok(())
}

/// The service that always reaches the primary.
pub fn rw_service(release: &ReleaseName) -> String {
    format!("{release}-rw")
}

/// Instance pods and claims of a cluster (`cnpg.io/cluster=<release>`; its jobs' pods too).
pub fn cluster_selector(release: &ReleaseName) -> String {
    format!("{CLUSTER_LABEL}={release}")
}

/// The instance pods of a cluster only (not its jobs' pods).
pub fn instance_selector(release: &ReleaseName) -> String {
    format!("{CLUSTER_LABEL}={release},cnpg.io/podRole=instance")
}

/// A source a new cluster imports its database from (`bootstrap.initdb.import`).
#[derive(Clone, Debug)]
pub struct ImportSource {
    /// The source's host (a service).
    pub host: String,
    /// The database to import.
    pub database: Identifier,
    /// The Secret and key holding the superuser password of the source.
    pub password_secret: String,
    /// The key in it.
    pub password_key: String,
}

/// Everything pgk8s decides about a cluster, turned into the `Cluster` document by
/// [`ClusterSpec::manifest`].
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// The cluster (and release) name.
    pub name: ReleaseName,
    /// Number of instances: one primary, the rest streaming replicas.
    pub instances: u8,
    /// The PostgreSQL image.
    pub image: String,
    /// Data volume size.
    pub storage_size: Quantity,
    /// Data volume class (None: the cluster's default).
    pub storage_class: Option<ObjectName>,
    /// Container resources.
    pub resources: Resources,
    /// Application database.
    pub database: Identifier,
    /// Its owner, the application user.
    pub owner: Identifier,
    /// The `kubernetes.io/basic-auth` Secret with the owner's `username` and `password`.
    pub secret: String,
    /// Where to import the database from, for a move.
    pub import: Option<ImportSource>,
}

impl ClusterSpec {
    /// The `Cluster` resource.
    pub fn manifest(&self) -> ClusterManifest {
        let mut requests = BTreeMap::from([
            ("memory", self.resources.memory_request.to_string()),
            ("cpu", self.resources.cpu_request.to_string()),
        ]);
        requests.retain(|_, value| !value.is_empty());
        let mut limits = BTreeMap::from([("memory", self.resources.memory_limit.to_string())]);
        if let Some(cpu) = &self.resources.cpu_limit {
            limits.insert("cpu", cpu.to_string());
        }
        let import = self.import.as_ref().map(|_| Import {
            kind: "microservice",
            databases: vec![self.database.to_string()],
            source: ImportFrom {
                external_cluster: IMPORT_SOURCE,
            },
        });
        let external_clusters = self
            .import
            .as_ref()
            .map(|source| {
                vec![ExternalCluster {
                    name: IMPORT_SOURCE,
                    connection_parameters: BTreeMap::from([
                        ("host", source.host.clone()),
                        ("user", crate::chart::SUPERUSER.to_string()),
                        ("dbname", source.database.to_string()),
                        ("sslmode", "disable".to_string()),
                    ]),
                    password: KeyRef {
                        name: source.password_secret.clone(),
                        key: source.password_key.clone(),
                    },
                }]
            })
            .unwrap_or_default();
        ClusterManifest {
            api_version: "postgresql.cnpg.io/v1",
            kind: "Cluster",
            metadata: ClusterMetadata {
                name: self.name.to_string(),
                labels: BTreeMap::from([(MANAGED_BY_LABEL, MANAGED_BY_VALUE)]),
            },
            spec: ClusterBody {
                instances: self.instances,
                image_name: self.image.clone(),
                enable_superuser_access: false,
                storage: Storage {
                    size: self.storage_size.to_string(),
                    storage_class: self.storage_class.as_ref().map(ToString::to_string),
                },
                resources: ResourceBody { requests, limits },
                bootstrap: Bootstrap {
                    initdb: InitDb {
                        database: self.database.to_string(),
                        owner: self.owner.to_string(),
                        secret: NameRef {
                            name: self.secret.clone(),
                        },
                        import,
                    },
                },
                external_clusters,
            },
        }
    }
}

/// The name of the external cluster a move imports from.
const IMPORT_SOURCE: &str = "source";

/// A `postgresql.cnpg.io/v1` `Cluster`, as pgk8s writes it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterManifest {
    api_version: &'static str,
    kind: &'static str,
    metadata: ClusterMetadata,
    spec: ClusterBody,
}

impl ClusterManifest {
    /// The spec as JSON, to compare with a running cluster's.
    pub fn spec_value(&self) -> Value {
        serde_json::to_value(&self.spec).unwrap_or_default()
    }
}

#[derive(Clone, Debug, Serialize)]
struct ClusterMetadata {
    name: String,
    labels: BTreeMap<&'static str, &'static str>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterBody {
    instances: u8,
    image_name: String,
    enable_superuser_access: bool,
    storage: Storage,
    resources: ResourceBody,
    bootstrap: Bootstrap,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_clusters: Vec<ExternalCluster>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Storage {
    size: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_class: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
struct ResourceBody {
    requests: BTreeMap<&'static str, String>,
    limits: BTreeMap<&'static str, String>,
}

#[derive(Clone, Debug, Serialize)]
struct Bootstrap {
    initdb: InitDb,
}

#[derive(Clone, Debug, Serialize)]
struct InitDb {
    database: String,
    owner: String,
    secret: NameRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    import: Option<Import>,
}

#[derive(Clone, Debug, Serialize)]
struct NameRef {
    name: String,
}

#[derive(Clone, Debug, Serialize)]
struct Import {
    #[serde(rename = "type")]
    kind: &'static str,
    databases: Vec<String>,
    source: ImportFrom,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportFrom {
    external_cluster: &'static str,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalCluster {
    name: &'static str,
    connection_parameters: BTreeMap<&'static str, String>,
    password: KeyRef,
}

#[derive(Clone, Debug, Serialize)]
struct KeyRef {
    name: String,
    key: String,
}

/// What a `Cluster`'s status says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterState {
    /// Instances asked for.
    pub instances: u32,
    /// Instances ready.
    pub ready: u32,
    /// The phase, e.g. `Cluster in healthy state`.
    pub phase: String,
    /// Why, when not healthy.
    pub reason: String,
    /// The instance that is primary now.
    pub current_primary: Option<String>,
    /// The instance that should be (differs during a switchover or failover).
    pub target_primary: Option<String>,
    /// Whether hibernation was asked for (`cnpg.io/hibernation=on`).
    pub hibernating: bool,
    /// The image the spec asks for.
    pub image: String,
}

impl ClusterState {
    /// Reads a `Cluster` object.
    pub fn of(cluster: &Object) -> ClusterState {
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        let count = |value: &Value| value.as_u64().unwrap_or(0) as u32;
        ClusterState {
            instances: count(&cluster.spec["instances"]),
            ready: count(&cluster.status["readyInstances"]),
            phase: text(&cluster.status["phase"]),
            reason: text(&cluster.status["phaseReason"]),
            current_primary: cluster.status["currentPrimary"]
                .as_str()
                .map(str::to_string),
            target_primary: cluster.status["targetPrimary"].as_str().map(str::to_string),
            hibernating: cluster
                .metadata
                .annotations
                .get(HIBERNATION_ANNOTATION)
                .is_some_and(|value| value == "on"),
            image: text(&cluster.spec["imageName"]),
        }
    }

    /// The phase as a user should read it: a hibernated cluster's last phase (often "healthy")
    /// is not what it is now.
    pub fn shown_phase(&self) -> String {
        if self.hibernating {
            "hibernated (its instances are stopped)".to_string()
        } else {
            self.phase.clone()
        }
    }

    /// Every instance ready, the primary the one asked for, the operator content.
    pub fn healthy(&self) -> bool {
        self.phase == HEALTHY_PHASE
            && self.ready == self.instances
            && !self.hibernating
            && self.current_primary.is_some()
            && self.current_primary == self.target_primary
    }

    /// One line for progress and errors: `2/3 ready, Creating a new replica`.
    pub fn summary(&self) -> String {
        let mut line = format!("{}/{} ready", self.ready, self.instances);
        if !self.phase.is_empty() {
            line.push_str(&format!(", {}", self.phase));
        }
        if !self.reason.is_empty() {
            line.push_str(&format!(" ({})", self.reason));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ClusterSpec {
        ClusterSpec {
            name: "postgresql".parse().unwrap(),
            instances: 3,
            image: DEFAULT_IMAGE.to_string(),
            storage_size: "8Gi".parse().unwrap(),
            storage_class: None,
            resources: Resources {
                cpu_request: "250m".parse().unwrap(),
                memory_request: "256Mi".parse().unwrap(),
                cpu_limit: None,
                memory_limit: "1Gi".parse().unwrap(),
            },
            database: "learnflow".parse().unwrap(),
            owner: "learnflow".parse().unwrap(),
            secret: "postgresql-credentials".to_string(),
            import: None,
        }
    }

    #[test]
    fn the_cluster_document_names_the_secret_and_pins_the_image() {
        let document = serde_json::to_value(spec().manifest()).unwrap();
        assert_eq!(document["kind"], "Cluster");
        assert_eq!(document["spec"]["instances"], 3);
        assert_eq!(document["spec"]["imageName"], DEFAULT_IMAGE);
        assert_eq!(
            document["spec"]["bootstrap"]["initdb"]["secret"]["name"],
            "postgresql-credentials"
        );
        assert_eq!(document["spec"]["enableSuperuserAccess"], false);
        assert!(document["spec"].get("externalClusters").is_none());
        let mut moving = spec();
        moving.import = Some(ImportSource {
            host: "postgresql.learnflow.svc.cluster.local".to_string(),
            database: "learnflow".parse().unwrap(),
            password_secret: "postgresql-credentials".to_string(),
            password_key: "postgres-password".to_string(),
        });
        let document = serde_json::to_value(moving.manifest()).unwrap();
        assert_eq!(
            document["spec"]["bootstrap"]["initdb"]["import"]["type"],
            "microservice"
        );
        assert_eq!(
            document["spec"]["externalClusters"][0]["password"]["key"],
            "postgres-password"
        );
    }

    #[test]
    fn a_cluster_is_healthy_only_when_every_instance_is_and_no_switchover_runs() {
        let object = |status: &str| {
            crate::kube::parse_objects(
                format!(r#"{{"kind":"Cluster","metadata":{{"name":"pg"}},"spec":{{"instances":2}},"status":{status}}}"#)
                    .as_bytes(),
            )
            .unwrap()
            .remove(0)
        };
        let healthy = ClusterState::of(&object(
            r#"{"readyInstances":2,"phase":"Cluster in healthy state","currentPrimary":"pg-1","targetPrimary":"pg-1"}"#,
        ));
        assert!(healthy.healthy());
        let switching = ClusterState::of(&object(
            r#"{"readyInstances":2,"phase":"Switchover in progress","phaseReason":"Switching over to pg-2","currentPrimary":"pg-1","targetPrimary":"pg-2"}"#,
        ));
        assert!(!switching.healthy());
        assert_eq!(
            switching.summary(),
            "2/2 ready, Switchover in progress (Switching over to pg-2)"
        );
    }

    #[test]
    fn cluster_names_are_what_the_operator_accepts() {
        let check = |text: &str| check_cluster_name(&text.parse().unwrap()).is_ok();
        assert!(check("postgresql"));
        assert!(check(&"a".repeat(MAX_CLUSTER_NAME)));
        assert!(!check(&"a".repeat(MAX_CLUSTER_NAME + 1)));
        assert!(!check("1abc"), "a DNS-1035 label starts with a letter");
    }
}

//! The Kubernetes objects pgk8s writes itself — its namespace, the credentials Secret and a
//! major upgrade's data volume — as typed documents, serialised once and handed to
//! `kubectl apply -f -` / `replace -f -` on stdin.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::chart::{COMPONENT_LABEL, INSTANCE_LABEL, NAME_LABEL, NAME_LABEL_VALUE};
use crate::kube::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, Object, SecretData};

/// kubectl's copy of the last applied manifest; on a Secret it holds every password in base64.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Object metadata as pgk8s writes it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    /// Set when the write must not overwrite a newer version (`replace`).
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_version: Option<String>,
}

/// A manifest pgk8s applies.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Manifest {
    /// A Namespace.
    Namespace(NamespaceManifest),
    /// A Secret.
    Secret(SecretManifest),
}

/// A Namespace, labelled as created by pgk8s (so `undeploy --delete-namespace` may delete it).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceManifest {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
}

impl NamespaceManifest {
    /// The namespace `name`, managed by pgk8s.
    pub fn managed(name: &str) -> NamespaceManifest {
        NamespaceManifest {
            api_version: "v1",
            kind: "Namespace",
            metadata: Metadata {
                name: name.to_string(),
                namespace: None,
                labels: managed_label(),
                annotations: BTreeMap::new(),
                resource_version: None,
            },
        }
    }
}

/// A Secret; its data is base64, and every value is registered for redaction already.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretManifest {
    api_version: &'static str,
    kind: &'static str,
    #[serde(rename = "type")]
    secret_type: String,
    metadata: Metadata,
    data: SecretData,
}

/// The Secret type of a CloudNativePG cluster's credentials (pgk8s's chart Secrets are Opaque).
pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";

impl SecretManifest {
    /// A new credentials Secret of pgk8s's: managed-by label, and annotations naming the
    /// database and user its passwords are for.
    pub fn credentials(
        name: &str,
        namespace: &str,
        database: &str,
        username: &str,
        data: SecretData,
    ) -> SecretManifest {
        let annotations = [
            ("pgk8s.io/database", database),
            ("pgk8s.io/username", username),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
        SecretManifest {
            api_version: "v1",
            kind: "Secret",
            secret_type: "Opaque".to_string(),
            metadata: Metadata {
                name: name.to_string(),
                namespace: Some(namespace.to_string()),
                labels: managed_label(),
                annotations,
                resource_version: None,
            },
            data,
        }
    }

    /// A new `kubernetes.io/basic-auth` Secret of pgk8s's for a CloudNativePG cluster: the
    /// application user's `username` and `password` (what `bootstrap.initdb.secret` reads).
    pub fn basic_auth(
        name: &str,
        namespace: &str,
        database: &str,
        username: &str,
        password: &secrecy::SecretString,
    ) -> SecretManifest {
        let mut data = SecretData::default();
        data.insert_plain("username", username);
        data.insert(crate::chart::APP_PASSWORD_KEY, password);
        SecretManifest {
            secret_type: BASIC_AUTH.to_string(),
            ..SecretManifest::credentials(name, namespace, database, username, data)
        }
    }

    /// A Secret as it was read, with `data` in place of its own: labels, annotations (less
    /// kubectl's last-applied copy, which would keep old passwords readable), type, and the
    /// resourceVersion it was read at, so the write fails if it changed meanwhile.
    pub fn rewrite(secret: &Object, data: SecretData) -> SecretManifest {
        let mut annotations = secret.metadata.annotations.clone();
        annotations.remove(LAST_APPLIED);
        SecretManifest {
            api_version: "v1",
            kind: "Secret",
            secret_type: secret
                .type_name
                .clone()
                .unwrap_or_else(|| "Opaque".to_string()),
            metadata: Metadata {
                name: secret.metadata.name.clone(),
                namespace: secret.metadata.namespace.clone(),
                labels: secret.metadata.labels.clone(),
                annotations,
                resource_version: secret.metadata.resource_version.clone(),
            },
            data,
        }
    }
}

/// A data volume claim of pgk8s's making (a major upgrade's new volume), labelled as the
/// chart's StatefulSet labels the claims it makes, so the release's selectors find it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimManifest {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: ClaimSpec,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClaimSpec {
    access_modes: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_class_name: Option<String>,
    resources: ClaimResources,
}

#[derive(Clone, Debug, Serialize)]
struct ClaimResources {
    requests: BTreeMap<&'static str, String>,
}

impl ClaimManifest {
    /// Claim `name` of `size` on `class` (None: the cluster's default) for the primary of
    /// `release`.
    pub fn primary_data(
        name: &str,
        release: &str,
        size: &str,
        class: Option<&str>,
    ) -> ClaimManifest {
        let mut labels = managed_label();
        for (key, value) in [
            (INSTANCE_LABEL, release),
            (NAME_LABEL, NAME_LABEL_VALUE),
            (COMPONENT_LABEL, "primary"),
        ] {
            labels.insert(key.to_string(), value.to_string());
        }
        ClaimManifest {
            api_version: "v1",
            kind: "PersistentVolumeClaim",
            metadata: Metadata {
                name: name.to_string(),
                namespace: None,
                labels,
                annotations: BTreeMap::new(),
                resource_version: None,
            },
            spec: ClaimSpec {
                access_modes: ["ReadWriteOnce"],
                storage_class_name: class.map(str::to_string),
                resources: ClaimResources {
                    requests: BTreeMap::from([("storage", size.to_string())]),
                },
            },
        }
    }
}

/// Several manifests in one `kubectl apply`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListManifest {
    api_version: &'static str,
    kind: &'static str,
    items: Vec<Manifest>,
}

impl ListManifest {
    /// A `List` of `items`.
    pub fn of(items: Vec<Manifest>) -> ListManifest {
        ListManifest {
            api_version: "v1",
            kind: "List",
            items,
        }
    }
}

fn managed_label() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string())])
}

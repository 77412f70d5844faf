//! What is wrong with a release, read from its pods, volume claims and events: the diagnosis
//! `deploy` prints when the wait fails and the issues `verify` reports.

use crate::error::ExitCode;
use crate::kube::Object;

/// The release's objects, reduced to what health depends on.
#[derive(Clone, Debug, Default)]
pub struct ReleaseState {
    /// The release's pods.
    pub pods: Vec<PodState>,
    /// The release's data volume claims.
    pub claims: Vec<ClaimState>,
    /// Names of the release's services.
    pub services: Vec<String>,
    /// Pods the StatefulSets want.
    pub expected_pods: u32,
    /// How many StatefulSets the release has.
    pub statefulsets: usize,
    /// Recent warning events about the release's objects.
    pub warnings: Vec<String>,
}

/// One pod.
#[derive(Clone, Debug)]
pub struct PodState {
    /// Pod name.
    pub name: String,
    /// `Pending`, `Running`, ...
    pub phase: String,
    /// Whether the Ready condition is true.
    pub ready: bool,
    /// Container restarts.
    pub restarts: u64,
    /// Why the container is waiting (`ImagePullBackOff`, `CrashLoopBackOff`, ...).
    pub waiting_reason: Option<String>,
    /// The waiting message.
    pub waiting_message: Option<String>,
    /// Why the container last terminated (`OOMKilled`, `Error`).
    pub last_termination: Option<String>,
    /// The scheduler's message when the pod cannot be placed.
    pub unschedulable: Option<String>,
    /// The container image.
    pub image: Option<String>,
}

/// One PersistentVolumeClaim.
#[derive(Clone, Debug)]
pub struct ClaimState {
    /// Claim name.
    pub name: String,
    /// `Bound`, `Pending`, `Lost`.
    pub phase: String,
    /// Requested size.
    pub size: Option<String>,
    /// StorageClass.
    pub storage_class: Option<String>,
}

/// A problem found, with its machine-readable code, the fix, and the exit code it implies.
#[derive(Clone, Debug)]
pub struct Issue {
    /// Stable identifier, e.g. `image_pull_backoff`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
    /// The exit code a failing deploy reports for it.
    pub exit: ExitCode,
}

impl Issue {
    /// The crash loop's real cause when its log says so: a data directory written by another
    /// PostgreSQL major (`database files are incompatible with server`).
    pub fn from_crash_log(&self, log: &str) -> Option<Issue> {
        if self.code != "crash_loop" || !log.contains("database files are incompatible with server")
        {
            return None;
        }
        let detail = log
            .lines()
            .find_map(|line| line.split_once("DETAIL:").map(|(_, detail)| detail.trim()))
            .unwrap_or("the data directory belongs to another PostgreSQL major version");
        let pod = self
            .message
            .strip_prefix("pod ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("?");
        Some(Issue {
            code: "data_version_mismatch",
            message: format!("pod {pod} cannot start its data directory: {detail}"),
            hint: "the image runs another PostgreSQL major than the one that wrote the volume: deploy with the image of the volume's major, or move the data with `pgk8s upgrade --postgres-version N` (backup, new volume, restore, verify)".to_string(),
            exit: self.exit,
        })
    }

    /// An issue that makes `verify` report the release unhealthy (exit 5).
    pub fn unhealthy(code: &'static str, message: String, hint: impl Into<String>) -> Issue {
        Issue {
            code,
            message,
            hint: hint.into(),
            exit: ExitCode::Unhealthy,
        }
    }
}

impl ReleaseState {
    /// The state of objects already known to be the release's (see `release::release_state`):
    /// its pods, data claims, StatefulSets and services, and the warning events about them.
    pub fn of_owned<'a>(
        owned: impl IntoIterator<Item = &'a Object>,
        claims: impl IntoIterator<Item = &'a Object>,
        warnings: Vec<String>,
    ) -> ReleaseState {
        let mut state = ReleaseState {
            warnings,
            ..ReleaseState::default()
        };
        for object in owned {
            match object.kind.as_str() {
                "Pod" => state.pods.push(pod_state(object)),
                "StatefulSet" => {
                    state.statefulsets += 1;
                    state.expected_pods += object.spec["replicas"].as_u64().unwrap_or(1) as u32;
                }
                "Service" => state.services.push(object.metadata.name.clone()),
                _ => {}
            }
        }
        state.claims = claims
            .into_iter()
            .map(|claim| ClaimState {
                name: claim.metadata.name.clone(),
                phase: claim.status["phase"]
                    .as_str()
                    .unwrap_or("Unknown")
                    .to_string(),
                size: claim.spec["resources"]["requests"]["storage"]
                    .as_str()
                    .map(str::to_string),
                storage_class: claim.spec["storageClassName"].as_str().map(str::to_string),
            })
            .collect();
        state
    }

    /// Pods that are Running and Ready.
    pub fn ready_pods(&self) -> u32 {
        self.pods
            .iter()
            .filter(|pod| pod.ready && pod.phase == "Running")
            .count() as u32
    }

    /// Whether every claim is Bound.
    pub fn claims_bound(&self) -> bool {
        !self.claims.is_empty() && self.claims.iter().all(|claim| claim.phase == "Bound")
    }

    /// A one-line summary for progress output: `postgresql-0 ImagePullBackOff`.
    pub fn summary(&self) -> String {
        if self.pods.is_empty() {
            return "waiting for pods to be created".to_string();
        }
        self.pods
            .iter()
            .map(|pod| {
                let state = pod.waiting_reason.clone().unwrap_or_else(|| {
                    if pod.ready {
                        "Ready".to_string()
                    } else {
                        pod.phase.clone()
                    }
                });
                format!("{} {state}", pod.name)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every problem visible in this state, most fundamental first.
    pub fn issues(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        for claim in self.claims.iter().filter(|claim| claim.phase != "Bound") {
            let event = self.warning_about(&claim.name);
            issues.push(Issue {
                code: "pvc_pending",
                message: format!("volume claim {} is {}{}", claim.name, claim.phase, event),
                hint: "no StorageClass could provision the volume: pass --storage-class with one from \
                       `kubectl get storageclass`, or mark one as the default"
                    .to_string(),
                exit: ExitCode::InsufficientResources,
            });
        }
        for pod in &self.pods {
            issues.extend(pod_issue(pod, self.warning_about(&pod.name)));
        }
        if self.pods.is_empty() && self.expected_pods > 0 {
            issues.push(Issue {
                code: "pods_missing",
                message: format!("no pods exist, {} expected", self.expected_pods),
                hint: "see `kubectl get statefulset,events -n <namespace>` for why the pods were not created"
                    .to_string(),
                exit: ExitCode::Timeout,
            });
        }
        issues
    }

    fn warning_about(&self, name: &str) -> String {
        self.warnings
            .iter()
            .rev()
            .find(|warning| warning.starts_with(&format!("{name}:")))
            .map(|warning| {
                format!(
                    " ({})",
                    warning
                        .split_once(": ")
                        .map_or(warning.as_str(), |(_, rest)| rest)
                )
            })
            .unwrap_or_default()
    }
}

fn pod_issue(pod: &PodState, event: String) -> Option<Issue> {
    let name = &pod.name;
    if let Some(message) = &pod.unschedulable {
        return Some(Issue {
            code: "unschedulable",
            message: format!("pod {name} cannot be scheduled: {message}"),
            hint: "the nodes lack the requested CPU/memory or volume: lower --cpu-request/--memory-request, \
                   add nodes, or fix the volume claim"
                .to_string(),
            exit: ExitCode::InsufficientResources,
        });
    }
    if pod.last_termination.as_deref() == Some("OOMKilled") {
        return Some(Issue {
            code: "oom_killed",
            message: format!("pod {name} was OOMKilled ({} restarts)", pod.restarts),
            hint: "PostgreSQL needs more memory: raise --memory-limit (and --memory-request), e.g. --memory-limit 2Gi"
                .to_string(),
            exit: ExitCode::InsufficientResources,
        });
    }
    let reason = pod.waiting_reason.as_deref().unwrap_or_default();
    let detail = pod
        .waiting_message
        .clone()
        .map(|message| format!(": {message}"))
        .unwrap_or_else(|| event.clone());
    match reason {
        "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => Some(Issue {
            code: "image_pull_backoff",
            message: format!("pod {name} cannot pull its image {}{detail}", pod.image.as_deref().unwrap_or("?")),
            hint: "docker.io/bitnami images are no longer pullable: use --image bitnamilegacy/postgresql \
                   (the default) or a mirror you can pull from; private registries need an imagePullSecret \
                   in --values"
                .to_string(),
            exit: ExitCode::Timeout,
        }),
        "CrashLoopBackOff" => Some(Issue {
            code: "crash_loop",
            message: format!("pod {name} keeps crashing ({} restarts, last exit: {}){detail}", pod.restarts, pod.last_termination.as_deref().unwrap_or("unknown")),
            hint: format!("read the last log lines with `pgk8s logs --previous` (pod {name})"),
            exit: ExitCode::Timeout,
        }),
        "CreateContainerConfigError" | "CreateContainerError" => Some(Issue {
            code: "config_error",
            message: format!("pod {name} cannot start its container{detail}"),
            hint: "the credentials Secret may be missing or lack a key: re-run `pgk8s deploy`".to_string(),
            exit: ExitCode::Timeout,
        }),
        _ if !pod.ready => Some(Issue {
            code: "not_ready",
            message: format!("pod {name} is {} but not ready{event}", pod.phase),
            hint: "PostgreSQL may still be starting; wait with `pgk8s verify --wait 2m`, or read `pgk8s logs`".to_string(),
            exit: ExitCode::Timeout,
        }),
        _ => None,
    }
}

fn pod_state(object: &Object) -> PodState {
    let status = &object.status;
    let container = status["containerStatuses"]
        .as_array()
        .and_then(|containers| {
            containers
                .iter()
                .find(|container| container["name"] == crate::chart::CONTAINER)
        })
        .cloned()
        .unwrap_or_default();
    let condition = |kind: &str| {
        status["conditions"]
            .as_array()
            .and_then(|conditions| {
                conditions
                    .iter()
                    .find(|condition| condition["type"] == kind)
            })
            .cloned()
            .unwrap_or_default()
    };
    let scheduled = condition("PodScheduled");
    PodState {
        name: object.metadata.name.clone(),
        phase: status["phase"].as_str().unwrap_or("Unknown").to_string(),
        ready: condition("Ready")["status"] == "True",
        restarts: container["restartCount"].as_u64().unwrap_or(0),
        waiting_reason: container["state"]["waiting"]["reason"]
            .as_str()
            .map(str::to_string),
        waiting_message: container["state"]["waiting"]["message"]
            .as_str()
            .map(str::to_string),
        last_termination: container["lastState"]["terminated"]["reason"]
            .as_str()
            .map(str::to_string),
        unschedulable: (scheduled["status"] == "False").then(|| {
            scheduled["message"]
                .as_str()
                .unwrap_or("no node fits")
                .to_string()
        }),
        image: container["image"]
            .as_str()
            .or_else(|| object.spec["containers"][0]["image"].as_str())
            .map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(json: &str) -> Vec<Object> {
        crate::kube::parse_objects(json.as_bytes()).unwrap()
    }

    fn names() -> crate::names::ReleaseName {
        "postgresql".parse().unwrap()
    }

    const LABELS: &str = r#""labels":{"app.kubernetes.io/instance":"postgresql","app.kubernetes.io/name":"postgresql"}"#;

    #[test]
    fn image_pull_backoff_points_at_the_image_flag() {
        let list = format!(
            r#"{{"items":[{{"kind":"Pod","metadata":{{"name":"postgresql-0",{LABELS}}},"status":{{"phase":"Pending","containerStatuses":[{{"name":"postgresql","image":"docker.io/bitnami/postgresql:17","state":{{"waiting":{{"reason":"ImagePullBackOff","message":"Back-off pulling image"}}}}}}]}}}}]}}"#
        );
        let issues = crate::release::release_state(&objects(&list), &names()).issues();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].code, "image_pull_backoff");
        assert!(issues[0].hint.contains("--image"));
    }

    #[test]
    fn pending_claims_and_oom_kills_are_resource_problems() {
        let list = format!(
            r#"{{"items":[
              {{"kind":"PersistentVolumeClaim","metadata":{{"name":"data-postgresql-0",{LABELS}}},"spec":{{"storageClassName":"fast"}},"status":{{"phase":"Pending"}}}},
              {{"kind":"Pod","metadata":{{"name":"postgresql-0",{LABELS}}},"status":{{"phase":"Running","containerStatuses":[{{"name":"postgresql","restartCount":3,"state":{{"waiting":{{"reason":"CrashLoopBackOff"}}}},"lastState":{{"terminated":{{"reason":"OOMKilled"}}}}}}]}}}},
              {{"kind":"Event","type":"Warning","reason":"ProvisioningFailed","message":"storageclass \"fast\" not found","involvedObject":{{"kind":"PersistentVolumeClaim","name":"data-postgresql-0"}},"metadata":{{"name":"e1"}}}}
            ]}}"#
        );
        let issues = crate::release::release_state(&objects(&list), &names()).issues();
        let codes: Vec<_> = issues
            .iter()
            .map(|issue| (issue.code, issue.exit))
            .collect();
        assert_eq!(
            codes,
            [
                ("pvc_pending", ExitCode::InsufficientResources),
                ("oom_killed", ExitCode::InsufficientResources)
            ]
        );
        assert!(
            issues[0]
                .message
                .contains("storageclass \"fast\" not found"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn a_crash_log_that_names_another_major_becomes_data_version_mismatch() {
        let list = format!(
            r#"{{"items":[{{"kind":"Pod","metadata":{{"name":"postgresql-0",{LABELS}}},"status":{{"phase":"Running","containerStatuses":[{{"name":"postgresql","restartCount":3,"state":{{"waiting":{{"reason":"CrashLoopBackOff"}}}},"lastState":{{"terminated":{{"reason":"Error"}}}}}}]}}}}]}}"#
        );
        let issues = crate::release::release_state(&objects(&list), &names()).issues();
        let log = "2026-12-02 10:00:00.000 GMT [1] FATAL:  database files are incompatible with server\n2026-12-02 10:00:00.000 GMT [1] DETAIL:  The data directory was initialized by PostgreSQL version 15, which is not compatible with this version 17.6.";
        let mismatch = issues[0].from_crash_log(log).expect("recognised");
        assert_eq!(mismatch.code, "data_version_mismatch");
        assert!(
            mismatch.message.contains("postgresql-0") && mismatch.message.contains("version 15"),
            "{}",
            mismatch.message
        );
        assert!(mismatch.hint.contains("pgk8s upgrade"));
        assert!(
            issues[0]
                .from_crash_log("FATAL: could not map anonymous shared memory")
                .is_none()
        );
    }

    #[test]
    fn a_ready_pod_has_no_issues() {
        let list = format!(
            r#"{{"items":[{{"kind":"Pod","metadata":{{"name":"postgresql-0",{LABELS}}},"status":{{"phase":"Running","conditions":[{{"type":"Ready","status":"True"}}],"containerStatuses":[{{"name":"postgresql","ready":true,"state":{{"running":{{}}}}}}]}}}}]}}"#
        );
        let state = crate::release::release_state(&objects(&list), &names());
        assert!(state.issues().is_empty());
        assert_eq!(state.ready_pods(), 1);
    }
}

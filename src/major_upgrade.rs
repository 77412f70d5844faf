//! Moving a release to another PostgreSQL major without losing a row.
//!
//! A data directory starts only under the major that wrote it (`FATAL: database files are
//! incompatible with server`), so the data moves the way PostgreSQL documents for a new server:
//! dumped by the old one, restored into the new one. The steps, in this order:
//!
//! 1. read what the database holds ([`crate::contents`]): every table's row count and the
//!    migration history;
//! 2. write a checksummed backup to the local disk (kept; its path is reported);
//! 3. record on the credentials Secret where the release was (image, volume, chart version), so
//!    that a run cut short can be undone by the next one;
//! 4. create a new volume, `data-<primary>-0-pg<major>`; the old volume is never written to;
//! 5. stop the old server (its StatefulSet goes with `--cascade=orphan`, then its pod);
//! 6. `helm upgrade` the new image onto the new volume (`primary.persistence.existingClaim`);
//! 7. restore the backup; 8. verify, and compare with what step 1 read;
//! 9. remove the record.
//!
//! A failure after step 3 — or the next run after a kill — rolls back: the new server stops,
//! helm puts the old image back on the old volume, the new volume is deleted, the record goes.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chart::{self, Names};
use crate::config::Config;
use crate::error::{ExitCode, Failure};
use crate::helm::{Helm, HelmMajor, UpgradeRequest};
use crate::kube::{Kube, Object};
use crate::manifests::ClaimManifest;
use crate::resize;
use crate::rollout::{Rollout, roll_out};

/// The annotation on the credentials Secret that holds a major upgrade under way.
pub const RECORD_ANNOTATION: &str = "pgk8s.io/major-upgrade";

/// Where a release was before a major upgrade began: enough to bring it back. Kept as JSON in
/// [`RECORD_ANNOTATION`]; it holds no secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The major the release ran.
    pub from_major: u32,
    /// The major it was moving to.
    pub to_major: u32,
    /// The release's `image` values before (null when unset).
    pub image: Value,
    /// The release's `global` values before (null when unset).
    pub global: Value,
    /// The claim the primary mounted instead of its own before, if any.
    pub existing_claim: Option<String>,
    /// The chart version the release ran.
    pub chart_version: String,
    /// The volume the upgrade created for the new major.
    pub new_claim: String,
    /// The backup taken before the old server stopped.
    pub backup: String,
    /// Until when the run that wrote the record may still be working (RFC 3339): its deadline.
    /// Before then another run must not touch the release.
    #[serde(default)]
    pub until: Option<String>,
    /// Whether the new server holds the data, compared and verified: from then on the upgrade is
    /// finished forward, never rolled back (the new server may have taken writes since).
    #[serde(default)]
    pub verified: bool,
}

impl Record {
    /// The record on `secret`, if a major upgrade is under way. A value pgk8s cannot read is
    /// refused rather than ignored: it may be the only note of where the data is.
    pub fn read(secret: &Object) -> Result<Option<Record>, Failure> {
        let Some(text) = secret.metadata.annotations.get(RECORD_ANNOTATION) else {
            return Ok(None);
        };
        serde_json::from_str(text).map(Some).map_err(|error| {
            Failure::new(
                ExitCode::Refused,
                format!(
                    "annotation {RECORD_ANNOTATION} on Secret {} is not a major-upgrade record pgk8s can read: {error}",
                    secret.metadata.name
                ),
            )
            .hint("the old data volume is kept as it was; look at the annotation, put the release back by hand, then remove the annotation")
        })
    }

    /// The deadline of the run that wrote the record, while it has not passed.
    pub fn running_until(&self, now: std::time::SystemTime) -> Option<&str> {
        let until = self.until.as_deref()?;
        let deadline = humantime::parse_rfc3339_weak(until).ok()?;
        (now < deadline).then_some(until)
    }

    /// The refusal of anything but `pgk8s upgrade` while the record is there.
    pub fn refusal(&self, release: &crate::names::ReleaseName) -> Failure {
        let what = format!(
            "an upgrade of release {release} from PostgreSQL {} to {}",
            self.from_major, self.to_major
        );
        if let Some(until) = self.running_until(std::time::SystemTime::now()) {
            return Failure::new(
                ExitCode::Refused,
                format!("{what} may still be running (its deadline is {until})"),
            )
            .hint("wait for it to end; if it was killed, run `pgk8s upgrade` after that time to finish or roll it back");
        }
        let next = if self.verified {
            format!(
                "run `pgk8s upgrade --postgres-version {}` to finish it (the data had moved and was verified)",
                self.to_major
            )
        } else {
            format!(
                "run `pgk8s upgrade --postgres-version {}` to roll it back and finish it (or `--postgres-version {}` to only roll it back); the old volume was kept",
                self.to_major, self.from_major
            )
        };
        Failure::new(ExitCode::Refused, format!("{what} was interrupted")).hint(next)
    }

    /// `values` as they were before the upgrade: the old image on the old volume.
    pub fn values_before(&self, values: &Value) -> Value {
        let mut values = chart::with_existing_claim(values, self.existing_claim.as_deref());
        let object = values.as_object_mut();
        if let Some(object) = object {
            for (key, before) in [("image", &self.image), ("global", &self.global)] {
                if before.is_null() {
                    object.remove(key);
                } else {
                    object.insert(key.to_string(), before.clone());
                }
            }
        }
        values
    }
}

/// The Secret a release's pods read their passwords from (`auth.existingSecret`).
pub fn secret_of(values: &Value, release: &crate::names::ReleaseName) -> String {
    values["auth"]["existingSecret"]
        .as_str()
        .map_or_else(|| chart::credentials_secret(release), str::to_string)
}

/// Writes `record` on the Secret (a merge patch of one annotation; no secret value moves).
pub async fn write_record(kube: &Kube, secret: &str, record: &Record) -> anyhow::Result<()> {
    let text = serde_json::to_string(record)?;
    let patch = json!({ "metadata": { "annotations": { RECORD_ANNOTATION: text } } });
    kube.patch_merge(&format!("secret/{secret}"), &patch)
        .await
        .context("recording the upgrade on the credentials Secret")
}

/// Removes the record from the Secret.
pub async fn clear_record(kube: &Kube, secret: &str) -> anyhow::Result<()> {
    let patch = json!({ "metadata": { "annotations": { RECORD_ANNOTATION: null } } });
    kube.patch_merge(&format!("secret/{secret}"), &patch)
        .await
        .context("removing the upgrade record from the credentials Secret")
}

/// A release being changed with helm: where, with which chart, and how to watch the rollout.
pub struct Target<'a> {
    /// The resolved configuration.
    pub config: &'a Config,
    /// kubectl for the namespace.
    pub kube: &'a Kube,
    /// helm for the namespace.
    pub helm: &'a Helm,
    /// The helm major found.
    pub helm_major: HelmMajor,
    /// The chart reference.
    pub chart: &'a str,
    /// The release's object names.
    pub names: &'a Names,
    /// The credentials Secret (where the record lives).
    pub secret: &'a str,
}

impl Target<'_> {
    /// `helm upgrade --install --wait` with `values` and `chart_version`, watched; the new
    /// revision.
    pub async fn roll_out(
        &self,
        values: &Value,
        chart_version: &str,
    ) -> anyhow::Result<Option<u64>> {
        let request = UpgradeRequest {
            release: self.config.release.clone(),
            namespace: self.config.namespace.clone(),
            chart: self.chart.to_string(),
            chart_version: chart_version.to_string(),
            timeout: self.config.timeout,
            create_namespace: false,
        };
        let rollout = Rollout {
            kube: self.kube,
            helm: self.helm,
            major: self.helm_major,
            request: &request,
            names: self.names,
        };
        roll_out(&rollout, values).await
    }

    /// Stops the primary's server: the StatefulSets go without their pods (so that helm can
    /// create them again with another volume), then the primary pod, waiting until it is gone.
    pub async fn stop_primary(&self) -> anyhow::Result<()> {
        crate::deadline::step("stopping the old server");
        resize::orphan_statefulsets(self.kube, &self.config.release, self.config.timeout).await?;
        self.kube
            .delete(
                &[format!("pod/{}", self.names.primary_pod).as_str()],
                crate::deadline::cap(self.config.timeout),
            )
            .await
            .context("stopping the primary pod")
    }

    /// Creates the new major's volume like the one the primary has (size and class).
    pub async fn create_volume(&self, name: &str, like: &resize::Volume) -> anyhow::Result<()> {
        let manifest = ClaimManifest::primary_data(
            name,
            self.config.release.as_str(),
            &like.requested,
            like.class.as_deref(),
        );
        self.kube
            .apply(&manifest)
            .await
            .with_context(|| format!("creating volume {name}"))
    }

    /// Puts the release back where `record` says it was: the new server stops, the old image
    /// runs on the old volume again, the new volume is deleted, the record is removed. Safe to
    /// run again after an interruption at any point.
    pub async fn roll_back(&self, record: &Record, values_now: &Value) -> anyhow::Result<()> {
        tracing::warn!(
            "rolling back to PostgreSQL {} on its own volume (the upgrade to {} did not finish)",
            record.from_major,
            record.to_major
        );
        self.stop_primary().await?;
        crate::deadline::step("bringing the old server back");
        self.roll_out(&record.values_before(values_now), &record.chart_version)
            .await
            .context("bringing the old server back")?;
        self.kube
            .delete(
                &[format!("pvc/{}", record.new_claim).as_str()],
                crate::deadline::cap(self.config.timeout),
            )
            .await
            .with_context(|| format!("deleting the new volume {}", record.new_claim))?;
        clear_record(self.kube, self.secret).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_puts_the_old_image_and_volume_back() {
        let record = Record {
            from_major: 17,
            to_major: 18,
            image: json!({"repository": "bitnamilegacy/postgresql"}),
            global: Value::Null,
            existing_claim: None,
            chart_version: "17.1.0".to_string(),
            new_claim: "data-postgresql-0-pg18".to_string(),
            backup: "b.dump".to_string(),
            until: Some("2026-12-03T10:00:00Z".to_string()),
            verified: false,
        };
        let now = json!({
            "image": {"repository": "example/postgres", "tag": "18"},
            "global": {"security": {"allowInsecureImages": true}},
            "primary": {"persistence": {"size": "8Gi", "existingClaim": "data-postgresql-0-pg18"}},
            "auth": {"existingSecret": "s"}
        });
        assert_eq!(
            record.values_before(&now),
            json!({
                "image": {"repository": "bitnamilegacy/postgresql"},
                "primary": {"persistence": {"size": "8Gi"}},
                "auth": {"existingSecret": "s"}
            })
        );
        let mut secret = crate::kube::parse_objects(
            br#"{"kind":"Secret","metadata":{"name":"s","annotations":{}}}"#,
        )
        .unwrap()
        .remove(0);
        assert_eq!(Record::read(&secret).unwrap(), None);
        secret.metadata.annotations.insert(
            RECORD_ANNOTATION.to_string(),
            serde_json::to_string(&record).unwrap(),
        );
        assert_eq!(Record::read(&secret).unwrap(), Some(record.clone()));
        let at = |text: &str| humantime::parse_rfc3339(text).unwrap();
        assert_eq!(
            record.running_until(at("2026-12-03T09:59:00Z")),
            Some("2026-12-03T10:00:00Z"),
            "another run is still within its deadline"
        );
        assert_eq!(record.running_until(at("2026-12-03T10:00:01Z")), None);
        // A record written before `until` and `verified` existed reads as unverified, not running.
        let mut older: Value = serde_json::to_value(&record).unwrap();
        older.as_object_mut().unwrap().remove("until");
        older.as_object_mut().unwrap().remove("verified");
        let older: Record = serde_json::from_value(older).unwrap();
        assert!(!older.verified && older.running_until(at("2026-12-03T09:00:00Z")).is_none());
        secret
            .metadata
            .annotations
            .insert(RECORD_ANNOTATION.to_string(), "{".to_string());
        assert_eq!(Record::read(&secret).unwrap_err().code, ExitCode::Refused);
    }
}

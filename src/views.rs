//! What the JSON documents show of domain values: an applied migration, a version's status, a
//! table's row count, a release, a pod, a volume, an issue.
//!
//! Domain types do not derive `Serialize`; these report-only types do, so the JSON contract is
//! written down here, field by field, and checked by the snapshots in `tests/json.rs`. A rename
//! in the domain cannot change a document by accident.

use serde::Serialize;

use crate::diagnose::{ClaimState, Issue, PodState};
use crate::helm::ReleaseStatus;
use crate::migration_engine::{Applied, VersionState, VersionStatus};
use crate::seed::{ExistingRows, TableCount};

/// A migration applied or reverted.
#[derive(Serialize)]
pub struct AppliedView {
    version: u64,
    file: String,
    checksum: String,
    execution_ms: i64,
    no_transaction: bool,
}

impl From<&Applied> for AppliedView {
    fn from(applied: &Applied) -> AppliedView {
        AppliedView {
            version: applied.version,
            file: applied.file.clone(),
            checksum: applied.checksum.clone(),
            execution_ms: applied.execution_ms,
            no_transaction: applied.no_transaction,
        }
    }
}

/// One line of `migrate status`.
#[derive(Serialize)]
pub struct VersionView {
    version: u64,
    name: String,
    state: &'static str,
    checksum: Option<String>,
    recorded_checksum: Option<String>,
    applied_at: Option<String>,
    execution_ms: Option<i64>,
    no_transaction: bool,
}

impl From<&VersionStatus> for VersionView {
    fn from(status: &VersionStatus) -> VersionView {
        VersionView {
            version: status.version,
            name: status.name.clone(),
            state: match status.state {
                VersionState::Applied => "applied",
                VersionState::Baselined => "baselined",
                VersionState::Pending => "pending",
                VersionState::Drifted => "drifted",
                VersionState::Missing => "missing",
            },
            checksum: status.checksum.clone(),
            recorded_checksum: status.recorded_checksum.clone(),
            applied_at: status.applied_at.clone(),
            execution_ms: status.execution_ms,
            no_transaction: status.no_transaction,
        }
    }
}

/// A table's exact row count.
#[derive(Serialize)]
pub struct TableView {
    table: String,
    rows: i64,
}

impl From<&TableCount> for TableView {
    fn from(count: &TableCount) -> TableView {
        TableView {
            table: count.table.clone(),
            rows: count.rows,
        }
    }
}

/// `keep` or `update`: what a seed does with rows that exist.
pub fn existing_rows(existing: ExistingRows) -> &'static str {
    match existing {
        ExistingRows::Keep => "keep",
        ExistingRows::Update => "update",
    }
}

/// The helm release.
#[derive(Serialize)]
pub struct ReleaseView {
    name: String,
    revision: u64,
    status: String,
    chart: Option<String>,
    updated: Option<String>,
}

impl From<&ReleaseStatus> for ReleaseView {
    fn from(release: &ReleaseStatus) -> ReleaseView {
        ReleaseView {
            name: release.name.clone(),
            revision: release.revision,
            status: release.status.clone(),
            chart: release.chart.clone(),
            updated: release.updated.clone(),
        }
    }
}

/// A pod of the release.
#[derive(Serialize)]
pub struct PodView {
    name: String,
    phase: String,
    ready: bool,
    restarts: u64,
    waiting_reason: Option<String>,
    last_termination: Option<String>,
    unschedulable: Option<String>,
    image: Option<String>,
}

impl From<&PodState> for PodView {
    fn from(pod: &PodState) -> PodView {
        PodView {
            name: pod.name.clone(),
            phase: pod.phase.clone(),
            ready: pod.ready,
            restarts: pod.restarts,
            waiting_reason: pod.waiting_reason.clone(),
            last_termination: pod.last_termination.clone(),
            unschedulable: pod.unschedulable.clone(),
            image: pod.image.clone(),
        }
    }
}

/// A data volume claim of the release.
#[derive(Serialize)]
pub struct VolumeView {
    name: String,
    phase: String,
    size: Option<String>,
    storage_class: Option<String>,
}

impl From<&ClaimState> for VolumeView {
    fn from(claim: &ClaimState) -> VolumeView {
        VolumeView {
            name: claim.name.clone(),
            phase: claim.phase.clone(),
            size: claim.size.clone(),
            storage_class: claim.storage_class.clone(),
        }
    }
}

/// A problem found, with its stable code and the fix.
#[derive(Clone, Serialize)]
pub struct IssueView {
    code: &'static str,
    message: String,
    hint: String,
}

impl From<&Issue> for IssueView {
    fn from(issue: &Issue) -> IssueView {
        IssueView {
            code: issue.code,
            message: issue.message.clone(),
            hint: issue.hint.clone(),
        }
    }
}

/// `serialize_with` for report fields that hold domain values: each goes out as its view.
pub mod through {
    use serde::Serializer;

    use super::*;

    /// Applied migrations as [`AppliedView`]s.
    pub fn applied<S: Serializer>(items: &[Applied], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(items.iter().map(AppliedView::from))
    }

    /// Version statuses as [`VersionView`]s.
    pub fn versions<S: Serializer>(
        items: &[VersionStatus],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(items.iter().map(VersionView::from))
    }

    /// Row counts as [`TableView`]s.
    pub fn tables<S: Serializer>(items: &[TableCount], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(items.iter().map(TableView::from))
    }

    /// `keep` or `update`.
    pub fn existing<S: Serializer>(
        existing: &ExistingRows,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(existing_rows(*existing))
    }

    /// The release as a [`ReleaseView`].
    pub fn release<S: Serializer>(
        release: &ReleaseStatus,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&ReleaseView::from(release), serializer)
    }

    /// Pods as [`PodView`]s.
    pub fn pods<S: Serializer>(items: &[PodState], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(items.iter().map(PodView::from))
    }

    /// Volume claims as [`VolumeView`]s.
    pub fn volumes<S: Serializer>(items: &[ClaimState], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(items.iter().map(VolumeView::from))
    }

    /// Issues as [`IssueView`]s.
    pub fn issues<S: Serializer>(items: &[Issue], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(items.iter().map(IssueView::from))
    }
}

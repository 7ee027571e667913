//! Prune in the second region. A backup's replica (its blobs in the replica region's store,
//! under the same keys, and its disk snapshot copies) goes in two ways:
//!
//! - with its primary: a replica never outlives the backup it copies, so removing a backup
//!   deletes its replica's contents before the primary's blobs and the catalog entry;
//! - alone, by the replica's own retention (`replication.retention`, else the primary's),
//!   planned over the replicas of the backups the primary keeps: the record is marked
//!   `removing_since` (ETag-guarded), the contents deleted, then `removed_at` recorded. A
//!   removal found started is finished by the next run.
//!
//! A second region that cannot be reached (or has no store or snapshot copier configured
//! here) leaves the removal for the next run with the reason; it never stops the primary
//! region's pruning of other backups.

use chrono::{DateTime, Utc};

use crate::catalog;
use crate::domain::names::ClusterName;
use crate::domain::records::{BackupRecord, ReplicaRecord};
use crate::domain::retention::Decision;
use crate::layout;
use crate::ports::state_store::{ETag, StateStore};

use super::PruneError;
pub use crate::workflows::regions::{ReplicaRegion, region};

/// What the run decided and did about one backup's replica.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaJudged {
    /// Its region.
    pub region: String,
    /// Kept or removed, and why (`WithPrimary` when its backup goes).
    pub decision: Decision,
    /// Blobs deleted from the region's store (0 in a dry run).
    pub blobs_deleted: usize,
    /// Disk snapshot copies deleted.
    pub snapshots_deleted: usize,
    /// Why a removal was left for the next run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_because: Option<String>,
    /// Whether the replica is gone.
    pub removed: bool,
}

impl ReplicaJudged {
    /// The judgement of `replica`, nothing done yet.
    pub(super) fn new(replica: &ReplicaRecord, decision: Decision) -> Self {
        Self {
            region: replica.region.clone(),
            decision,
            blobs_deleted: 0,
            snapshots_deleted: 0,
            left_because: None,
            removed: false,
        }
    }

    pub(super) fn deleted(mut self, deleted: Deleted) -> Self {
        self.blobs_deleted = deleted.blobs;
        self.snapshots_deleted = deleted.snapshots;
        self
    }

    pub(super) fn left(mut self, why: String) -> Self {
        self.left_because = Some(why);
        self
    }
}

/// What deleting a replica's contents did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Deleted {
    pub(super) blobs: usize,
    pub(super) snapshots: usize,
}

/// Deletes the disk snapshot copies, then the blobs, of `record`'s replica `replica`; what was
/// deleted, and why the rest could not be, when it could not.
pub(super) async fn delete_contents(
    regions: &[ReplicaRegion<'_>],
    record: &BackupRecord,
    replica: &ReplicaRecord,
) -> Result<Deleted, (Deleted, String)> {
    let mut deleted = Deleted::default();
    let Some(stores) = region(regions, &replica.region) else {
        return Err((deleted, format!("no store is configured here for its replica region {}", replica.region)));
    };
    let handles: Vec<&str> = replica.snapshots.iter().filter_map(|s| s.handle.as_deref()).collect();
    if !handles.is_empty() {
        let Some(copier) = stores.snapshots else {
            let why = format!(
                "its {} disk snapshot copies in {} cannot be deleted: no snapshot copier is configured",
                handles.len(),
                replica.region
            );
            return Err((deleted, why));
        };
        for handle in handles {
            match copier.delete(handle).await {
                Ok(existed) => deleted.snapshots += usize::from(existed),
                Err(e) => return Err((deleted, format!("deleting its snapshot copy in {}: {e}", replica.region))),
            }
        }
    }
    let prefix = layout::backup_prefix(&record.cluster, &record.backup_id);
    match super::delete_blobs(stores.objects, &prefix).await {
        Ok(blobs) => {
            deleted.blobs = blobs;
            Ok(deleted)
        }
        Err(e) => Err((deleted, format!("in {}: {}", replica.region, crate::errors::chain(&e)))),
    }
}

/// Removes the replicas of backups the primary keeps (each `(record, etag, judgement)` as
/// listed): marks them `removing_since` (one transaction per hundred, each guarded by its
/// ETag), deletes each one's contents, then records their `removed_at` (one transaction per
/// hundred). A record changed since it was listed is left alone (decided again next run); one
/// whose contents cannot be deleted now stays `removing_since`, for the next run to finish.
/// The judgements, in order.
///
/// # Errors
/// [`PruneError::Catalog`] when the catalog fails.
pub(super) async fn remove_alone(
    state: &dyn StateStore,
    regions: &[ReplicaRegion<'_>],
    cluster: &ClusterName,
    listed: Vec<(&BackupRecord, &ETag, ReplicaJudged)>,
    now: DateTime<Utc>,
) -> Result<Vec<ReplicaJudged>, PruneError> {
    let mut marked: Vec<Option<(BackupRecord, ETag)>> = vec![None; listed.len()];
    let mut marking = Vec::new();
    for (i, (record, etag, _)) in listed.iter().enumerate() {
        let mut record = (*record).clone();
        let Some(replica) = record.replica.as_mut() else { continue };
        if replica.removing_since.is_some() {
            marked[i] = Some((record, (*etag).clone())); // a removal an earlier run started
        } else {
            replica.removing_since = Some(now);
            marking.push((i, (record, (*etag).clone())));
        }
    }
    let records: Vec<(BackupRecord, ETag)> = marking.iter().map(|(_, m)| m.clone()).collect();
    for ((i, (record, _)), etag) in marking.into_iter().zip(catalog::save_all(state, cluster, &records).await?) {
        marked[i] = etag.map(|etag| (record, etag));
    }
    let mut judged: Vec<ReplicaJudged> = listed.into_iter().map(|(.., j)| j).collect();
    let mut done = Vec::new();
    for (i, marked) in marked.into_iter().enumerate() {
        let Some((mut record, etag)) = marked else { continue };
        let Some(replica) = record.replica.as_ref() else { continue };
        let Some(judgement) = judged.get_mut(i) else { continue };
        match delete_contents(regions, &record, replica).await {
            Ok(deleted) => {
                *judgement = judgement.clone().deleted(deleted);
                if let Some(replica) = record.replica.as_mut() {
                    replica.removed_at = Some(now);
                }
                done.push((i, (record, etag)));
            }
            Err((deleted, why)) => {
                tracing::warn!(backup.id = %record.backup_id, region = %replica.region, "replica left for the next prune: {why}");
                *judgement = judgement.clone().deleted(deleted).left(why);
            }
        }
    }
    let records: Vec<(BackupRecord, ETag)> = done.iter().map(|(_, d)| d.clone()).collect();
    for ((i, _), etag) in done.iter().zip(catalog::save_all(state, cluster, &records).await?) {
        if let Some(judgement) = judged.get_mut(*i) {
            judgement.removed = etag.is_some();
        }
    }
    Ok(judged)
}

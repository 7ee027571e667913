//! The disk snapshots of a copy: start each snapshot's cross-region copy, poll it, record the
//! replica's handle in the catalog record.

use crate::domain::manifest::SnapshotRecord;
use crate::domain::records::{ReplicaRecord, SnapshotReplica};
use crate::ports::snapshot_copier::{CopyProgress, SnapshotCopier, SnapshotCopyError};

/// Brings every ready snapshot's copy forward; how many are still running. Without a copier,
/// records [`super::SNAPSHOTS_NOT_COPIED`] as a warning (once) and copies nothing.
pub(super) async fn copy_all(
    copier: Option<&dyn SnapshotCopier>,
    snapshots: &[SnapshotRecord],
    replica: &mut ReplicaRecord,
) -> Result<usize, SnapshotCopyError> {
    let ready: Vec<(&SnapshotRecord, &str)> =
        snapshots.iter().filter(|s| s.error.is_none()).filter_map(|s| s.handle.as_deref().map(|h| (s, h))).collect();
    if ready.is_empty() {
        return Ok(0);
    }
    let Some(copier) = copier else {
        replica.warn(super::SNAPSHOTS_NOT_COPIED.to_owned());
        return Ok(0);
    };
    let mut pending = 0;
    for (snapshot, handle) in ready {
        let region = replica.region.clone();
        let entry = entry_for(replica, snapshot, handle);
        if !entry.is_settled() && !advance(copier, entry, &region).await? {
            pending += 1;
        }
    }
    Ok(pending)
}

fn entry_for<'r>(replica: &'r mut ReplicaRecord, snapshot: &SnapshotRecord, handle: &str) -> &'r mut SnapshotReplica {
    let at = match replica.snapshots.iter().position(|s| s.source_handle == handle) {
        Some(at) => at,
        None => {
            replica.snapshots.push(SnapshotReplica {
                source_handle: handle.to_owned(),
                namespace: snapshot.namespace.clone(),
                pvc: snapshot.pvc.clone(),
                handle: None,
                done: false,
                error: None,
            });
            replica.snapshots.len() - 1
        }
    };
    &mut replica.snapshots[at]
}

/// Starts (or finds) the copy and looks at it; whether it is settled (done or failed for good).
async fn advance(
    copier: &dyn SnapshotCopier,
    entry: &mut SnapshotReplica,
    region: &str,
) -> Result<bool, SnapshotCopyError> {
    let handle = match &entry.handle {
        Some(h) => h.clone(),
        None => match copier.start_copy(&entry.source_handle, region).await {
            Ok(h) => {
                entry.handle = Some(h.clone());
                h
            }
            Err(e) if !e.is_transient() => return Ok(settle_failed(entry, e.to_string())),
            Err(e) => return Err(e),
        },
    };
    match copier.progress(&handle).await {
        Ok(CopyProgress::Running { .. }) => Ok(false),
        Ok(CopyProgress::Done) => {
            entry.done = true;
            tracing::info!(snapshot.source = %entry.source_handle, snapshot.replica = %handle, "snapshot copied");
            Ok(true)
        }
        Ok(CopyProgress::Failed { reason }) => Ok(settle_failed(entry, reason)),
        // The replica vanished (deleted by hand?): start it again on the next look.
        Err(SnapshotCopyError::NotFound { .. }) => {
            entry.handle = None;
            Ok(false)
        }
        Err(e) if !e.is_transient() => Ok(settle_failed(entry, e.to_string())),
        Err(e) => Err(e),
    }
}

fn settle_failed(entry: &mut SnapshotReplica, reason: String) -> bool {
    tracing::warn!(snapshot.source = %entry.source_handle, %reason, "snapshot copy failed");
    entry.error = Some(reason);
    true
}

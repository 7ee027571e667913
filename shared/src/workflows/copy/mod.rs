//! `copy`: copies a committed backup to a second region. Every object under the backup's
//! prefix but the manifest is copied server-side through the [`ObjectCopier`] (an object the
//! target already holds with the same size and checksum is not copied again) and verified; the
//! disk snapshots are copied through the [`SnapshotCopier`], their replica handles recorded in
//! the catalog; then the manifest is copied, last (the replica's commit), and the record moves
//! `Committed → Replicated`. While anything is pending, the next look is a scheduled
//! `CopyRequest` (attempt + 1, backing off); past the deadline the replica is marked failed,
//! and a timer ([`retry`]) sends a later round of copying, a bounded number of times.
//!
//! Every step is idempotent, so a redelivered message finishes the job without copying twice.
//! A backup that is not committed (or is being deleted) is acknowledged without work.

mod blobs;
pub mod plan;
pub mod retry;
mod snapshots;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::catalog::{self, CatalogError};
use crate::domain::messages::{CopyRequest, Message, encode};
use crate::domain::records::{BackupRecord, BackupState, IllegalTransition, ReplicaRecord};
use crate::domain::replica_retry::ReplicaRetryPolicy;
use crate::layout;
use crate::ports::bus::{Bus, BusError, OutgoingMessage};
use crate::ports::object_copier::ObjectCopier;
use crate::ports::object_store::{ObjectStore, ObjectStoreError};
use crate::ports::snapshot_copier::{SnapshotCopier, SnapshotCopyError};
use crate::ports::state_store::{ETag, StateStore};
use plan::RoundStep;

/// The warning recorded when no snapshot copier is configured.
pub const SNAPSHOTS_NOT_COPIED: &str =
    "the volume snapshots were not copied: no snapshot copier is configured for the second region";

/// Tuning of copies.
#[derive(Debug, Clone)]
pub struct CopySettings {
    /// Wait before the first poll (doubling with each poll).
    pub poll: Duration,
    /// Longest wait between polls.
    pub max_poll: Duration,
    /// How long a copy may take before its replica is marked failed.
    pub deadline: Duration,
    /// How a failed replica is copied again (see [`retry`]).
    pub retry: ReplicaRetryPolicy,
}

impl Default for CopySettings {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(10),
            max_poll: Duration::from_secs(300),
            deadline: Duration::from_secs(24 * 3600),
            retry: ReplicaRetryPolicy::default(),
        }
    }
}

/// The ports a copy uses.
pub struct CopyDeps<'a> {
    /// The catalog.
    pub state: &'a dyn StateStore,
    /// The source region's objects (listed only: the bytes go through `copier`).
    pub source: &'a dyn ObjectStore,
    /// Copies objects from the source store to the second region's.
    pub copier: &'a dyn ObjectCopier,
    /// Copies disk snapshots, where one is configured.
    pub snapshots: Option<&'a dyn SnapshotCopier>,
    /// Sends the polls.
    pub bus: &'a dyn Bus,
    /// The time.
    pub now: DateTime<Utc>,
}

/// What a copy message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// The replica is complete: manifest written, record `Replicated`.
    Replicated {
        /// Objects copied or verified (the manifest included).
        objects: usize,
        /// Snapshot replicas done.
        snapshots: usize,
    },
    /// Copies are running; a poll is scheduled.
    Waiting {
        /// Objects and snapshots still copying.
        pending: usize,
        /// The poll's attempt number.
        next_attempt: u32,
    },
    /// The backup was already replicated (a redelivery).
    AlreadyReplicated,
    /// The backup is not committed (or is being deleted): nothing to copy.
    NotCommitted(BackupState),
    /// The replica gave up (now or earlier), with the reason.
    ReplicaFailed(String),
    /// The message belongs to an earlier round of copying than the replica's: ignored.
    Superseded {
        /// The replica's round.
        round: u32,
    },
}

/// Why a copy message failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// No catalog record for the backup.
    #[error("backup {0} is not in the catalog")]
    UnknownBackup(String),
    /// Reading or saving the record failed.
    #[error("updating the catalog")]
    Catalog(#[from] CatalogError),
    /// Listing, inspecting or copying an object failed.
    #[error("copying objects")]
    Objects(#[from] ObjectStoreError),
    /// Copying a snapshot failed.
    #[error("copying snapshots")]
    Snapshots(#[from] SnapshotCopyError),
    /// Sending the next poll failed.
    #[error("scheduling the next poll")]
    Bus(#[from] BusError),
    /// The record's state forbids the move.
    #[error("moving the record")]
    Transition(#[from] IllegalTransition),
}

impl CopyError {
    /// Whether a redelivery may succeed (a record saved by someone else first counts: the next
    /// delivery reloads it and decides again).
    pub fn is_transient(&self) -> bool {
        match self {
            CopyError::Catalog(e) => e.is_transient() || e.is_changed(),
            CopyError::Objects(e) => e.is_transient(),
            CopyError::Snapshots(e) => e.is_transient(),
            CopyError::Bus(e) => e.is_transient(),
            CopyError::UnknownBackup(_) | CopyError::Transition(_) => false,
        }
    }
}

/// Handles one `copy-requests` message.
///
/// # Errors
/// [`CopyError`]; see [`CopyError::is_transient`].
pub async fn run(
    deps: &CopyDeps<'_>,
    settings: &CopySettings,
    request: &CopyRequest,
) -> Result<CopyOutcome, CopyError> {
    let Some((mut record, etag)) = catalog::get(deps.state, &request.cluster, &request.backup_id).await? else {
        return Err(CopyError::UnknownBackup(request.backup_id.to_string()));
    };
    match record.state {
        BackupState::Committed => {}
        BackupState::Replicated => return Ok(CopyOutcome::AlreadyReplicated),
        state => {
            tracing::info!(backup.id = %record.backup_id, ?state, "backup is not committed: nothing to copy");
            return Ok(CopyOutcome::NotCommitted(state));
        }
    }
    let deadline = deps.now + chrono::Duration::from_std(settings.deadline).unwrap_or(chrono::Duration::days(1));
    let replica =
        record.replica.get_or_insert_with(|| ReplicaRecord::new(request.target_region.clone(), deps.now, deadline));
    match plan::round_step(replica, request.round) {
        RoundStep::Continue => {}
        RoundStep::Retry => {
            tracing::info!(backup.id = %record.backup_id, round = request.round, "copying a failed replica again");
            replica.retry(request.round, deadline);
        }
        RoundStep::Failed(failure) => return Ok(CopyOutcome::ReplicaFailed(failure)),
        RoundStep::Superseded => return Ok(CopyOutcome::Superseded { round: replica.retries }),
    }

    let manifest_key = layout::manifest_key(&record.cluster, &record.backup_id);
    let prefix = layout::backup_prefix(&record.cluster, &record.backup_id);
    let keys = plan::blobs_before_manifest(blobs::list_keys(deps.source, &prefix).await?, &manifest_key);
    let mut pending = blobs::copy_all(deps.copier, &keys, replica).await?;
    pending += snapshots::copy_all(deps.snapshots, &record.snapshots, replica).await?;
    if pending == 0 {
        pending += blobs::copy_all(deps.copier, std::slice::from_ref(&manifest_key), replica).await?;
    }
    if pending > 0 {
        return wait(deps, settings, request, record, &etag, pending).await;
    }
    let snapshots = replica.snapshots.iter().filter(|s| s.done).count();
    replica.replicated_at = Some(deps.now);
    record.move_to(BackupState::Replicated, deps.now)?;
    catalog::save(deps.state, &record, &etag).await?;
    tracing::info!(backup.id = %record.backup_id, region = %request.target_region, objects = keys.len() + 1, snapshots, "backup replicated");
    Ok(CopyOutcome::Replicated { objects: keys.len() + 1, snapshots })
}

/// Saves progress and schedules the next poll, or marks the replica failed past its deadline.
async fn wait(
    deps: &CopyDeps<'_>,
    settings: &CopySettings,
    request: &CopyRequest,
    mut record: BackupRecord,
    etag: &ETag,
    pending: usize,
) -> Result<CopyOutcome, CopyError> {
    let Some(replica) = record.replica.as_mut() else {
        return Err(CopyError::UnknownBackup(request.backup_id.to_string()));
    };
    if deps.now >= replica.deadline {
        let reason = format!("{pending} copies not done by the deadline {}", replica.deadline.to_rfc3339());
        replica.fail(reason.clone(), deps.now);
        tracing::warn!(backup.id = %record.backup_id, region = %request.target_region, %reason, "replica failed");
        catalog::save(deps.state, &record, etag).await?;
        return Ok(CopyOutcome::ReplicaFailed(reason));
    }
    catalog::save(deps.state, &record, etag).await?;
    let next = CopyRequest { attempt: request.attempt.saturating_add(1), ..request.clone() };
    let wait = plan::poll_delay(settings.poll, settings.max_poll, next.attempt);
    let at = deps.now + chrono::Duration::from_std(wait).unwrap_or_default();
    let mut message =
        OutgoingMessage::json(CopyRequest::QUEUE.name(), next.message_id(), encode(&next)).scheduled_at(at);
    message.correlation_id = Some(record.backup_id.to_string());
    deps.bus.send(message).await?;
    Ok(CopyOutcome::Waiting { pending, next_attempt: next.attempt })
}

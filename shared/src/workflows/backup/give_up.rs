//! The end of retries: a backup whose message failed transiently on its last delivery (the API
//! server stayed down, say) is marked failed, with the reason, instead of being left running
//! while its message goes to the dead-letter queue.

use chrono::{DateTime, Utc};

use super::BackupError;
use crate::catalog::{self, Claim};
use crate::domain::messages::BackupRequest;
use crate::domain::records::{BackupRecord, BackupState};
use crate::ports::state_store::StateStore;

/// Marks the backup of `request` failed with `reason`, unless it is already committed or failed;
/// returns the state it is left in. A backup never claimed (its cluster was unreachable from the
/// start) is recorded as failed.
///
/// # Errors
/// [`BackupError::Catalog`] when the catalog cannot be read or written (the host retries).
pub async fn give_up(
    state: &dyn StateStore,
    request: &BackupRequest,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<BackupState, BackupError> {
    let fresh = BackupRecord::requested(
        request.backup_id.clone(),
        request.cluster.clone(),
        request.policy.clone(),
        request.reason.clone(),
        now,
    );
    let (mut record, etag) = match catalog::claim(state, &fresh).await? {
        Claim::New(etag) => (fresh, etag),
        Claim::Existing(existing, etag) => (*existing, etag),
    };
    if record.state == BackupState::Failed || !record.state.can_move_to(BackupState::Failed) {
        return Ok(record.state);
    }
    record.failure = Some(reason.to_owned());
    record.move_to(BackupState::Failed, now)?;
    catalog::save(state, &record, &etag).await?;
    tracing::warn!(backup.id = %record.backup_id, reason, "backup failed: out of retries");
    Ok(BackupState::Failed)
}

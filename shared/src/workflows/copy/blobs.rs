//! The objects of a copy: list the source, copy what the target lacks, verify what it holds.

use super::plan::{self, BlobStep};
use crate::domain::records::ReplicaRecord;
use crate::ports::object_copier::{ObjectCopier, ObjectCopyState};
use crate::ports::object_store::{ObjectStore, ObjectStoreError};

const LIST_PAGE: usize = 1000;

/// Every key under `prefix` in the source store.
pub(super) async fn list_keys(source: &dyn ObjectStore, prefix: &str) -> Result<Vec<String>, ObjectStoreError> {
    let mut keys = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let page = source.list(prefix, continuation.as_deref(), LIST_PAGE).await?;
        keys.extend(page.objects.into_iter().map(|o| o.key));
        match page.continuation {
            Some(next) => continuation = Some(next),
            None => return Ok(keys),
        }
    }
}

/// Brings every key to a verified copy or a running one; how many are still running. A copy
/// that was bad is recorded in the replica's warnings before it is copied again.
pub(super) async fn copy_all(
    copier: &dyn ObjectCopier,
    keys: &[String],
    replica: &mut ReplicaRecord,
) -> Result<usize, ObjectStoreError> {
    let mut pending = 0;
    for key in keys {
        if !copy_one(copier, key, replica).await? {
            pending += 1;
        }
    }
    Ok(pending)
}

/// Whether `key` has a verified copy once this returns.
async fn copy_one(copier: &dyn ObjectCopier, key: &str, replica: &mut ReplicaRecord) -> Result<bool, ObjectStoreError> {
    let source = copier.source_fingerprint(key).await?;
    match plan::blob_step(&source, copier.inspect_target(key).await?.as_ref()) {
        BlobStep::Done => return Ok(true),
        BlobStep::Pending => return Ok(false),
        BlobStep::Start => {}
        BlobStep::Restart { reason } => {
            tracing::warn!(blob.key = %key, %reason, "the replica's copy is not good: copying again");
            replica.warn(format!("{key}: {reason}; copied again"));
        }
    }
    tracing::debug!(blob.key = %key, "starting copy");
    if copier.start_copy(key).await? != ObjectCopyState::Succeeded {
        return Ok(false);
    }
    // Copied at once (small objects, local stores): verify now rather than on the next poll.
    let copied = copier.inspect_target(key).await?;
    Ok(plan::blob_step(&source, copied.as_ref()) == BlobStep::Done)
}

//! Snapshot copier port: copies a volume snapshot to another region (in Azure, ARM's
//! cross-region incremental snapshot copy, `creationData.createOption: CopyStart`).
//!
//! Contract:
//! - `start_copy` is idempotent: the replica's handle is derived from the source handle and
//!   the target region, so a second call (a redelivered `copy` message) finds the copy the
//!   first one started instead of starting another. It returns at once; the copy runs in the
//!   cloud and is polled with `progress`.
//! - `progress` of a replica that does not exist is [`SnapshotCopyError::NotFound`].
//! - `delete` is idempotent: it returns whether the replica existed.
//! - Throttling is [`SnapshotCopyError::Throttled`] with the server's `Retry-After`, so that a
//!   caller polling through scheduled messages can wait that long.

use std::time::Duration;

use async_trait::async_trait;

/// How far a copy has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyProgress {
    /// Still copying; the percentage when the cloud reports one.
    Running {
        /// 0–100.
        percent: Option<u8>,
    },
    /// The replica is complete and usable for a restore in its region.
    Done,
    /// The copy failed for good (the replica may exist and should be deleted).
    Failed {
        /// The cloud's reason.
        reason: String,
    },
}

/// Why a snapshot copy operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotCopyError {
    /// The snapshot (source or replica) does not exist.
    #[error("{what} not found")]
    NotFound {
        /// The snapshot, by handle.
        what: String,
    },
    /// The cloud asked to slow down.
    #[error("throttled while {what}; retry after {retry_after:?}")]
    Throttled {
        /// The operation.
        what: String,
        /// How long the server asked to wait.
        retry_after: Duration,
    },
    /// The identity may not do this.
    #[error("{what}: access denied: {message}")]
    Denied {
        /// The operation and resource.
        what: String,
        /// The server's message.
        message: String,
    },
    /// The request cannot succeed as made (bad handle, unsupported region, quota).
    #[error("{what}: {message}")]
    Invalid {
        /// The operation and resource.
        what: String,
        /// The server's message.
        message: String,
    },
    /// The service could not be reached or failed; retrying may help.
    #[error("{what}: unavailable: {message}")]
    Unavailable {
        /// The operation and resource.
        what: String,
        /// The cause.
        message: String,
    },
}

impl SnapshotCopyError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SnapshotCopyError::Throttled { .. } | SnapshotCopyError::Unavailable { .. })
    }
}

/// Copies volume snapshots between regions.
#[async_trait]
pub trait SnapshotCopier: Send + Sync {
    /// Starts copying the snapshot `source_handle` (in Azure, the snapshot's ARM resource id)
    /// into `target_region`, or finds the copy an earlier call started; returns the replica's
    /// handle.
    ///
    /// # Errors
    /// [`SnapshotCopyError`]; `NotFound` when the source is gone.
    async fn start_copy(&self, source_handle: &str, target_region: &str) -> Result<String, SnapshotCopyError>;

    /// How far the copy into `replica_handle` has come.
    ///
    /// # Errors
    /// [`SnapshotCopyError`]; `NotFound` when no such replica exists.
    async fn progress(&self, replica_handle: &str) -> Result<CopyProgress, SnapshotCopyError>;

    /// Deletes a replica (retention, or a failed copy); whether it existed.
    ///
    /// # Errors
    /// [`SnapshotCopyError`].
    async fn delete(&self, replica_handle: &str) -> Result<bool, SnapshotCopyError>;
}

//! Object copier port: copies objects from one object store (the source region's) to another
//! (the second region's) at the same keys, server-side where the stores can.
//!
//! Contract:
//! - The *target* copies from the *source*, which the copier authorises (in Azure, a
//!   short-lived SAS on the source blob URL, given to Copy Blob from URL on the target): the
//!   object's bytes do not pass through the caller where the stores can copy server-side.
//!   [`ObjectCopier::traffic`] counts the bytes that did pass through this process.
//! - `start_copy` returns at once; the copy may still be running. Starting a copy of a key
//!   whose copy is pending restarts nothing the caller can see, and starting one over a
//!   finished copy replaces it. A copy appears at the target whole or not at all.
//! - `inspect_target` reports what the target holds at the key: its fingerprint and the state
//!   of the last copy into it (`None` for an object not written by a copy).
//! - Fingerprints of the source and the target come from the same copier and are comparable:
//!   equal sizes and checksums mean equal content (as far as the store's checksum goes).
//! - A missing source object is [`ObjectStoreError::NotFound`].

use async_trait::async_trait;

use super::object_store::ObjectStoreError;

/// The size and content checksum of one object, as the store reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFingerprint {
    /// Size in bytes.
    pub size: u64,
    /// A content checksum (Azure: the base64 Content-MD5 when the blob has one; local
    /// directory: hex SHA-256), `None` when the store keeps none for this object.
    pub checksum: Option<String>,
}

/// Where the last copy into a target object stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectCopyState {
    /// Still copying.
    Pending,
    /// Complete.
    Succeeded,
    /// Failed or aborted; the object at the target is not a good copy.
    Failed {
        /// The service's reason.
        reason: String,
    },
}

/// What the target holds at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetObject {
    /// Its fingerprint (of what is there now; meaningless while a copy is pending).
    pub fingerprint: ObjectFingerprint,
    /// The state of the last copy into it, when it was written by one.
    pub copy: Option<ObjectCopyState>,
}

/// Bytes that went through this process while copying (0 for a server-side copy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes read from the source.
    pub downloaded: u64,
    /// Bytes written to the target.
    pub uploaded: u64,
}

impl Traffic {
    /// Both directions summed.
    pub fn total(self) -> u64 {
        self.downloaded.saturating_add(self.uploaded)
    }
}

/// Copies objects from a source store to a target store.
#[async_trait]
pub trait ObjectCopier: Send + Sync {
    /// The source object's fingerprint.
    ///
    /// # Errors
    /// `NotFound`, `InvalidKey`, `Unavailable`.
    async fn source_fingerprint(&self, key: &str) -> Result<ObjectFingerprint, ObjectStoreError>;

    /// What the target holds at `key`, `None` when nothing.
    ///
    /// # Errors
    /// `InvalidKey`, `Unavailable`.
    async fn inspect_target(&self, key: &str) -> Result<Option<TargetObject>, ObjectStoreError>;

    /// Starts copying the source object at `key` to the same key in the target; the copy's
    /// state right after starting.
    ///
    /// # Errors
    /// `NotFound` (no source object), `InvalidKey`, `Unavailable`.
    async fn start_copy(&self, key: &str) -> Result<ObjectCopyState, ObjectStoreError>;

    /// Bytes this copier moved through the process so far.
    fn traffic(&self) -> Traffic;
}

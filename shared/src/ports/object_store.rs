//! Object store port: backups' bytes (Blob Storage, S3, a local directory).
//!
//! Contract, checked by [`crate::testing::object_store`]:
//! - Keys are `/`-separated paths of non-empty segments, none `.` or `..`, no leading `/`, no
//!   `\` or control characters, at most 1024 bytes ([`validate_key`]).
//! - `put` streams the body and is atomic: a reader sees the whole new object or the old one
//!   (or none), never a part. With `if_absent`, an existing key is
//!   [`ObjectStoreError::AlreadyExists`] and nothing is written.
//! - `get` streams the object, or a byte range of it; a missing key is `NotFound`.
//! - `list` returns keys under a prefix in lexicographic order, at most `limit` per page, with a
//!   continuation token while more remain.
//! - `delete` is idempotent: it returns whether the object existed.

use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;

/// A stream of bytes: bodies go in and out of the store without being held whole in memory.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Wraps bytes already in memory as a [`ByteStream`].
pub fn stream_from_bytes(bytes: impl Into<Bytes>) -> ByteStream {
    Box::pin(futures_util::stream::iter([Ok(bytes.into())]))
}

/// Reads a whole [`ByteStream`] into memory (for small objects such as manifests).
///
/// # Errors
/// The stream's first error.
pub async fn collect_bytes(mut stream: ByteStream) -> std::io::Result<Vec<u8>> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// What the store knows of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Its key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: DateTime<Utc>,
    /// Until when the store refuses to delete or overwrite it (an immutability policy's expiry;
    /// a legal hold is [`DateTime::<Utc>::MAX_UTC`]), when the store reports it. Filled by
    /// `head`; `get` and `list` may leave it `None`. A store without immutability (a local
    /// directory, Azurite) always says `None`.
    pub immutable_until: Option<DateTime<Utc>>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectPage {
    /// Objects in key order.
    pub objects: Vec<ObjectMeta>,
    /// Token for the next page, while more remain.
    pub continuation: Option<String>,
}

/// Options of a put.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Fail with `AlreadyExists` rather than replace.
    pub if_absent: bool,
    /// MIME type, kept where the store keeps one.
    pub content_type: Option<String>,
}

/// Errors of an object store.
#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreError {
    /// No object at the key.
    #[error("object {key} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// `put` with `if_absent` found the key taken.
    #[error("object {key} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// The key or request breaks the store's rules.
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The store failed or could not be reached.
    #[error("{operation} of object {key} failed")]
    Unavailable {
        /// What was attempted.
        operation: &'static str,
        /// The key (or prefix).
        key: String,
        /// Whether a retry may succeed.
        transient: bool,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ObjectStoreError {
    /// No object at the key.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { transient: true, .. })
    }
}

/// Checks an object key (see the module contract).
///
/// # Errors
/// [`ObjectStoreError::InvalidKey`] naming the rule broken.
pub fn validate_key(key: &str) -> Result<(), ObjectStoreError> {
    let fail = |reason: &str| Err(ObjectStoreError::InvalidKey { key: key.to_owned(), reason: reason.to_owned() });
    if key.is_empty() || key.len() > 1024 {
        return fail("must be 1 to 1024 bytes");
    }
    if key.chars().any(|c| c == '\\' || c.is_control()) {
        return fail("must not contain backslashes or control characters");
    }
    if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return fail("segments must be non-empty and not '.' or '..'");
    }
    Ok(())
}

/// Stores objects.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Writes `body` at `key` atomically.
    ///
    /// # Errors
    /// `AlreadyExists` (with `if_absent`), `InvalidKey`, `Unavailable` (also when the body
    /// stream fails: nothing is written then).
    async fn put(&self, key: &str, body: ByteStream, options: PutOptions) -> Result<ObjectMeta, ObjectStoreError>;

    /// Streams the object, or the byte range of it.
    ///
    /// # Errors
    /// `NotFound`, `InvalidKey`, `Unavailable`.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<(ObjectMeta, ByteStream), ObjectStoreError>;

    /// The object's metadata.
    ///
    /// # Errors
    /// `NotFound`, `InvalidKey`, `Unavailable`.
    async fn head(&self, key: &str) -> Result<ObjectMeta, ObjectStoreError>;

    /// One page of the objects whose keys start with `prefix`.
    ///
    /// # Errors
    /// `Unavailable`; `InvalidKey` for a continuation token this store did not issue.
    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage, ObjectStoreError>;

    /// Deletes the object; `Ok(false)` when there was none.
    ///
    /// # Errors
    /// `InvalidKey`, `Unavailable`.
    async fn delete(&self, key: &str) -> Result<bool, ObjectStoreError>;
}

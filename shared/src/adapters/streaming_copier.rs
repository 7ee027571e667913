//! [`ObjectCopier`] between any two object stores by streaming: the bytes are downloaded from
//! the source and uploaded to the target through this process. The embedded defaults copy
//! between two local directories this way; against Azure it is the baseline the server-side
//! copy is measured against (`bench/copy.sh`). Fingerprints are SHA-256 digests computed by
//! reading the objects, counted as downloaded bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::ports::object_copier::{ObjectCopier, ObjectCopyState, ObjectFingerprint, TargetObject, Traffic};
use crate::ports::object_store::{ByteStream, ObjectStore, ObjectStoreError, PutOptions};

/// Copies by downloading and uploading; counts the bytes.
pub struct StreamingObjectCopier {
    source: Arc<dyn ObjectStore>,
    target: Arc<dyn ObjectStore>,
    downloaded: Arc<AtomicU64>,
    uploaded: Arc<AtomicU64>,
}

impl std::fmt::Debug for StreamingObjectCopier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingObjectCopier").field("traffic", &self.traffic()).finish_non_exhaustive()
    }
}

impl StreamingObjectCopier {
    /// Copies from `source` to `target`.
    pub fn new(source: Arc<dyn ObjectStore>, target: Arc<dyn ObjectStore>) -> Self {
        Self { source, target, downloaded: Arc::default(), uploaded: Arc::default() }
    }

    async fn fingerprint(&self, store: &dyn ObjectStore, key: &str) -> Result<ObjectFingerprint, ObjectStoreError> {
        let (_, mut body) = store.get(key, None).await?;
        let mut digest = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ObjectStoreError::Unavailable {
                operation: "checksum",
                key: key.to_owned(),
                transient: true,
                source: Box::new(e),
            })?;
            size += chunk.len() as u64;
            self.downloaded.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            digest.update(&chunk);
        }
        let hex = digest.finalize().iter().fold(String::with_capacity(64), |mut hex, b| {
            hex.push_str(&format!("{b:02x}"));
            hex
        });
        Ok(ObjectFingerprint { size, checksum: Some(hex) })
    }
}

#[async_trait]
impl ObjectCopier for StreamingObjectCopier {
    async fn source_fingerprint(&self, key: &str) -> Result<ObjectFingerprint, ObjectStoreError> {
        self.fingerprint(self.source.as_ref(), key).await
    }

    async fn inspect_target(&self, key: &str) -> Result<Option<TargetObject>, ObjectStoreError> {
        match self.fingerprint(self.target.as_ref(), key).await {
            Ok(fingerprint) => Ok(Some(TargetObject { fingerprint, copy: None })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn start_copy(&self, key: &str) -> Result<ObjectCopyState, ObjectStoreError> {
        let (_, body) = self.source.get(key, None).await?;
        let (downloaded, uploaded) = (Arc::clone(&self.downloaded), Arc::clone(&self.uploaded));
        let counted: ByteStream = Box::pin(body.inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                downloaded.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                uploaded.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }));
        self.target.put(key, counted, PutOptions::default()).await?;
        Ok(ObjectCopyState::Succeeded)
    }

    fn traffic(&self) -> Traffic {
        Traffic { downloaded: self.downloaded.load(Ordering::Relaxed), uploaded: self.uploaded.load(Ordering::Relaxed) }
    }
}

//! [`ObjectStore`] in a local directory: the embedded default.
//!
//! Writes go to a temporary file under `.tmp/` in the same directory, are flushed to disk and
//! renamed into place, so a reader never sees half an object and a crash leaves at most a
//! temporary file (swept on open).

use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::ports::object_store::{
    ByteStream, ObjectMeta, ObjectPage, ObjectStore, ObjectStoreError, PutOptions, validate_key,
};

const TMP_DIR: &str = ".tmp";
const READ_CHUNK: usize = 256 * 1024;

/// Objects as files under one root directory.
#[derive(Debug, Clone)]
pub struct LocalDirObjectStore {
    root: PathBuf,
}

fn unavailable(operation: &'static str, key: &str, e: std::io::Error) -> ObjectStoreError {
    ObjectStoreError::Unavailable { operation, key: key.to_owned(), transient: false, source: Box::new(e) }
}

impl LocalDirObjectStore {
    /// Opens (creating) the store at `root` and removes temporary files a crash left behind
    /// (those older than an hour: younger ones may belong to another process writing now).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ObjectStoreError> {
        let root = root.into();
        let tmp = root.join(TMP_DIR);
        std::fs::create_dir_all(&tmp).map_err(|e| unavailable("open", &root.display().to_string(), e))?;
        sweep_stale(&tmp, std::time::Duration::from_secs(3600));
        Ok(Self { root })
    }

    /// Where the store keeps its files.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, ObjectStoreError> {
        validate_key(key)?;
        if key == TMP_DIR || key.starts_with(".tmp/") {
            return Err(ObjectStoreError::InvalidKey {
                key: key.to_owned(),
                reason: "the .tmp/ prefix is reserved".into(),
            });
        }
        Ok(self.root.join(key))
    }

    async fn meta(&self, key: &str, path: &Path) -> Result<ObjectMeta, ObjectStoreError> {
        let md = tokio::fs::metadata(path).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ObjectStoreError::NotFound { key: key.to_owned() },
            _ => unavailable("head", key, e),
        })?;
        if !md.is_file() {
            return Err(ObjectStoreError::NotFound { key: key.to_owned() });
        }
        let last_modified = md.modified().map(DateTime::<Utc>::from).unwrap_or_default();
        Ok(ObjectMeta { key: key.to_owned(), size: md.len(), last_modified, immutable_until: None })
    }

    async fn write_tmp(&self, key: &str, mut body: ByteStream) -> Result<PathBuf, ObjectStoreError> {
        let tmp = self.root.join(TMP_DIR).join(uuid::Uuid::new_v4().simple().to_string());
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            while let Some(chunk) = body.next().await {
                file.write_all(&chunk?).await?;
            }
            file.sync_all().await
        }
        .await;
        match result {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(unavailable("put", key, e))
            }
        }
    }
}

#[async_trait]
impl ObjectStore for LocalDirObjectStore {
    async fn put(&self, key: &str, body: ByteStream, options: PutOptions) -> Result<ObjectMeta, ObjectStoreError> {
        let path = self.path_of(key)?;
        let tmp = self.write_tmp(key, body).await?;
        let place = async {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            if options.if_absent {
                // hard_link fails if the target exists: an atomic "create if absent".
                tokio::fs::hard_link(&tmp, &path).await?;
                tokio::fs::remove_file(&tmp).await
            } else {
                tokio::fs::rename(&tmp, &path).await
            }
        }
        .await;
        if let Err(e) = place {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(match e.kind() {
                std::io::ErrorKind::AlreadyExists => ObjectStoreError::AlreadyExists { key: key.to_owned() },
                _ => unavailable("put", key, e),
            });
        }
        self.meta(key, &path).await
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<(ObjectMeta, ByteStream), ObjectStoreError> {
        let path = self.path_of(key)?;
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ObjectStoreError::NotFound { key: key.to_owned() },
            _ => unavailable("get", key, e),
        })?;
        let meta = self.meta(key, &path).await?;
        let (start, end) = match range {
            Some(r) if r.start > r.end || r.end > meta.size => {
                return Err(ObjectStoreError::InvalidKey {
                    key: key.to_owned(),
                    reason: format!("range {}..{} is outside the object's {} bytes", r.start, r.end, meta.size),
                });
            }
            Some(r) => (r.start, r.end),
            None => (0, meta.size),
        };
        file.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| unavailable("get", key, e))?;
        let reader = file.take(end - start);
        let stream = futures_util::stream::unfold(reader, |mut reader| async move {
            let mut buf = vec![0u8; READ_CHUNK];
            match reader.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(bytes::Bytes::from(buf)), reader))
                }
                Err(e) => Some((Err(e), reader)),
            }
        });
        Ok((meta, Box::pin(stream)))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, ObjectStoreError> {
        let path = self.path_of(key)?;
        self.meta(key, &path).await
    }

    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage, ObjectStoreError> {
        let root = self.root.clone();
        let mut keys = tokio::task::spawn_blocking(move || walk(&root))
            .await
            .map_err(|e| unavailable("list", prefix, std::io::Error::other(e)))?
            .map_err(|e| unavailable("list", prefix, e))?;
        keys.retain(|k| k.starts_with(prefix) && continuation.is_none_or(|after| k.as_str() > after));
        keys.sort();
        let limit = limit.max(1);
        let more = keys.len() > limit;
        keys.truncate(limit);
        let mut objects = Vec::with_capacity(keys.len());
        for key in keys {
            match self.meta(&key, &self.root.join(&key)).await {
                Ok(meta) => objects.push(meta),
                Err(e) if e.is_not_found() => {} // deleted while listing
                Err(e) => return Err(e),
            }
        }
        let continuation = if more { objects.last().map(|o| o.key.clone()) } else { None };
        Ok(ObjectPage { objects, continuation })
    }

    async fn delete(&self, key: &str) -> Result<bool, ObjectStoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(unavailable("delete", key, e)),
        }
    }
}

/// Removes files in `dir` last modified more than `age` ago (best effort).
fn sweep_stale(dir: &Path, age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let stale =
            entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|e| e > age);
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Every object key under `root`, skipping the temporary directory.
fn walk(root: &Path) -> std::io::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
            if rel == TMP_DIR {
                continue;
            }
            if entry.file_type()?.is_dir() {
                dirs.push(path);
            } else {
                keys.push(rel);
            }
        }
    }
    Ok(keys)
}

//! [`CountingObjectStore`]: an [`ObjectStore`] decorator that counts the bytes read and written
//! through it and the calls made, so a test can say from the outside how much of a backup went
//! through a handler's object stores (for `copy` on Azure: none of it).
//!
//! Bytes are counted as they stream: a body read halfway counts half; an upload counts what the
//! inner store consumed of the body, whether or not the put then succeeded.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures_util::StreamExt;

use crate::ports::object_store::{ByteStream, ObjectMeta, ObjectPage, ObjectStore, ObjectStoreError, PutOptions};

/// What went through a [`CountingObjectStore`] so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreTraffic {
    /// Body bytes read through `get` (whole or ranged).
    pub read_bytes: u64,
    /// Body bytes written through `put`.
    pub written_bytes: u64,
    /// `get` calls.
    pub gets: u64,
    /// `put` calls.
    pub puts: u64,
    /// `head` calls.
    pub heads: u64,
    /// `list` calls (pages).
    pub lists: u64,
    /// `delete` calls.
    pub deletes: u64,
}

impl StoreTraffic {
    /// What went through since `earlier` (a reading of the same store taken before).
    pub fn since(&self, earlier: &StoreTraffic) -> StoreTraffic {
        StoreTraffic {
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
            written_bytes: self.written_bytes.saturating_sub(earlier.written_bytes),
            gets: self.gets.saturating_sub(earlier.gets),
            puts: self.puts.saturating_sub(earlier.puts),
            heads: self.heads.saturating_sub(earlier.heads),
            lists: self.lists.saturating_sub(earlier.lists),
            deletes: self.deletes.saturating_sub(earlier.deletes),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    read_bytes: AtomicU64,
    written_bytes: AtomicU64,
    gets: AtomicU64,
    puts: AtomicU64,
    heads: AtomicU64,
    lists: AtomicU64,
    deletes: AtomicU64,
}

/// Counts what passes through `inner`; otherwise behaves exactly like it.
pub struct CountingObjectStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for CountingObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingObjectStore").field("traffic", &self.traffic()).finish_non_exhaustive()
    }
}

impl CountingObjectStore {
    /// Wraps `inner`, with every counter at zero.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner, counters: Arc::default() }
    }

    /// The counts so far.
    pub fn traffic(&self) -> StoreTraffic {
        let c = &self.counters;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        StoreTraffic {
            read_bytes: load(&c.read_bytes),
            written_bytes: load(&c.written_bytes),
            gets: load(&c.gets),
            puts: load(&c.puts),
            heads: load(&c.heads),
            lists: load(&c.lists),
            deletes: load(&c.deletes),
        }
    }
}

/// `body`, adding the length of every chunk that passes to the counter `pick` chooses.
fn counted(body: ByteStream, counters: &Arc<Counters>, pick: fn(&Counters) -> &AtomicU64) -> ByteStream {
    let counters = Arc::clone(counters);
    Box::pin(body.inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            pick(&counters).fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    }))
}

#[async_trait]
impl ObjectStore for CountingObjectStore {
    async fn put(&self, key: &str, body: ByteStream, options: PutOptions) -> Result<ObjectMeta, ObjectStoreError> {
        self.counters.puts.fetch_add(1, Ordering::Relaxed);
        self.inner.put(key, counted(body, &self.counters, |c| &c.written_bytes), options).await
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<(ObjectMeta, ByteStream), ObjectStoreError> {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        let (meta, body) = self.inner.get(key, range).await?;
        Ok((meta, counted(body, &self.counters, |c| &c.read_bytes)))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, ObjectStoreError> {
        self.counters.heads.fetch_add(1, Ordering::Relaxed);
        self.inner.head(key).await
    }

    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage, ObjectStoreError> {
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list(prefix, continuation, limit).await
    }

    async fn delete(&self, key: &str) -> Result<bool, ObjectStoreError> {
        self.counters.deletes.fetch_add(1, Ordering::Relaxed);
        self.inner.delete(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::local_dir::LocalDirObjectStore;
    use crate::ports::object_store::{collect_bytes, stream_from_bytes};

    fn local(dir: &tempfile::TempDir) -> Arc<dyn ObjectStore> {
        Arc::new(LocalDirObjectStore::open(dir.path()).expect("store"))
    }

    #[tokio::test]
    async fn bytes_are_counted_as_they_stream_and_ranges_count_what_they_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CountingObjectStore::new(local(&dir));
        store.put("a/b", stream_from_bytes(vec![7u8; 1000]), PutOptions::default()).await.expect("put");
        let (_, whole) = store.get("a/b", None).await.expect("get");
        assert_eq!(store.traffic().read_bytes, 0, "nothing is read before the body is");
        assert_eq!(collect_bytes(whole).await.expect("read").len(), 1000);
        let (_, part) = store.get("a/b", Some(100..150)).await.expect("range");
        collect_bytes(part).await.expect("read");
        store.head("a/b").await.expect("head");
        store.list("a/", None, 10).await.expect("list");
        store.delete("a/b").await.expect("delete");
        assert_eq!(
            store.traffic(),
            StoreTraffic { read_bytes: 1050, written_bytes: 1000, gets: 2, puts: 1, heads: 1, lists: 1, deletes: 1 }
        );
    }

    #[tokio::test]
    async fn the_wrapper_passes_the_object_store_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::testing::object_store::run_all(Arc::new(CountingObjectStore::new(local(&dir)))).await;
    }
}

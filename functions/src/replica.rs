//! The second region's storage, where `copy` puts a committed backup's replica.
//!
//! - Embedded defaults: one local directory per region the policies replicate to, under the
//!   data directory (`<data>/replica/<region>`), filled by streaming copies.
//! - Azure: the container `LIFEBOAT_REPLICA_BLOB_CONTAINER` of the account at
//!   `LIFEBOAT_REPLICA_BLOB_ENDPOINT`, for the region `LIFEBOAT_REPLICA_REGION`, filled by
//!   server-side Copy Blob from URL (see [`crate::storage`]).
//!
//! Disk snapshots are copied by ARM's snapshot copier in Azure when
//! `LIFEBOAT_REPLICA_RESOURCE_GROUP` is set (see [`crate::replicas`]); otherwise the copy records
//! that snapshots were not copied. On AWS (`LIFEBOAT_STORAGE=aws`) there is no replica yet.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use lifeboat_shared::adapters::local_dir::LocalDirObjectStore;
use lifeboat_shared::adapters::streaming_copier::StreamingObjectCopier;
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::ports::{ObjectCopier, ObjectStore, SnapshotCopier};
use lifeboat_shared::workflows::regions::ReplicaRegion;

/// Where one region's replicas go.
#[derive(Clone)]
pub struct Replica {
    /// The region (as policies name it in `replication.region`).
    pub region: String,
    /// Copies objects from the primary store to this region's.
    pub copier: Arc<dyn ObjectCopier>,
    /// This region's store (what `prune` deletes replicas from).
    pub store: Arc<dyn ObjectStore>,
    /// Copies disk snapshots into this region, where configured.
    pub snapshots: Option<Arc<dyn SnapshotCopier>>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("region", &self.region)
            .field("snapshots", &self.snapshots.is_some())
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// This region's stores, as `prune` and `restore` reach them.
    pub fn region_stores(&self) -> ReplicaRegion<'_> {
        ReplicaRegion { region: &self.region, objects: self.store.as_ref(), snapshots: self.snapshots.as_deref() }
    }
}

/// The directory of `region`'s replicas under the data directory `root`.
pub fn local_dir(root: &Path, region: &str) -> std::path::PathBuf {
    root.join("replica").join(region)
}

/// One local-directory replica per region the policies of `config` replicate to.
///
/// # Errors
/// When a directory cannot be created.
pub fn embedded(root: &Path, config: &Config, objects: &Arc<dyn ObjectStore>) -> anyhow::Result<Vec<Replica>> {
    let mut regions: Vec<&str> =
        config.policies.values().filter_map(|p| p.spec.replication.as_ref()).map(|r| r.region.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    regions
        .into_iter()
        .map(|region| {
            let dir = local_dir(root, region);
            let target = LocalDirObjectStore::open(&dir)
                .with_context(|| format!("opening the replica directory {}", dir.display()))?;
            Ok(streaming(region, Arc::clone(objects), Arc::new(target)))
        })
        .collect()
}

/// A replica in `region` at `target`, filled by streaming copies from `source` (download and
/// upload through this process), with no snapshot copier: how the embedded defaults replicate.
pub fn streaming(region: &str, source: Arc<dyn ObjectStore>, target: Arc<dyn ObjectStore>) -> Replica {
    let copier = StreamingObjectCopier::new(source, Arc::clone(&target));
    Replica { region: region.to_owned(), copier: Arc::new(copier), store: target, snapshots: None }
}

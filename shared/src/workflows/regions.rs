//! The second regions' stores, as the workflows reach them.

use crate::ports::object_store::ObjectStore;
use crate::ports::snapshot_copier::SnapshotCopier;

/// A second region's stores: where `copy` put replicas, `prune` deletes them and `restore`
/// reads them.
#[derive(Clone, Copy)]
pub struct ReplicaRegion<'a> {
    /// The region, as policies name it in `replication.region`.
    pub region: &'a str,
    /// The region's objects (replicas keep the primary's keys).
    pub objects: &'a dyn ObjectStore,
    /// Deletes the disk snapshot copies, where a copier is configured.
    pub snapshots: Option<&'a dyn SnapshotCopier>,
}

impl std::fmt::Debug for ReplicaRegion<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaRegion")
            .field("region", &self.region)
            .field("snapshots", &self.snapshots.is_some())
            .finish_non_exhaustive()
    }
}

/// The stores of `region` among `regions`, if this deployment has them.
pub fn region<'r, 'a>(regions: &'r [ReplicaRegion<'a>], region: &str) -> Option<&'r ReplicaRegion<'a>> {
    regions.iter().find(|r| r.region == region)
}

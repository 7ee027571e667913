//! Which snapshots a restore can use: disk snapshots are regional, so a restore into a cluster
//! in region R uses the backup's snapshots taken in R, and the complete copies `copy` made into
//! R (a replica's [`SnapshotReplica`]s, carrying the source snapshot's claim and class).

use crate::domain::manifest::SnapshotRecord;
use crate::domain::records::{ReplicaRecord, SnapshotReplica};

/// The ready snapshots of `snapshots` (the manifest's) and of `replica`'s copies that are
/// usable in `region`. A replica that prune is removing, or has removed, offers none.
pub fn snapshots_in_region(
    snapshots: &[SnapshotRecord],
    replica: Option<&ReplicaRecord>,
    region: &str,
) -> Vec<SnapshotRecord> {
    let mut usable: Vec<SnapshotRecord> =
        snapshots.iter().filter(|s| s.is_ready() && s.region == region).cloned().collect();
    let copies = replica.filter(|r| r.region == region && r.removing_since.is_none() && r.removed_at.is_none());
    for copy in copies.iter().flat_map(|r| r.snapshots.iter()) {
        if let Some(record) = copied(snapshots, copy, region) {
            usable.push(record);
        }
    }
    usable
}

/// The snapshot record of a complete copy: the source's, with the copy's handle and region.
fn copied(snapshots: &[SnapshotRecord], copy: &SnapshotReplica, region: &str) -> Option<SnapshotRecord> {
    let handle = copy.handle.as_ref().filter(|_| copy.done && copy.error.is_none())?;
    let source = snapshots.iter().find(|s| s.is_ready() && s.handle.as_deref() == Some(copy.source_handle.as_str()))?;
    Some(SnapshotRecord { handle: Some(handle.clone()), region: region.to_owned(), ..source.clone() })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn snapshot(pvc: &str, handle: &str, region: &str) -> SnapshotRecord {
        SnapshotRecord {
            namespace: "shop".into(),
            pvc: pvc.into(),
            volume_snapshot: format!("vs-{pvc}"),
            driver: "disk.csi.azure.com".into(),
            class: Some("csi-azuredisk-vsc".into()),
            handle: Some(handle.into()),
            restore_size: Some("1Gi".into()),
            region: region.into(),
            error: None,
        }
    }

    fn replica(copies: &[(&str, Option<&str>, bool)]) -> ReplicaRecord {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let mut r = ReplicaRecord::new("northeurope", at, at);
        r.replicated_at = Some(at);
        r.snapshots = copies
            .iter()
            .map(|(source, handle, done)| SnapshotReplica {
                source_handle: (*source).into(),
                namespace: "shop".into(),
                pvc: "data".into(),
                handle: handle.map(str::to_owned),
                done: *done,
                error: None,
            })
            .collect();
        r
    }

    #[test]
    fn the_primary_region_uses_the_backups_snapshots_and_the_second_region_their_copies() {
        let snapshots = [snapshot("data", "disk-1", "westeurope"), snapshot("logs", "disk-2", "westeurope")];
        let replica = replica(&[("disk-1", Some("disk-1-copy"), true), ("disk-2", Some("disk-2-copy"), false)]);

        let primary = snapshots_in_region(&snapshots, Some(&replica), "westeurope");
        assert_eq!(primary, snapshots.to_vec());

        let second = snapshots_in_region(&snapshots, Some(&replica), "northeurope");
        assert_eq!(second.len(), 1, "only the complete copy: {second:?}");
        assert_eq!((second[0].pvc.as_str(), second[0].handle.as_deref()), ("data", Some("disk-1-copy")));
        assert_eq!(second[0].region, "northeurope");
        assert_eq!(second[0].class, snapshots[0].class, "the claim and class come from the source");

        assert!(snapshots_in_region(&snapshots, Some(&replica), "eastus").is_empty(), "no snapshot in a third region");
        assert!(snapshots_in_region(&snapshots, None, "northeurope").is_empty());
    }

    #[test]
    fn a_replica_being_pruned_offers_no_copies() {
        let snapshots = [snapshot("data", "disk-1", "westeurope")];
        let mut replica = replica(&[("disk-1", Some("disk-1-copy"), true)]);
        replica.removing_since = replica.replicated_at;
        assert!(snapshots_in_region(&snapshots, Some(&replica), "northeurope").is_empty());
    }
}

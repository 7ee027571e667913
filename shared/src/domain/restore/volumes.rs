//! Volumes: a PVC with a ready snapshot comes back through a pre-provisioned
//! VolumeSnapshotContent (the recorded handle) and a VolumeSnapshot bound to it; the PVC is
//! re-pointed at that VolumeSnapshot. Any other PVC provisions a new empty volume. Either way
//! the PV the claim was bound to is not restored as it was.

use serde_json::{Value, json};

use super::candidate::Candidate;
use crate::domain::ids::short_hash;
use crate::domain::manifest::SnapshotRecord;

/// The API group of CSI snapshots.
pub(super) const SNAPSHOT_GROUP: &str = "snapshot.storage.k8s.io";

/// Annotations that bind a claim to the source cluster's volume and node.
const BINDING_ANNOTATIONS: [&str; 5] = [
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/selected-node",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
];

/// The name of the VolumeSnapshotContent and VolumeSnapshot generated for the claim `pvc` of
/// source namespace `namespace`: `lifeboat-` and 12 hex digits of a hash of the restore id,
/// namespace and claim. Deterministic, so that a resumed restore finds what it created.
pub fn generated_name(restore_id: &str, namespace: &str, pvc: &str) -> String {
    format!("lifeboat-{}", short_hash(&format!("{restore_id}/{namespace}/{pvc}")))
}

/// The ready snapshot of claim `pvc` in source namespace `namespace`, if any (the first by
/// VolumeSnapshot name, should there be several).
pub(super) fn ready_snapshot<'s>(
    snapshots: &'s [SnapshotRecord],
    namespace: &str,
    pvc: &str,
) -> Option<&'s SnapshotRecord> {
    snapshots
        .iter()
        .filter(|s| s.is_ready() && s.namespace == namespace && s.pvc == pvc)
        .min_by(|a, b| a.volume_snapshot.cmp(&b.volume_snapshot))
}

/// `(namespace, name)` of the claim a PersistentVolume was bound to.
pub(super) fn claim_of(pv: &Candidate) -> Option<(String, String)> {
    Some((pv.str_at("/spec/claimRef/namespace")?.to_owned(), pv.str_at("/spec/claimRef/name")?.to_owned()))
}

/// Unbinds a claim from the source volume; with `snapshot`, points it at that VolumeSnapshot.
/// Without one, a `dataSource` naming a VolumeSnapshot goes too: the source cluster's
/// snapshots are never restored as objects, so it would leave the claim pending for ever.
pub(super) fn rewire_claim(pvc: &mut Value, snapshot: Option<&str>) {
    if let Some(annotations) = pvc.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
        for a in BINDING_ANNOTATIONS {
            annotations.remove(a);
        }
    }
    let Some(spec) = pvc.get_mut("spec").and_then(Value::as_object_mut) else { return };
    spec.remove("volumeName");
    match snapshot {
        Some(name) => {
            let source = json!({"apiGroup": SNAPSHOT_GROUP, "kind": "VolumeSnapshot", "name": name});
            spec.insert("dataSource".into(), source.clone());
            spec.insert("dataSourceRef".into(), source);
        }
        None => {
            for field in ["dataSource", "dataSourceRef"] {
                if spec.get(field).and_then(|s| s.get("kind")).and_then(Value::as_str) == Some("VolumeSnapshot") {
                    spec.remove(field);
                }
            }
        }
    }
}

/// The VolumeSnapshotContent (pre-provisioned from the recorded handle, `Retain` so that
/// deleting the restore never deletes the backup's snapshot) and the VolumeSnapshot in
/// `target_namespace` bound to it, both named `name`.
pub(super) fn snapshot_objects(
    record: &SnapshotRecord,
    handle: &str,
    target_namespace: &str,
    name: &str,
) -> (Value, Value) {
    let mut content = json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
        "metadata": {"name": name},
        "spec": {
            "deletionPolicy": "Retain",
            "driver": record.driver,
            "source": {"snapshotHandle": handle},
            "volumeSnapshotRef": {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                "namespace": target_namespace, "name": name},
        },
    });
    let mut snapshot = json!({
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": name, "namespace": target_namespace},
        "spec": {"source": {"volumeSnapshotContentName": name}},
    });
    if let Some(class) = &record.class {
        for object in [&mut content, &mut snapshot] {
            if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("volumeSnapshotClassName".into(), Value::String(class.clone()));
            }
        }
    }
    (content, snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_short_deterministic_and_distinct() {
        let a = generated_name("r-1", "shop", "data-db-0");
        assert_eq!(a, generated_name("r-1", "shop", "data-db-0"));
        assert_eq!(a.len(), "lifeboat-".len() + 12);
        assert_ne!(a, generated_name("r-2", "shop", "data-db-0"));
        assert_ne!(a, generated_name("r-1", "shop", "data-db-1"));
    }

    #[test]
    fn claims_without_a_snapshot_drop_dangling_snapshot_sources_only() {
        let mut pvc = json!({"spec": {"volumeName": "pvc-1",
            "dataSource": {"apiGroup": SNAPSHOT_GROUP, "kind": "VolumeSnapshot", "name": "old"},
            "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "clone-me"}}});
        rewire_claim(&mut pvc, None);
        assert_eq!(pvc, json!({"spec": {"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "clone-me"}}}));
    }
}

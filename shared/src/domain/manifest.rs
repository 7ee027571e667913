//! The manifest: the last thing a backup writes, and the proof that it is complete. It lists
//! every object with its digest, the volume snapshots with their handles, the cluster's version
//! and tags (and, for AKS, what ARM says of it), the policy, and how the archive was encrypted.
//!
//! The manifest is not encrypted. For an encrypted backup it lists the objects' paths only
//! ([`Manifest::object_paths`]): their digests and sizes are in the sealed object index
//! ([`Manifest::sealed_index`]), encrypted to the archive's recipients, since a plain digest of
//! a Secret's JSON would let anyone who can read the storage confirm guesses of its values.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::archive::EntryRecord;

use super::ids::BackupId;
use super::messages::BackupReason;
use super::names::{ClusterName, PolicyName};
use super::platform::PlatformInfo;
use super::policy::Selection;

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// How the archive is encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Encryption {
    /// Always `age`.
    pub format: String,
    /// The age recipients (public keys) that can decrypt it.
    pub recipients: Vec<String>,
}

/// The objects archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveInfo {
    /// Its key in the object store.
    pub key: String,
    /// Entries (objects plus `metadata/version`).
    pub entries: u64,
    /// Bytes before compression.
    pub uncompressed_bytes: u64,
    /// Bytes stored.
    pub stored_bytes: u64,
    /// Encryption, when the policy asks for it.
    pub encryption: Option<Encryption>,
}

/// The object index of an encrypted backup, sealed to the archive's recipients: one JSON line
/// per object (path, SHA-256, size), encrypted with age. Its stored size and SHA-256 (of the
/// encrypted bytes, which say nothing of the content) bind it to this manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedIndex {
    /// Its key in the object store (`resources.objects.jsonl.age`).
    pub key: String,
    /// Objects it lists.
    pub count: u64,
    /// Bytes stored.
    pub stored_bytes: u64,
    /// SHA-256 of the stored (encrypted) bytes, lowercase hex.
    pub sha256: String,
}

/// A volume snapshot taken with the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRecord {
    /// The PVC's namespace.
    pub namespace: String,
    /// The PVC.
    pub pvc: String,
    /// The VolumeSnapshot Lifeboat created.
    pub volume_snapshot: String,
    /// The CSI driver of the volume.
    pub driver: String,
    /// The VolumeSnapshotClass used.
    pub class: Option<String>,
    /// The storage provider's handle (for Azure disks, the snapshot's resource id).
    pub handle: Option<String>,
    /// Size needed to restore it (e.g. `10Gi`).
    pub restore_size: Option<String>,
    /// Region the snapshot lives in.
    pub region: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl SnapshotRecord {
    /// Whether the snapshot can be restored from.
    pub fn is_ready(&self) -> bool {
        self.handle.is_some() && self.error.is_none()
    }
}

/// The manifest of one committed backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The backup.
    pub backup_id: BackupId,
    /// The cluster backed up.
    pub cluster: ClusterName,
    /// The policy.
    pub policy: PolicyName,
    /// Why it was taken.
    pub reason: BackupReason,
    /// When the backup started.
    pub started_at: DateTime<Utc>,
    /// When it was committed.
    pub committed_at: DateTime<Utc>,
    /// The cluster's Kubernetes version.
    pub cluster_version: String,
    /// The cluster's region.
    pub cluster_region: String,
    /// The cluster's tags: for AKS its Azure tags (e.g. `git_tag`) merged with the Cluster
    /// document's `spec.tags`, which win on conflict.
    pub cluster_tags: BTreeMap<String, String>,
    /// What the cloud platform said about the cluster (for AKS, from ARM: its resource id,
    /// version, tags as read and node pools); absent for a cluster reached by kubeconfig, and in
    /// manifests written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformInfo>,
    /// What the policy selected.
    pub selection: Selection,
    /// The objects archive.
    pub archive: ArchiveInfo,
    /// Objects per resource type (`deployments.apps` → 12).
    pub counts: BTreeMap<String, u64>,
    /// Every object, with its digest; empty for an encrypted backup (see `object_paths`).
    pub objects: Vec<EntryRecord>,
    /// Every object's path, for an encrypted backup (whose digests are in `sealed_index`); empty
    /// otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_paths: Vec<String>,
    /// Where the digests of an encrypted backup's objects are; `None` for an unencrypted backup,
    /// or an encrypted one written before the index was sealed (its `objects` has the digests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_index: Option<SealedIndex>,
    /// Resource types passed over, with the reason.
    pub skipped_resources: BTreeMap<String, String>,
    /// Volume snapshots.
    pub snapshots: Vec<SnapshotRecord>,
    /// What did not go as planned but did not fail the backup (forbidden types, failed snapshots).
    pub warnings: Vec<String>,
}

impl Manifest {
    /// How many objects the backup holds.
    pub fn object_count(&self) -> u64 {
        match &self.sealed_index {
            Some(sealed) => sealed.count,
            None => self.objects.len() as u64,
        }
    }

    /// Whether anything was left out (a forbidden type, a failed snapshot).
    pub fn is_partial(&self) -> bool {
        !self.warnings.is_empty() || self.snapshots.iter().any(|s| !s.is_ready())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::platform::NodePool;

    /// A manifest as the first release wrote it: no `platform`.
    const WRITTEN_BEFORE_PLATFORM: &str = r#"{
      "format": 1,
      "backupId": "hourly-20261122t100000z",
      "cluster": "prod",
      "policy": "hourly",
      "reason": { "kind": "scheduled", "slot": "2026-11-22T10:00:00Z" },
      "startedAt": "2026-11-22T10:00:30Z",
      "committedAt": "2026-11-22T10:02:00Z",
      "clusterVersion": "v1.33.2",
      "clusterRegion": "westeurope",
      "clusterTags": { "git_tag": "release-v1.3.5" },
      "selection": {},
      "archive": { "key": "backups/prod/hourly-20261122t100000z/resources.tar.zst", "entries": 1,
                   "uncompressedBytes": 10, "storedBytes": 5, "encryption": null },
      "counts": {},
      "objects": [],
      "skippedResources": {},
      "snapshots": [],
      "warnings": []
    }"#;

    #[test]
    fn a_manifest_written_before_the_platform_field_still_reads_and_writes_back_the_same() {
        let manifest: Manifest = serde_json::from_str(WRITTEN_BEFORE_PLATFORM).expect("an old manifest reads");
        assert_eq!(manifest.platform, None);
        assert_eq!(manifest.cluster_tags.get("git_tag").map(String::as_str), Some("release-v1.3.5"));
        let json = serde_json::to_value(&manifest).expect("encode");
        assert!(json.get("platform").is_none(), "no platform: no field, as before: {json}");
    }

    #[test]
    fn an_aks_clusters_platform_round_trips() {
        let mut manifest: Manifest = serde_json::from_str(WRITTEN_BEFORE_PLATFORM).expect("manifest");
        manifest.platform = Some(PlatformInfo {
            resource_id: "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/managedClusters/prod"
                .into(),
            fqdn: Some("prod-dns.hcp.westeurope.azmk8s.io".into()),
            kubernetes_version: Some("1.33.2".into()),
            tags: BTreeMap::from([("git_tag".into(), "release-v1.3.5".into())]),
            node_pools: vec![NodePool {
                name: "system".into(),
                count: Some(3),
                vm_size: Some("Standard_D4s_v5".into()),
                mode: Some("System".into()),
            }],
        });
        let json = serde_json::to_value(&manifest).expect("encode");
        assert_eq!(json.pointer("/platform/nodePools/0/vmSize").and_then(|v| v.as_str()), Some("Standard_D4s_v5"));
        let back: Manifest = serde_json::from_value(json).expect("decode");
        assert_eq!(back, manifest);
    }
}

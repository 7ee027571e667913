//! The manifest: the last thing a backup writes, and the proof that it is complete. It lists
//! every object with its digest, the volume snapshots with their handles, the cluster's version
//! and tags, the policy, and how the archive was encrypted.
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
    /// The cluster's tags (for AKS, its Azure tags, e.g. `git_tag`).
    pub cluster_tags: BTreeMap<String, String>,
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

//! Why an archived object is not written.

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// Why an archived object is left out. [`fmt::Display`] gives a sentence a reviewer
/// understands; it serializes as `{"code": "<camelCase variant>", "message": "<sentence>"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Its source namespace is not selected by the namespace filters.
    NamespaceNotSelected {
        /// The source namespace.
        namespace: String,
    },
    /// A Namespace object that nothing restored goes into, and not explicitly included.
    NamespaceEmpty,
    /// Its type is not selected by the resource filters.
    ResourceNotSelected {
        /// `deployments.apps`, `configmaps`, …
        group_resource: String,
    },
    /// A cluster-scoped object while the request or the policy does not allow them.
    ClusterScopedNotAllowed,
    /// Its labels do not match the request's label selector.
    LabelsDoNotMatch {
        /// The selector.
        selector: String,
    },
    /// A Secret of type `kubernetes.io/service-account-token`.
    ServiceAccountToken,
    /// The `kube-root-ca.crt` ConfigMap, which holds the source cluster's CA.
    RootCaConfigMap,
    /// A VolumeSnapshot or VolumeSnapshotContent of the source cluster.
    SourceSnapshotObject,
    /// A Pod that finished (Succeeded/Failed) or a Job that completed: Velero skips them too,
    /// so that a restore does not run a finished Job again.
    Completed,
    /// Owned by a controller that is restored and recreates it.
    OwnedByRestoredController {
        /// `Kind namespace/name` of the owner.
        owner: String,
    },
    /// A PersistentVolume whose claim comes back on a volume restored from a snapshot.
    ReplacedBySnapshot {
        /// `namespace/name` of the claim.
        claim: String,
        /// The snapshot's handle.
        handle: String,
    },
    /// A PersistentVolume whose claim comes back on a new empty volume.
    VolumeDataNotRestored {
        /// `namespace/name` of the claim.
        claim: String,
        /// Whether the request asked for volumes (if it did, no ready snapshot was found).
        volumes_requested: bool,
    },
    /// A PersistentVolume bound to a claim that is not restored.
    ClaimNotRestored {
        /// `namespace/name` of the claim.
        claim: String,
    },
    /// An unclaimed PersistentVolume with reclaim policy `Delete` (Velero does not restore
    /// those either): the target cluster could delete the source's disk through it.
    UnclaimedDeleteVolume,
}

impl SkipReason {
    /// The reason's stable code: the variant's name in camelCase.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NamespaceNotSelected { .. } => "namespaceNotSelected",
            Self::NamespaceEmpty => "namespaceEmpty",
            Self::ResourceNotSelected { .. } => "resourceNotSelected",
            Self::ClusterScopedNotAllowed => "clusterScopedNotAllowed",
            Self::LabelsDoNotMatch { .. } => "labelsDoNotMatch",
            Self::ServiceAccountToken => "serviceAccountToken",
            Self::RootCaConfigMap => "rootCaConfigMap",
            Self::SourceSnapshotObject => "sourceSnapshotObject",
            Self::Completed => "completed",
            Self::OwnedByRestoredController { .. } => "ownedByRestoredController",
            Self::ReplacedBySnapshot { .. } => "replacedBySnapshot",
            Self::VolumeDataNotRestored { .. } => "volumeDataNotRestored",
            Self::ClaimNotRestored { .. } => "claimNotRestored",
            Self::UnclaimedDeleteVolume => "unclaimedDeleteVolume",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NamespaceNotSelected { namespace } => {
                write!(f, "namespace {namespace} is not selected by the request's namespace filters")
            }
            Self::NamespaceEmpty => f.write_str("nothing is restored into this namespace and the request does not name it"),
            Self::ResourceNotSelected { group_resource } => {
                write!(f, "{group_resource} is not selected by the request's resource filters")
            }
            Self::ClusterScopedNotAllowed => f.write_str("cluster-scoped objects not allowed by the request/policy"),
            Self::LabelsDoNotMatch { selector } => write!(f, "its labels do not match the selector {selector:?}"),
            Self::ServiceAccountToken => {
                f.write_str("service account token secrets are minted by the target cluster's control plane")
            }
            Self::RootCaConfigMap => {
                f.write_str("the control plane publishes kube-root-ca.crt in every namespace with the target cluster's CA")
            }
            Self::SourceSnapshotObject => f.write_str(
                "it belongs to the source cluster's snapshots; volume data comes back from the backup's recorded snapshots",
            ),
            Self::Completed => f.write_str("it had completed; restoring it would run it again"),
            Self::OwnedByRestoredController { owner } => {
                write!(f, "owned by {owner}, which is restored and recreates it")
            }
            Self::ReplacedBySnapshot { claim, handle } => {
                write!(f, "replaced by a volume restored from snapshot {handle} for claim {claim}")
            }
            Self::VolumeDataNotRestored { claim, volumes_requested: true } => write!(
                f,
                "no ready snapshot of claim {claim} in the target region: the claim gets a new empty volume and its data is not restored"
            ),
            Self::VolumeDataNotRestored { claim, volumes_requested: false } => write!(
                f,
                "the request does not restore volumes: claim {claim} gets a new empty volume and its data is not restored"
            ),
            Self::ClaimNotRestored { claim } => write!(f, "its claim {claim} is not restored"),
            Self::UnclaimedDeleteVolume => f.write_str(
                "an unclaimed volume with reclaim policy Delete: the target cluster could delete the source's disk through it",
            ),
        }
    }
}

impl Serialize for SkipReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("SkipReason", 2)?;
        s.serialize_field("code", self.code())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_code_and_sentence() {
        let reason = SkipReason::OwnedByRestoredController { owner: "ReplicaSet shop/web-5d8f7c9b6".into() };
        assert_eq!(
            serde_json::to_value(&reason).unwrap(),
            serde_json::json!({"code": "ownedByRestoredController",
                "message": "owned by ReplicaSet shop/web-5d8f7c9b6, which is restored and recreates it"})
        );
        assert_eq!(
            SkipReason::ClusterScopedNotAllowed.to_string(),
            "cluster-scoped objects not allowed by the request/policy"
        );
    }
}

//! Restore planning: which archived objects to send to the API server, in which order, and
//! exactly what each body looks like after every transform. Pure: [`plan`] takes the objects
//! read from an archive and the request's options and returns a [`RestorePlan`]; the restore
//! workflow applies it tier by tier, and `lifeboat restore submit --dry-run --output json`
//! prints it.
//!
//! The rules follow the architecture's "Restore" section and issue 4; where both are silent
//! they follow Velero, and the item says so. The same input and options always give the same
//! plan (the applier relies on it to resume). Choices worth knowing:
//!
//! - Every written object carries [`RESTORE_ID_LABEL`] and [`RESTORED_FROM_LABEL`] (not the
//!   backup-id label: see there why).
//! - Namespaces are exempt from the resource filters, the label selector and the
//!   cluster-scoped switch; a selected one is written when something is restored into it or
//!   a non-empty namespace include names it, and one is generated for a target namespace the
//!   archive lacks.
//! - A namespace's `default` ServiceAccount is planned (it may carry image pull secrets or
//!   workload identity annotations) and flagged [`PlannedObject::created_by_control_plane`];
//!   `kube-root-ca.crt` is skipped, as it holds the source cluster's CA.
//! - As Velero: finished Pods and completed Jobs are skipped (restoring would run them
//!   again); bare Pods lose `nodeName`, a class-derived `priority`, the `kube-api-access-*`
//!   token volume and ephemeral containers; unclaimed PVs with reclaim policy `Delete` are
//!   skipped; RoleBinding and ClusterRoleBinding subjects follow the namespace mapping.
//! - Owner references to an archived owner go (its uid changes); others stay. A Pod,
//!   ReplicaSet, Job, ControllerRevision, Endpoints or EndpointSlice whose controller is
//!   selected is skipped, naming the controller.
//! - ServiceAccounts forget their references to token Secrets, which are skipped.
//! - A claim without a ready snapshot loses a `dataSource` naming a VolumeSnapshot (the
//!   source's snapshots are never restored, so it would stay pending).
//!
//! ```
//! use std::collections::BTreeMap;
//! use lifeboat_shared::domain::restore::{plan, EntryPath, PlanOptions, SourceObject, Tier};
//! use serde_json::json;
//!
//! let cm = SourceObject {
//!     path: EntryPath::namespaced("configmaps", "", "shop", "web").unwrap(),
//!     object: json!({"apiVersion": "v1", "kind": "ConfigMap",
//!         "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7"},
//!         "data": {"k": "v"}}),
//! };
//! let options = PlanOptions {
//!     namespace_mapping: BTreeMap::from([("shop".into(), "shop-restore".into())]),
//!     ..PlanOptions::new("r-1", "nightly-20261122t020000z")
//! };
//! let plan = plan([cm], &options).unwrap();
//! // The target namespace is generated (it was not in the archive), then the ConfigMap.
//! assert_eq!(plan.steps[0].tier, Tier::Namespaces);
//! let step = &plan.steps[1];
//! assert_eq!(step.namespace.as_deref(), Some("shop-restore"));
//! assert!(step.object["metadata"].get("uid").is_none());
//! ```

mod candidate;
mod decide;
mod error;
mod filter;
pub mod labels;
mod namespaces;
mod order;
mod owners;
mod planner;
mod regional;
mod skip;
mod transform;
mod volumes;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::archive::layout::EntryPath;

pub use self::error::PlanError;
pub use self::labels::{LabelSelector, SelectorError};
pub use self::order::Tier;
pub use self::planner::plan;
pub use self::regional::snapshots_in_region;
pub use self::skip::SkipReason;
pub use self::volumes::generated_name;
use super::manifest::SnapshotRecord;

/// The label every planned object carries: the restore that wrote it.
pub const RESTORE_ID_LABEL: &str = "lifeboat.io/restore-id";

/// The label every planned object carries: the backup it was restored from.
///
/// Deliberately not [`crate::domain::selection::BACKUP_ID_LABEL`]: the backup exporter passes
/// over every object carrying that label as Lifeboat's own plumbing, so restored objects
/// labelled with it would silently vanish from every later backup of the restored cluster.
/// Only the generated VolumeSnapshot and VolumeSnapshotContent objects carry that label too,
/// because they are such plumbing.
pub const RESTORED_FROM_LABEL: &str = "lifeboat.io/restored-from-backup";

/// One object read from the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceObject {
    /// Where it was in the archive (gives its resource, group and source namespace).
    pub path: EntryPath,
    /// The object as it was backed up.
    pub object: Value,
}

/// What the applier does when an object already exists in the target cluster. The planner
/// does not use it; it lives here so that the request and the applier share one type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConflictPolicy {
    /// Leave the existing object as it is (Velero's default).
    #[default]
    Skip,
    /// Replace the existing object's content with the planned one.
    Update,
    /// Record a failure for the object.
    Fail,
}

/// What to restore and how, derived from the request (and the policy) by the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanOptions {
    /// The restore's id: a label value (at most 63 characters), put on every planned object as
    /// [`RESTORE_ID_LABEL`].
    pub restore_id: String,
    /// The backup's id: a label value, put on every planned object as [`RESTORED_FROM_LABEL`].
    pub backup_id: String,
    /// Globs over source namespaces; empty means every namespace.
    pub include_namespaces: Vec<String>,
    /// Globs over source namespaces, applied after the includes.
    pub exclude_namespaces: Vec<String>,
    /// Source namespace to target namespace.
    pub namespace_mapping: BTreeMap<String, String>,
    /// Resource types, spelled as in a backup selection: plural (`deployments`),
    /// group-resource (`deployments.apps`) or kind (`Deployment`); empty means every type.
    pub include_resources: Vec<String>,
    /// Resource types left out, same spelling.
    pub exclude_resources: Vec<String>,
    /// A Kubernetes label selector (`app=web,tier in (a,b),!legacy`), evaluated here.
    pub label_selector: Option<String>,
    /// Whether cluster-scoped objects other than Namespaces (and the generated snapshot
    /// contents) may be written: both the request and the policy must allow it.
    pub cluster_scoped: bool,
    /// Whether PVC data comes back from snapshots.
    pub volumes: bool,
    /// Whether Services keep their `nodePort`s and `healthCheckNodePort`.
    pub keep_node_ports: bool,
    /// The ready snapshots usable in the target region.
    pub snapshots: Vec<SnapshotRecord>,
}

impl PlanOptions {
    /// Options that restore everything namespaced from `backup_id`, with volumes, and no
    /// cluster-scoped objects beyond Namespaces.
    pub fn new(restore_id: impl Into<String>, backup_id: impl Into<String>) -> Self {
        Self {
            restore_id: restore_id.into(),
            backup_id: backup_id.into(),
            include_namespaces: Vec::new(),
            exclude_namespaces: Vec::new(),
            namespace_mapping: BTreeMap::new(),
            include_resources: Vec::new(),
            exclude_resources: Vec::new(),
            label_selector: None,
            cluster_scoped: false,
            volumes: true,
            keep_node_ports: false,
            snapshots: Vec::new(),
        }
    }

    /// Checks what can be checked without the archive: the ids as label values, the label
    /// selector, and the namespace mapping against the filters. [`plan`] checks the same first;
    /// call this to refuse a request before reading anything.
    ///
    /// # Errors
    /// [`PlanError::LabelValue`], [`PlanError::LabelSelector`],
    /// [`PlanError::InvalidTargetNamespace`], [`PlanError::TargetNamespaceExcluded`],
    /// [`PlanError::MappingSourceNotSelected`] or [`PlanError::DuplicateTargetNamespace`].
    pub fn validate(&self) -> Result<(), PlanError> {
        filter::Filters::new(self).map(drop)
    }
}

/// The plan: every object in apply order, and every object left out with the reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePlan {
    /// Objects to write, sorted by tier, then group, resource, namespace and name.
    pub steps: Vec<PlannedObject>,
    /// Objects of the archive not written, sorted by archive path.
    pub skipped: Vec<SkippedObject>,
}

impl RestorePlan {
    /// The steps of one tier, in order.
    pub fn tier(&self, tier: Tier) -> impl Iterator<Item = &PlannedObject> {
        self.steps.iter().filter(move |s| s.tier == tier)
    }
}

/// One object to write.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedObject {
    /// Its ordering class: a tier is applied only after the previous one.
    pub tier: Tier,
    /// API group (`""` for the core group).
    pub group: String,
    /// API version within the group, as archived.
    pub version: String,
    /// Plural resource name (where to send it).
    pub resource: String,
    /// Kind.
    pub kind: String,
    /// Target namespace (after mapping); `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Exactly the body to send, after every transform.
    pub object: Value,
    /// The archive path it came from; `None` for generated objects.
    pub source: Option<String>,
    /// What to wait for after writing it, before the next tier.
    pub wait: Option<WaitFor>,
    /// The control plane creates this object by itself (a namespace's `default`
    /// ServiceAccount): "already exists" is expected and is not a conflict, whatever the
    /// conflict policy; the applier may update it unless the policy is [`ConflictPolicy::Skip`].
    pub created_by_control_plane: bool,
}

/// What the applier waits for once an object is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WaitFor {
    /// The CRD's `Established` condition is true: its custom resources can be written.
    CrdEstablished,
    /// The VolumeSnapshot's `status.readyToUse` is true: PVCs can be provisioned from it.
    SnapshotReady,
}

/// One archived object left out, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedObject {
    /// Its archive path.
    pub source: String,
    /// Its source namespace (before mapping); `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// API group (`""` for the core group).
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Kind.
    pub kind: String,
    /// Why it is not written.
    pub reason: SkipReason,
}

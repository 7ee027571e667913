//! [`ArmSnapshotCopier`]: the [`SnapshotCopier`] port on ARM's cross-region incremental
//! snapshot copy: `PUT Microsoft.Compute/snapshots/{replica}` with
//! `creationData: { createOption: "CopyStart", sourceResourceId }`, `incremental: true` and
//! the target region as `location`. ARM answers at once and copies in the background; the
//! replica's `properties.completionPercent` and `copyCompletionError` tell how far it came.
//!
//! Replicas go into one resource group of the configuration; each one's name is derived from
//! the source's id and the target region ([`replica_name`]), so that `start_copy` finds the
//! copy an earlier call started (GET first, PUT if absent; a 409 from a concurrent PUT means
//! the other call created it).

use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::instrument;

use super::{ArmCall, ArmClient, ArmError};
use crate::domain::arm_id::{ArmIdError, ArmResourceId};
use crate::ports::snapshot_copier::{CopyProgress, SnapshotCopier, SnapshotCopyError};

/// The snapshot resource type.
pub const SNAPSHOT_TYPE: &str = "Microsoft.Compute/snapshots";
/// The Compute (disk) resource provider's API version spoken.
pub const SNAPSHOT_API_VERSION: &str = "2024-03-02";
/// The longest snapshot name Azure accepts.
const MAX_NAME: usize = 80;

/// Copies disk snapshots across regions through ARM.
#[derive(Debug, Clone)]
pub struct ArmSnapshotCopier {
    client: ArmClient,
    replica_group: ArmResourceId,
}

impl ArmSnapshotCopier {
    /// A copier putting replicas into the resource group `replica_group`
    /// (`/subscriptions/…/resourceGroups/…`, e.g. from `LIFEBOAT_REPLICA_RESOURCE_GROUP`).
    ///
    /// # Errors
    /// [`ArmIdError`] when `replica_group` is not a resource group's id.
    pub fn new(client: ArmClient, replica_group: &str) -> Result<Self, ArmIdError> {
        let group: ArmResourceId = replica_group.parse()?;
        if !group.is_resource_group() {
            return Err(ArmIdError { id: replica_group.to_owned(), reason: "expected a resource group's id" });
        }
        Ok(Self { client, replica_group: group })
    }

    /// The replica's id for a copy of `source` into `region`.
    fn replica_of(&self, source: &ArmResourceId, region: &str) -> Result<ArmResourceId, SnapshotCopyError> {
        self.replica_group
            .child(SNAPSHOT_TYPE, &replica_name(source, region))
            .map_err(|e| invalid("naming the replica", e))
    }
}

/// The replica's name for a copy of `source` into `region`: the source's name (lowercase, cut
/// to fit), the region, and a hash of both (the source's id ignoring case, so snapshots of the same
/// name in other groups do not collide). At most 80 characters of `[A-Za-z0-9_.-]`, starting
/// with an alphanumeric and ending with one, as Azure requires.
pub fn replica_name(source: &ArmResourceId, region: &str) -> String {
    let region = region.to_ascii_lowercase();
    let digest = Sha256::digest(format!("{}\n{region}", source.as_str().to_ascii_lowercase()));
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    let stem: String = source
        .name()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .collect();
    let room = MAX_NAME.saturating_sub(region.len() + hash.len() + 2);
    let stem: String = stem.chars().take(room).collect();
    let stem = stem.trim_end_matches(['.', '-', '_']);
    if stem.is_empty() { format!("copy-{region}-{hash}") } else { format!("{stem}-{region}-{hash}") }
}

fn invalid(what: &str, e: impl std::fmt::Display) -> SnapshotCopyError {
    SnapshotCopyError::Invalid { what: what.to_owned(), message: e.to_string() }
}

/// A snapshot id, checked to be one.
fn snapshot_id(handle: &str) -> Result<ArmResourceId, SnapshotCopyError> {
    let id: ArmResourceId = handle.parse().map_err(|e| invalid("reading the snapshot handle", e))?;
    if !id.is_type(SNAPSHOT_TYPE) {
        return Err(invalid("reading the snapshot handle", format!("{handle} is not a {SNAPSHOT_TYPE} id")));
    }
    Ok(id)
}

/// The port's error for an ARM error.
fn to_port(e: ArmError) -> SnapshotCopyError {
    let what = |operation: &str, resource: &str| format!("{operation} {resource}");
    match e {
        ArmError::NotFound { resource, .. } => SnapshotCopyError::NotFound { what: resource },
        ArmError::Throttled { operation, resource, retry_after } => {
            SnapshotCopyError::Throttled { what: what(operation, &resource), retry_after }
        }
        ArmError::Denied { operation, resource, fault } => {
            SnapshotCopyError::Denied { what: what(operation, &resource), message: fault.to_string() }
        }
        ArmError::Conflict { operation, resource, fault } | ArmError::Rejected { operation, resource, fault } => {
            SnapshotCopyError::Invalid { what: what(operation, &resource), message: fault.to_string() }
        }
        ArmError::OperationFailed { operation, resource, status, code, message } => SnapshotCopyError::Invalid {
            what: what(operation, &resource),
            message: format!("{status}: {code}: {message}"),
        },
        ArmError::Unavailable { operation, resource, reason } => {
            SnapshotCopyError::Unavailable { what: what(operation, &resource), message: reason }
        }
    }
}

/// A snapshot's progress from its resource body.
fn progress_of(body: &Value) -> CopyProgress {
    let properties = body.get("properties").unwrap_or(&Value::Null);
    if let Some(error) = properties.get("copyCompletionError").filter(|e| !e.is_null()) {
        let field = |name| error.get(name).and_then(Value::as_str).unwrap_or_default();
        return CopyProgress::Failed { reason: format!("{}: {}", field("errorCode"), field("errorMessage")) };
    }
    let state = properties.get("provisioningState").and_then(Value::as_str).unwrap_or_default();
    if state.eq_ignore_ascii_case("Failed") || state.eq_ignore_ascii_case("Canceled") {
        return CopyProgress::Failed { reason: format!("the replica's provisioning state is {state}") };
    }
    let percent = properties.get("completionPercent").and_then(Value::as_f64);
    match (state.eq_ignore_ascii_case("Succeeded"), percent) {
        (true, None) => CopyProgress::Done,
        (true, Some(p)) if p >= 100.0 => CopyProgress::Done,
        // Clamped to 0..=100 before the cast, so it cannot wrap.
        (_, p) => CopyProgress::Running { percent: p.map(|p| p.clamp(0.0, 100.0).floor() as u8) },
    }
}

/// A call on the snapshot `resource`.
fn at<'a>(operation: &'static str, resource: &'a ArmResourceId) -> ArmCall<'a> {
    ArmCall { operation, resource: resource.as_str(), api_version: SNAPSHOT_API_VERSION }
}

/// The source id a replica was copied from.
fn source_of(body: &Value) -> Option<&str> {
    body.pointer("/properties/creationData/sourceResourceId").and_then(Value::as_str)
}

#[async_trait]
impl SnapshotCopier for ArmSnapshotCopier {
    #[instrument(skip(self), fields(snapshot.source = source_handle, snapshot.region = target_region))]
    async fn start_copy(&self, source_handle: &str, target_region: &str) -> Result<String, SnapshotCopyError> {
        let source = snapshot_id(source_handle)?;
        if target_region.is_empty() || !target_region.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("copying a snapshot", format!("{target_region:?} is not an Azure region name")));
        }
        let replica = self.replica_of(&source, target_region)?;
        if let Some(existing) = self.client.get(at("reading the snapshot replica", &replica)).await.map_err(to_port)? {
            let copied_from = source_of(&existing).and_then(|s| s.parse::<ArmResourceId>().ok());
            if copied_from.as_ref() != Some(&source) {
                return Err(invalid(replica.as_str(), format!("the replica exists but was not copied from {source}")));
            }
            return Ok(replica.to_string());
        }
        if self.client.get(at("reading the source snapshot", &source)).await.map_err(to_port)?.is_none() {
            return Err(SnapshotCopyError::NotFound { what: source.to_string() });
        }
        let body = json!({
            "location": target_region,
            "properties": {
                "creationData": { "createOption": "CopyStart", "sourceResourceId": source.as_str() },
                "incremental": true,
            },
        });
        match self.client.put(at("starting the snapshot copy", &replica), &body).await {
            Ok(_) | Err(ArmError::Conflict { .. }) => Ok(replica.to_string()),
            Err(e) => Err(to_port(e)),
        }
    }

    #[instrument(skip(self), fields(snapshot.replica = replica_handle))]
    async fn progress(&self, replica_handle: &str) -> Result<CopyProgress, SnapshotCopyError> {
        let replica = snapshot_id(replica_handle)?;
        match self.client.get(at("reading the snapshot replica", &replica)).await.map_err(to_port)? {
            Some(body) => Ok(progress_of(&body)),
            None => Err(SnapshotCopyError::NotFound { what: replica.to_string() }),
        }
    }

    #[instrument(skip(self), fields(snapshot.replica = replica_handle))]
    async fn delete(&self, replica_handle: &str) -> Result<bool, SnapshotCopyError> {
        let replica = snapshot_id(replica_handle)?;
        self.client.delete(at("deleting the snapshot replica", &replica)).await.map_err(to_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ArmResourceId {
        s.parse().expect("id")
    }

    const SOURCE: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/snapshots/pvc-1";

    #[test]
    fn replica_names_are_stable_per_source_and_region_and_distinct_otherwise() {
        let name = replica_name(&id(SOURCE), "WestEurope");
        assert!(name.starts_with("pvc-1-westeurope-"), "{name}");
        assert_eq!(name, replica_name(&id(&SOURCE.to_ascii_uppercase()), "westeurope"));
        assert_ne!(name, replica_name(&id(SOURCE), "northeurope"));
        assert_ne!(name, replica_name(&id(&SOURCE.replace("/g/", "/other/")), "westeurope"));
    }

    #[test]
    fn replica_names_keep_to_azures_rules() {
        let long = format!("{}/{}", SOURCE.trim_end_matches("/pvc-1"), "_x".repeat(70));
        for source in
            [long.as_str(), SOURCE, "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/snapshots/__"]
        {
            let name = replica_name(&id(source), "australiasoutheast");
            assert!(name.len() <= MAX_NAME, "{name}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')), "{name}");
            assert!(name.starts_with(|c: char| c.is_ascii_alphanumeric()), "{name}");
            assert!(name.ends_with(|c: char| c.is_ascii_alphanumeric()), "{name}");
        }
    }

    #[test]
    fn progress_reads_percent_state_and_copy_errors() {
        let body = |properties: Value| json!({ "properties": properties });
        assert_eq!(
            progress_of(&body(json!({"provisioningState": "Succeeded", "completionPercent": 42.7}))),
            CopyProgress::Running { percent: Some(42) }
        );
        assert_eq!(
            progress_of(&body(json!({"provisioningState": "Succeeded", "completionPercent": 100.0}))),
            CopyProgress::Done
        );
        assert_eq!(
            progress_of(&body(json!({"provisioningState": "Creating"}))),
            CopyProgress::Running { percent: None }
        );
        assert_eq!(
            progress_of(&body(json!({
                "provisioningState": "Succeeded",
                "completionPercent": 10.0,
                "copyCompletionError": {"errorCode": "CopySourceNotFound", "errorMessage": "the source was deleted"},
            }))),
            CopyProgress::Failed { reason: "CopySourceNotFound: the source was deleted".into() }
        );
        assert!(matches!(progress_of(&body(json!({"provisioningState": "Failed"}))), CopyProgress::Failed { .. }));
    }
}

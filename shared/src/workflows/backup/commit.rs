//! The commit: folds the export and the snapshots into the manifest, writes it last (its
//! presence is the commit), marks the backup committed and asks for the copy to the second
//! region.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::export::ExportResult;
use super::object_index;
use super::{BackupError, Deps, Outcome};
use crate::catalog;
use crate::domain::manifest::{ArchiveInfo, Encryption, MANIFEST_FORMAT, Manifest};
use crate::domain::messages::{CopyRequest, Message, encode};
use crate::domain::platform::{self, PlatformInfo};
use crate::domain::policy::Cluster as ClusterDecl;
use crate::domain::policy::Policy;
use crate::domain::records::{BackupRecord, BackupState};
use crate::layout;
use crate::ports::bus::OutgoingMessage;
use crate::ports::cluster::{Cluster, ClusterError};
use crate::ports::object_store::{ObjectStoreError, PutOptions, collect_bytes, stream_from_bytes};
use crate::ports::state_store::ETag;
use crate::workflows::retry::{RetryPolicy, with_retry};

/// What the backup knows of the cluster, for the manifest.
pub(crate) struct ClusterFacts {
    /// Its Kubernetes version (the API server's).
    pub version: String,
    /// Its region.
    pub region: String,
    /// Its tags: the platform's merged with the Cluster document's (e.g. `git_tag`).
    pub tags: BTreeMap<String, String>,
    /// What the platform says of it (AKS: ARM's description).
    pub platform: Option<PlatformInfo>,
}

impl ClusterFacts {
    /// Asks `cluster` (declared as `declared`) for its version and platform description, each
    /// retried under `retry`.
    pub(crate) async fn gather(
        cluster: &dyn Cluster,
        declared: &ClusterDecl,
        retry: RetryPolicy,
    ) -> Result<Self, ClusterError> {
        let version = with_retry(retry, || cluster.version()).await?;
        let platform = with_retry(retry, || cluster.platform()).await?;
        Ok(Self {
            version,
            region: declared.spec.region.clone(),
            tags: platform::cluster_tags(&declared.spec.tags, platform.as_ref()),
            platform,
        })
    }
}

/// What the export leaves for the commit.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportDoc {
    cluster_version: String,
    cluster_region: String,
    #[serde(default)]
    cluster_tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<PlatformInfo>,
    recipients: Vec<String>,
    export: ExportResult,
}

/// Keeps the export's results next to the archive until the commit.
pub(crate) async fn save_export(
    deps: &Deps<'_>,
    record: &BackupRecord,
    cluster: &ClusterFacts,
    recipients: &[String],
    export: &ExportResult,
) -> Result<(), BackupError> {
    let doc = ExportDoc {
        cluster_version: cluster.version.clone(),
        cluster_region: cluster.region.clone(),
        cluster_tags: cluster.tags.clone(),
        platform: cluster.platform.clone(),
        recipients: recipients.to_vec(),
        export: export.clone(),
    };
    let bytes = serde_json::to_vec(&doc).map_err(|e| BackupError::NotYet(format!("encoding the export: {e}")))?;
    let key = layout::export_key(&record.cluster, &record.backup_id);
    deps.objects.put(&key, stream_from_bytes(bytes), PutOptions::default()).await?;
    Ok(())
}

async fn load_export(deps: &Deps<'_>, record: &BackupRecord) -> Result<ExportDoc, BackupError> {
    let key = layout::export_key(&record.cluster, &record.backup_id);
    let (_, body) = deps.objects.get(&key, None).await?;
    let bytes = collect_bytes(body).await.map_err(|e| {
        BackupError::Objects(ObjectStoreError::Unavailable {
            operation: "get",
            key: key.clone(),
            transient: true,
            source: Box::new(e),
        })
    })?;
    serde_json::from_slice(&bytes).map_err(|e| BackupError::NotYet(format!("export record {key} is unreadable: {e}")))
}

/// Writes the manifest and marks the backup committed (or keeps it committed: repeatable).
///
/// # Errors
/// [`BackupError`].
pub async fn commit(
    deps: &Deps<'_>,
    policy: &Policy,
    record: &mut BackupRecord,
    etag: ETag,
) -> Result<Outcome, BackupError> {
    let doc = load_export(deps, record).await?;
    let archive_key = layout::archive_key(&record.cluster, &record.backup_id);
    let mut warnings = record.warnings.clone();
    warnings.extend(
        record
            .snapshots
            .iter()
            .filter_map(|s| s.error.as_ref().map(|e| format!("snapshot of PVC {}/{} failed: {e}", s.namespace, s.pvc))),
    );
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        backup_id: record.backup_id.clone(),
        cluster: record.cluster.clone(),
        policy: record.policy.clone(),
        reason: record.reason.clone(),
        started_at: record.created_at,
        committed_at: deps.now,
        cluster_version: doc.cluster_version,
        cluster_region: doc.cluster_region,
        cluster_tags: doc.cluster_tags,
        platform: doc.platform,
        selection: policy.spec.selection.clone(),
        archive: ArchiveInfo {
            key: archive_key,
            entries: doc.export.entries,
            uncompressed_bytes: doc.export.uncompressed_bytes,
            stored_bytes: doc.export.stored_bytes,
            encryption: (!doc.recipients.is_empty())
                .then(|| Encryption { format: "age".to_owned(), recipients: doc.recipients.clone() }),
        },
        counts: doc.export.counts,
        objects: doc.export.objects,
        object_paths: Vec::new(),
        sealed_index: doc.export.index.as_ref().and_then(|index| index.sealed.clone()),
        skipped_resources: doc.export.skipped,
        snapshots: record.snapshots.clone(),
        warnings: warnings.clone(),
    };
    let partial = manifest.is_partial();
    let encoding_failed = |e: serde_json::Error| BackupError::NotYet(format!("encoding the manifest: {e}"));
    // The objects stream from the export's object index into the manifest: never all in memory.
    // A sealed index stays sealed: the manifest gets the paths and where the sealed index is.
    let (objects, body) = match &doc.export.index {
        Some(index) => {
            let (_, lines) = deps.objects.get(&index.key, None).await?;
            let field = index.manifest_field();
            (index.count, object_index::manifest_stream(&manifest, field, lines).map_err(encoding_failed)?)
        }
        None => (
            manifest.objects.len() as u64,
            stream_from_bytes(serde_json::to_vec_pretty(&manifest).map_err(encoding_failed)?),
        ),
    };
    let key = layout::manifest_key(&record.cluster, &record.backup_id);
    match deps
        .objects
        .put(&key, body, PutOptions { if_absent: true, content_type: Some("application/json".into()) })
        .await
    {
        Ok(_) => {}
        Err(ObjectStoreError::AlreadyExists { .. }) => {} // committed by an earlier delivery
        Err(e) => return Err(e.into()),
    }
    record.warnings = warnings;
    record.move_to(BackupState::Committed, deps.now)?;
    catalog::save(deps.state, record, &etag).await?;
    tracing::info!(backup.id = %record.backup_id, objects, partial, "backup committed");
    if let Some(replication) = &policy.spec.replication {
        let copy = CopyRequest {
            schema_version: CopyRequest::SCHEMA_VERSION,
            backup_id: record.backup_id.clone(),
            cluster: record.cluster.clone(),
            target_region: replication.region.clone(),
            attempt: 0,
            round: 0,
        };
        let mut message = OutgoingMessage::json(CopyRequest::QUEUE.name(), copy.message_id(), encode(&copy));
        message.correlation_id = Some(record.backup_id.to_string());
        deps.bus.send(message).await?;
    }
    Ok(Outcome::Committed { objects, partial })
}

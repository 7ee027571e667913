//! Sharded backups, the parts: the `backup` message of a policy with `shards: N` sends one
//! message per part ([`fan_out`]); each part exports its namespaces into its own archive,
//! requests its volume snapshots, writes what it found last (its presence marks the part done)
//! and asks for the join.
//!
//! Every step is safe to repeat: part messages have deterministic ids, a part that finds its
//! record already written only asks for the join again, and the join message of each part has
//! its own id (the last part to end is the one whose join finds every part done).

use serde::{Deserialize, Serialize};

use super::export::{self, ExportResult};
use super::{BackupError, BackupSettings, Deps, Outcome, fail, take_snapshots, target};
use crate::catalog;
use crate::domain::manifest::SnapshotRecord;
use crate::domain::messages::{BackupRequest, BackupStep, Message, encode};
use crate::domain::policy::Config;
use crate::domain::records::{BackupRecord, BackupState};
use crate::domain::shards::Shard;
use crate::layout;
use crate::ports::bus::OutgoingMessage;
use crate::ports::object_store::{ObjectStoreError, PutOptions, collect_bytes, stream_from_bytes};
use crate::ports::state_store::ETag;

/// What one part wrote and found, kept next to its archive until the join.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PartDoc {
    /// The part.
    pub shard: Shard,
    /// Its export (objects with digests, counts, PVCs, warnings).
    pub export: ExportResult,
    /// The snapshots it requested.
    pub snapshots: Vec<SnapshotRecord>,
    /// What did not go as planned (beyond the export's warnings).
    pub warnings: Vec<String>,
}

/// Sends the message of each part of `request`'s backup; returns how many.
///
/// # Errors
/// [`BackupError::Bus`].
pub(crate) async fn fan_out(deps: &Deps<'_>, request: &BackupRequest, count: u32) -> Result<u32, BackupError> {
    for shard in Shard::all(count) {
        send_step(deps, request, BackupStep::Shard(shard)).await?;
    }
    tracing::info!(backup.id = %request.backup_id, parts = count, "backup split into parts");
    Ok(count)
}

/// Sends `request` again as `step`, with that step's deterministic id.
async fn send_step(deps: &Deps<'_>, request: &BackupRequest, step: BackupStep) -> Result<(), BackupError> {
    let message = BackupRequest { step, ..request.clone() };
    let mut outgoing = OutgoingMessage::json(BackupRequest::QUEUE.name(), message.message_id(), encode(&message));
    outgoing.correlation_id = Some(request.backup_id.to_string());
    deps.bus.send(outgoing).await?;
    Ok(())
}

/// The catalog record of a sharded backup while its parts may still work on it (`Running`),
/// or the state it has moved on to (nothing left for parts and joins to do).
///
/// # Errors
/// [`BackupError::UnknownBackup`]; [`BackupError::NotYet`] while it is only `Requested`.
pub(crate) async fn running_record(
    deps: &Deps<'_>,
    request: &BackupRequest,
) -> Result<Result<(BackupRecord, ETag), BackupState>, BackupError> {
    let Some((record, etag)) = catalog::get(deps.state, &request.cluster, &request.backup_id).await? else {
        return Err(BackupError::UnknownBackup(request.backup_id.to_string()));
    };
    match record.state {
        BackupState::Running => Ok(Ok((record, etag))),
        BackupState::Requested => Err(BackupError::NotYet(request.backup_id.to_string())),
        done => Ok(Err(done)),
    }
}

/// Handles the message of one part.
///
/// # Errors
/// [`BackupError`]; see [`BackupError::is_transient`].
pub(crate) async fn run_part(
    deps: &Deps<'_>,
    settings: &BackupSettings,
    config: &Config,
    request: &BackupRequest,
    shard: Shard,
) -> Result<Outcome, BackupError> {
    let (policy, cluster_def) = target(config, request.policy.as_str(), request.cluster.as_str())?;
    let (mut record, etag) = match running_record(deps, request).await? {
        Ok(found) => found,
        Err(done) => return Ok(Outcome::AlreadyDone(done)),
    };
    let doc_key = layout::part_export_key(&request.cluster, &request.backup_id, shard.index);
    match deps.objects.head(&doc_key).await {
        Ok(_) => {
            // Done by an earlier delivery, which may have stopped before asking for the join.
            send_step(deps, request, BackupStep::Join(shard)).await?;
            return Ok(Outcome::PartDone { index: shard.index });
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(backup.id = %request.backup_id, shard = shard.index, of = shard.count, "backup part started");
    let archive_key = layout::part_archive_key(&request.cluster, &request.backup_id, shard.index);
    let mut options = settings.export.clone();
    // Parts are read back by the join, which holds no identity: they stay unencrypted (and are
    // deleted once joined); the joined archive is encrypted as the policy says.
    options.archive.recipients = Vec::new();
    options.shard = Some(shard);
    let export = match export::export(deps.cluster, deps.objects, &archive_key, &policy.spec.selection, &options).await
    {
        Ok(export) => export,
        Err(e) if !e.is_transient() => return fail(deps, &mut record, &etag, crate::errors::chain(&e)).await,
        Err(e) => return Err(e.into()),
    };
    let taken = take_snapshots(deps, settings, policy, &request.backup_id, &export, &cluster_def.spec.region).await?;
    if let Some(reason) = taken.failure {
        record.snapshots = taken.snapshots;
        record.warnings.extend(taken.warnings);
        return fail(deps, &mut record, &etag, format!("part {}: {reason}", shard.index)).await;
    }
    let doc = PartDoc { shard, export, snapshots: taken.snapshots, warnings: taken.warnings };
    let bytes = serde_json::to_vec(&doc).map_err(|e| BackupError::NotYet(format!("encoding part {doc_key}: {e}")))?;
    deps.objects.put(&doc_key, stream_from_bytes(bytes), PutOptions::default()).await?;
    send_step(deps, request, BackupStep::Join(shard)).await?;
    Ok(Outcome::PartDone { index: shard.index })
}

/// The record part `index` left, if it is done.
pub(crate) async fn load_part(
    deps: &Deps<'_>,
    request: &BackupRequest,
    index: u32,
) -> Result<Option<PartDoc>, BackupError> {
    let key = layout::part_export_key(&request.cluster, &request.backup_id, index);
    let body = match deps.objects.get(&key, None).await {
        Ok((_, body)) => body,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let bytes = collect_bytes(body).await.map_err(|e| {
        BackupError::Objects(ObjectStoreError::Unavailable {
            operation: "get",
            key: key.clone(),
            transient: true,
            source: Box::new(e),
        })
    })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| BackupError::NotYet(format!("part record {key} is unreadable: {e}")))
}

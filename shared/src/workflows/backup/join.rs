//! Sharded backups, the join: once every part is done, streams the parts' objects into the one
//! archive of the backup (encrypted as the policy says; each entry's bytes, hence its digest,
//! unchanged), merges what the parts found and the snapshots they requested, and hands over
//! to `snapshot_check` or commits, as an unsharded backup does. The parts are deleted after.
//!
//! A join that runs twice repeats the same work; the ETag-guarded catalog update decides which
//! one moves the backup on, and the other finds it moved on when redelivered.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::TryStreamExt;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::export::{ExportError, ExportResult};
use super::object_index::{self, IndexSinks, ObjectIndex};
use super::shards::{PartDoc, load_part, running_record};
use super::{BackupError, BackupSettings, Deps, Outcome, commit, hand_over, recipients, send_check, target};
use crate::archive::{ArchiveOptions, ArchiveReader, ArchiveWriter, ChannelWriter, ReadOptions, channel};
use crate::catalog;
use crate::domain::messages::BackupRequest;
use crate::domain::policy::Config;
use crate::domain::records::BackupState;
use crate::layout;
use crate::ports::object_store::{ObjectStoreError, PutOptions};

/// Handles a join message of a backup split in `count` parts.
///
/// # Errors
/// [`BackupError`]; see [`BackupError::is_transient`].
pub(crate) async fn run(
    deps: &Deps<'_>,
    settings: &BackupSettings,
    config: &Config,
    request: &BackupRequest,
    count: u32,
) -> Result<Outcome, BackupError> {
    let (policy, cluster_def) = target(config, request.policy.as_str(), request.cluster.as_str())?;
    let (mut record, etag) = match running_record(deps, request).await? {
        Ok(found) => found,
        Err(done) => {
            if done == BackupState::WaitingForSnapshots
                && let Some((record, _)) = catalog::get(deps.state, &request.cluster, &request.backup_id).await?
            {
                // A join that stopped after the hand-over: make sure the first check is on its way.
                send_check(deps, &record, 1, settings).await?;
            }
            delete_parts(deps, request, count).await;
            return Ok(Outcome::AlreadyDone(done));
        }
    };
    let mut parts = Vec::with_capacity(count as usize);
    for index in 0..count {
        if let Some(part) = load_part(deps, request, index).await? {
            parts.push(part);
        }
    }
    let done = u32::try_from(parts.len()).unwrap_or(0);
    if done < count {
        return Ok(Outcome::WaitingForParts { done, of: count });
    }
    tracing::info!(backup.id = %request.backup_id, parts = count, "joining the parts");
    let mut options = settings.export.archive.clone();
    options.recipients = recipients(policy);
    let joined = match join_archives(deps, request, count, &options).await {
        Ok(joined) => joined,
        Err(e) if !e.is_transient() => return super::fail(deps, &mut record, &etag, crate::errors::chain(&e)).await,
        Err(e) => return Err(e.into()),
    };
    let facts = commit::ClusterFacts::gather(deps.cluster, cluster_def, settings.export.retry).await?;
    let (export, snapshots, warnings) = merge(parts, joined);
    commit::save_export(deps, &record, &facts, &options.recipients, &export).await?;
    record.warnings = export.warnings.clone();
    record.warnings.extend(warnings);
    record.snapshots = snapshots;
    let outcome = hand_over(deps, settings, policy, &mut record, etag).await?;
    delete_parts(deps, request, count).await;
    Ok(outcome)
}

/// What writing the joined archive produced.
struct Joined {
    index: ObjectIndex,
    counts: BTreeMap<String, u64>,
    entries: u64,
    uncompressed_bytes: u64,
    stored_bytes: u64,
}

/// Folds the parts' records and the joined archive into one export, the snapshots and the
/// parts' own warnings.
fn merge(
    parts: Vec<PartDoc>,
    joined: Joined,
) -> (ExportResult, Vec<crate::domain::manifest::SnapshotRecord>, Vec<String>) {
    let mut skipped = BTreeMap::new();
    let mut export_warnings = BTreeSet::new();
    let mut warnings = BTreeSet::new();
    let mut pvcs = Vec::new();
    let mut snapshots = Vec::new();
    for part in parts {
        skipped.extend(part.export.skipped);
        export_warnings.extend(part.export.warnings);
        warnings.extend(part.warnings);
        pvcs.extend(part.export.pvcs);
        snapshots.extend(part.snapshots);
    }
    pvcs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    snapshots.sort_by(|a, b| (&a.namespace, &a.pvc).cmp(&(&b.namespace, &b.pvc)));
    let export = ExportResult {
        index: Some(joined.index),
        objects: Vec::new(),
        counts: joined.counts,
        skipped,
        warnings: export_warnings.into_iter().collect(),
        pvcs,
        // Each part ran the hooks of its own pods around its own snapshots.
        hooks: Vec::new(),
        entries: joined.entries,
        uncompressed_bytes: joined.uncompressed_bytes,
        stored_bytes: joined.stored_bytes,
    };
    (export, snapshots, warnings.into_iter().collect())
}

/// One part's archive for the writer thread, or the reason to abandon the joined archive.
enum Feed {
    Part(Box<dyn Read + Send>),
    Abort(String),
}

/// Streams every part's archive, in order, into the backup's archive.
async fn join_archives(
    deps: &Deps<'_>,
    request: &BackupRequest,
    count: u32,
    options: &ArchiveOptions,
) -> Result<Joined, ExportError> {
    // A bad recipient is found before anything is uploaded.
    ArchiveWriter::new(std::io::sink(), options).map_err(|e| ExportError::Archive(e.to_string()))?;
    let (tx, rx) = mpsc::channel(1);
    let (sink, stream) = channel(8, 256 * 1024);
    let key = layout::archive_key(&request.cluster, &request.backup_id);
    let (index_sinks, index_upload) = object_index::start_upload(deps.objects, &key, &options.recipients);
    let writer = tokio::task::spawn_blocking({
        let options = options.clone();
        let key = key.clone();
        move || write_joined(sink, index_sinks, key, rx, &options)
    });
    let stored = Arc::new(AtomicU64::new(0));
    let counted = {
        let stored = Arc::clone(&stored);
        Box::pin(stream.inspect_ok(move |chunk| {
            stored.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }))
    };
    let upload =
        deps.objects.put(&key, counted, PutOptions { if_absent: false, content_type: Some("application/zstd".into()) });
    let feed = async move {
        for index in 0..count {
            let part_key = layout::part_archive_key(&request.cluster, &request.backup_id, index);
            let item = match deps.objects.get(&part_key, None).await {
                Ok((_, body)) => Feed::Part(Box::new(SyncIoBridge::new(StreamReader::new(body)))),
                Err(e) => {
                    let _ = tx.send(Feed::Abort(format!("reading {part_key}: {e}"))).await;
                    return Err(e);
                }
            };
            if tx.send(item).await.is_err() {
                break; // the writer stopped: its error says why
            }
        }
        Ok::<(), ObjectStoreError>(())
    };
    let (fed, uploaded, index_uploaded) = tokio::join!(feed, upload, index_upload);
    let written = writer.await.map_err(|e| ExportError::Archive(e.to_string()))?;
    fed.map_err(ExportError::Upload)?;
    super::export::first_upload_failure(uploaded, index_uploaded)?;
    let mut joined = written?;
    joined.stored_bytes = stored.load(Ordering::Relaxed);
    Ok(joined)
}

/// The writer thread: each part's entries in turn into one archive, an object met twice (a
/// cluster-scoped object several parts needed) kept once; an abort or an error fails the
/// stream.
fn write_joined(
    mut sink: ChannelWriter,
    index_sinks: IndexSinks,
    archive_key: String,
    mut rx: mpsc::Receiver<Feed>,
    options: &ArchiveOptions,
) -> Result<Joined, ExportError> {
    let archive_error = |e: crate::archive::ArchiveError| ExportError::Archive(e.to_string());
    let index_error = |e: std::io::Error| ExportError::Archive(format!("writing the object index: {e}"));
    let mut index = match index_sinks.into_writer() {
        Ok(index) => index,
        Err(e) => {
            sink.fail(std::io::Error::other(e.to_string()));
            return Err(archive_error(e));
        }
    };
    let result = (|| {
        let mut writer = ArchiveWriter::new(&mut sink, options).map_err(archive_error)?;
        let mut seen = BTreeSet::new();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        while let Some(item) = rx.blocking_recv() {
            let source = match item {
                Feed::Part(source) => source,
                Feed::Abort(reason) => return Err(ExportError::Archive(format!("aborted: {reason}"))),
            };
            let mut reader = ArchiveReader::new(source, &ReadOptions::default()).map_err(archive_error)?;
            for entry in reader.entries().map_err(archive_error)? {
                let entry = entry.map_err(archive_error)?;
                let Ok(path) = entry.object_path() else { continue }; // metadata/version: written anew
                if !seen.insert(path.as_str().to_owned()) {
                    continue;
                }
                let record = writer.append_object(&path, &entry.bytes).map_err(archive_error)?;
                index.append(&record).map_err(index_error)?;
                let group_resource = if path.group().is_empty() {
                    path.resource().to_owned()
                } else {
                    format!("{}.{}", path.resource(), path.group())
                };
                *counts.entry(group_resource).or_default() += 1;
            }
            reader.finish().map_err(archive_error)?;
        }
        let summary = writer.finish().map_err(archive_error)?;
        Ok((counts, summary))
    })();
    match result {
        Ok((counts, summary)) => {
            sink.finish().map_err(|e| ExportError::Archive(e.to_string()))?;
            let written = object_index::finish(index).map_err(index_error)?;
            Ok(Joined {
                index: ObjectIndex::of(&archive_key, written.count, written.sealed),
                counts,
                entries: summary.entries,
                uncompressed_bytes: summary.uncompressed_bytes,
                stored_bytes: 0,
            })
        }
        Err(e) => {
            sink.fail(std::io::Error::other(e.to_string()));
            object_index::fail(index, &e.to_string());
            Err(e)
        }
    }
}

/// Deletes the parts (best effort: what is left is swept with the backup by `prune`).
async fn delete_parts(deps: &Deps<'_>, request: &BackupRequest, count: u32) {
    for index in 0..count {
        let archive = layout::part_archive_key(&request.cluster, &request.backup_id, index);
        for key in [
            layout::object_index_key_for(&archive),
            archive,
            layout::part_export_key(&request.cluster, &request.backup_id, index),
        ] {
            if let Err(e) = deps.objects.delete(&key).await {
                tracing::warn!(blob.key = %key, error = %e, "a joined part could not be deleted");
            }
        }
    }
}

//! `prune`: applies each target's retention to its backups in the primary region. For each
//! cluster it reads the catalog, the legal holds and the leases of running restores, plans
//! every target with [`retention::plan`], then, for each backup to remove: marks its catalog
//! entry `Deleting` (ETag-guarded, so a backup that changed meanwhile is decided again next
//! time), deletes its volume snapshots from the cluster (see [`super::prune_snapshots`]), its
//! blobs, and the catalog entry last. A crash anywhere leaves a `Deleting` entry that the next
//! run finishes; a second run removes nothing more. A cluster that cannot be reached leaves
//! its backups `Deleting` (blobs and entry kept, so nothing is forgotten) until it can.
//!
//! Table Storage requests per cluster: one query page per 1,000 catalog entries, one query for
//! holds, one for readers; per removed backup: one update (to `Deleting`, guarded by the ETag
//! the listing returned) and one delete.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::catalog::{self, CatalogError};
use crate::domain::ids::BackupId;
use crate::domain::messages::BackupReason;
use crate::domain::names::ClusterName;
use crate::domain::policy::{Config, Target};
use crate::domain::records::{BackupRecord, BackupState};
use crate::domain::retention::{self, Candidate, Decision, Options};
use crate::layout::{self, TABLE_BACKUP_READERS, TABLE_HOLDS};
use crate::ports::cluster::{Cluster, ClusterConnector};
use crate::ports::object_store::{ObjectStore, ObjectStoreError};
use crate::ports::state_store::{ETag, Query, StateStore, StateStoreError, query_all};
use crate::workflows::prune_snapshots::{ClusterSnapshots, SnapshotsDeleted};
use crate::workflows::retry::RetryPolicy;

/// Errors of a prune run (every one transient or a store fault: the next run retries).
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// The catalog failed.
    #[error("pruning the catalog failed")]
    Catalog(#[from] CatalogError),
    /// Reading holds or readers failed.
    #[error("reading table {table} for cluster {cluster} failed")]
    Table {
        /// The table.
        table: &'static str,
        /// The cluster (partition).
        cluster: String,
        /// The cause.
        #[source]
        source: StateStoreError,
    },
    /// Listing or deleting a backup's blobs failed.
    #[error("deleting blobs under {prefix} failed")]
    Blobs {
        /// The backup's folder.
        prefix: String,
        /// The cause.
        #[source]
        source: ObjectStoreError,
    },
    /// Deleting the catalog entry failed.
    #[error("deleting catalog entry {cluster}/{backup_id} failed")]
    Entry {
        /// Cluster.
        cluster: String,
        /// Backup.
        backup_id: String,
        /// The cause.
        #[source]
        source: StateStoreError,
    },
}

impl PruneError {
    /// Whether a retry may succeed (the store was unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            PruneError::Catalog(e) => e.is_transient(),
            PruneError::Table { source, .. } | PruneError::Entry { source, .. } => source.is_transient(),
            PruneError::Blobs { source, .. } => source.is_transient(),
        }
    }
}

/// One backup the run looked at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Judged {
    /// Its cluster.
    pub cluster: ClusterName,
    /// Its id.
    pub backup_id: BackupId,
    /// When it was taken.
    pub time: DateTime<Utc>,
    /// What retention decided (a removal left by an earlier, interrupted run is `NoRule`).
    pub decision: Decision,
    /// Blobs deleted (0 in a dry run).
    pub blobs_deleted: usize,
    /// VolumeSnapshots and contents (with their disk snapshots) deleted from the cluster.
    pub volume_snapshots_deleted: usize,
    /// Why a removal was left for the next run (the cluster could not be reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_because: Option<String>,
    /// Whether the catalog entry is gone (false in a dry run, or when it changed meanwhile).
    pub removed: bool,
}

/// What a run did, backup by backup.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    /// Every backup of every declared target, with its decision.
    pub backups: Vec<Judged>,
    /// Whether nothing was changed.
    pub dry_run: bool,
}

impl PruneReport {
    /// `kept N, removed M` (or `would remove` in a dry run).
    pub fn summary(&self) -> String {
        let kept = self.backups.iter().filter(|b| b.decision.is_kept()).count();
        let going = self.backups.len() - kept;
        let verb = if self.dry_run { "would remove" } else { "removed" };
        format!("prune: kept {kept}, {verb} {going}")
    }
}

/// What a prune reads and changes.
#[derive(Clone, Copy)]
pub struct PruneDeps<'a> {
    /// The catalog, holds and leases.
    pub state: &'a dyn StateStore,
    /// The backups' blobs.
    pub objects: &'a dyn ObjectStore,
    /// The clusters, for their volume snapshots.
    pub clusters: &'a dyn ClusterConnector,
}

/// Prunes every declared target at `now`; a `dry_run` only reports.
///
/// # Errors
/// [`PruneError`]: the first store failure (what was done before it stays done).
pub async fn run(
    config: &Config,
    deps: PruneDeps<'_>,
    options: &Options,
    dry_run: bool,
) -> Result<PruneReport, PruneError> {
    let state = deps.state;
    let mut report = PruneReport { backups: Vec::new(), dry_run };
    for (cluster, cluster_def) in &config.clusters {
        let targets: Vec<Target<'_>> = config.targets().into_iter().filter(|t| &t.cluster.name == cluster).collect();
        if targets.is_empty() {
            continue;
        }
        let records = catalog::list_versions(state, cluster).await?;
        // Connected, and its snapshots read, once: when the first backup of the cluster goes.
        let mut connected: Option<Result<Connected, String>> = None;
        // A hold's row key is the backup id; a reader's is `{backup id}.{restore id}` (restore ids
        // have no '.', backup ids may).
        let held = keys(state, TABLE_HOLDS, cluster, |_| true, |row| row).await?;
        let read = keys(
            state,
            TABLE_BACKUP_READERS,
            cluster,
            |e| {
                e.str("until")
                    .and_then(|u| DateTime::parse_from_rfc3339(u).ok())
                    .is_some_and(|until| until > options.now)
            },
            |row| row.rsplit_once('.').map_or(row, |(backup, _)| backup),
        )
        .await?;
        for target in targets {
            let mine: Vec<&(BackupRecord, ETag)> =
                records.iter().filter(|(r, _)| r.policy == target.policy.name).collect();
            let (unfinished, live): (Vec<_>, Vec<_>) =
                mine.into_iter().partition(|(r, _)| r.state == BackupState::Deleting);
            let mut candidates: Vec<Candidate> = live.iter().map(|(r, _)| candidate(r, &held, &read)).collect();
            let mut decisions = retention::plan(&target.policy.spec.retention, &candidates, options);
            // The store's immutability is asked of what would go (one request each), and the
            // plan made again with what it said.
            let mut immutable = false;
            for (i, decision) in decisions.iter().enumerate() {
                if let (false, Some(((record, _), candidate))) =
                    (decision.is_kept(), live.get(i).zip(candidates.get_mut(i)))
                {
                    candidate.immutable_until = immutable_until(deps.objects, record).await?;
                    immutable |= candidate.is_immutable_at(options.now);
                }
            }
            if immutable {
                decisions = retention::plan(&target.policy.spec.retention, &candidates, options);
            }
            let left_over = unfinished.into_iter().map(|r| (r, Decision::Remove(retention::RemoveReason::NoRule)));
            for ((record, etag), decision) in live.into_iter().zip(decisions).chain(left_over) {
                let mut judged = Judged {
                    cluster: cluster.clone(),
                    backup_id: record.backup_id.clone(),
                    time: time_of(record),
                    decision,
                    blobs_deleted: 0,
                    volume_snapshots_deleted: 0,
                    left_because: None,
                    removed: false,
                };
                if !dry_run && !judged.decision.is_kept() {
                    if connected.is_none() {
                        connected = Some(connect(deps.clusters, cluster_def).await);
                    }
                    let client = match &connected {
                        Some(Ok(c)) => Ok(c),
                        Some(Err(why)) => Err(why.clone()),
                        None => Err("not connected".to_owned()),
                    };
                    let removal = remove(deps, client, record, etag, options.now).await?;
                    judged.blobs_deleted = removal.blobs;
                    judged.volume_snapshots_deleted = removal.snapshots.volume_snapshots + removal.snapshots.contents;
                    judged.left_because = removal.left_because;
                    judged.removed = removal.removed;
                }
                report.backups.push(judged);
            }
        }
    }
    Ok(report)
}

/// The time retention judges a backup by: its slot for scheduled backups, else its creation.
fn time_of(record: &BackupRecord) -> DateTime<Utc> {
    match &record.reason {
        BackupReason::Scheduled { slot } => *slot,
        _ => record.created_at,
    }
}

/// Until when the object store keeps the backup immutable (its manifest's, else its archive's
/// immutability policy or legal hold), if it does.
async fn immutable_until(
    objects: &dyn ObjectStore,
    record: &BackupRecord,
) -> Result<Option<DateTime<Utc>>, PruneError> {
    for key in [
        layout::manifest_key(&record.cluster, &record.backup_id),
        layout::archive_key(&record.cluster, &record.backup_id),
    ] {
        match objects.head(&key).await {
            Ok(meta) => return Ok(meta.immutable_until),
            Err(e) if e.is_not_found() => continue,
            Err(source) => return Err(PruneError::Blobs { prefix: key, source }),
        }
    }
    Ok(None)
}

fn candidate(record: &BackupRecord, held: &BTreeSet<String>, read: &BTreeSet<String>) -> Candidate {
    Candidate {
        id: record.backup_id.to_string(),
        time: time_of(record),
        committed: record.state.is_restorable(),
        pre_upgrade: matches!(record.reason, BackupReason::PreUpgrade { .. }),
        pinned: held.contains(record.backup_id.as_str()),
        // Asked of the object store for the backups the plan would remove (see `run`).
        immutable_until: None,
        in_use: read.contains(record.backup_id.as_str()),
    }
}

/// The backup ids (`backup_of` each row key) of the cluster's partition of `table` whose entity
/// passes `keep`.
async fn keys(
    state: &dyn StateStore,
    table: &'static str,
    cluster: &ClusterName,
    keep: impl Fn(&crate::ports::state_store::Entity) -> bool,
    backup_of: impl Fn(&str) -> &str,
) -> Result<BTreeSet<String>, PruneError> {
    let entities = query_all(state, table, &Query::partition(cluster.as_str()))
        .await
        .map_err(|source| PruneError::Table { table, cluster: cluster.to_string(), source })?;
    Ok(entities.iter().filter(|e| keep(e)).map(|e| backup_of(&e.row_key).to_owned()).collect())
}

/// A cluster's client and what it holds of Lifeboat's snapshots.
struct Connected {
    client: std::sync::Arc<dyn Cluster>,
    snapshots: ClusterSnapshots,
}

/// Connects to the cluster and reads its snapshots; why not, when that fails.
async fn connect(clusters: &dyn ClusterConnector, def: &crate::domain::policy::Cluster) -> Result<Connected, String> {
    let client = clusters.connect(def).await.map_err(|e| format!("connecting to cluster {}: {e}", def.name))?;
    let snapshots = ClusterSnapshots::read(client.as_ref(), RetryPolicy::default())
        .await
        .map_err(|e| format!("reading the snapshots of cluster {}: {e}", def.name))?;
    Ok(Connected { client, snapshots })
}

/// What removing one backup did.
#[derive(Debug, Default)]
struct Removal {
    blobs: usize,
    snapshots: SnapshotsDeleted,
    removed: bool,
    left_because: Option<String>,
}

/// Marks the entry `Deleting`, deletes the volume snapshots, the blobs, then the entry. An
/// entry that changed since it was listed is left alone (decided again next run); a cluster
/// that cannot be reached (`client` is why not) leaves the entry `Deleting` with its blobs.
async fn remove(
    deps: PruneDeps<'_>,
    client: Result<&Connected, String>,
    listed: &BackupRecord,
    etag: &ETag,
    now: DateTime<Utc>,
) -> Result<Removal, PruneError> {
    let (cluster, id) = (&listed.cluster, &listed.backup_id);
    let mut record = listed.clone();
    let etag = if record.state == BackupState::Deleting {
        etag.clone()
    } else {
        if !record.state.is_restorable() && record.state != BackupState::Failed {
            record.failure = Some("uncommitted after the grace period; swept by prune".into());
            let _ = record.move_to(BackupState::Failed, now);
        }
        if record.move_to(BackupState::Deleting, now).is_err() {
            return Ok(Removal::default());
        }
        match catalog::save(deps.state, &record, etag).await {
            Ok(etag) => etag,
            Err(e) if e.is_changed() => return Ok(Removal::default()),
            Err(CatalogError::Store { source, .. }) if source.is_not_found() => {
                return Ok(Removal { removed: true, ..Removal::default() }); // already gone
            }
            Err(e) => return Err(e.into()),
        }
    };
    let snapshots = match client {
        Ok(c) => c
            .snapshots
            .delete_backup(c.client.as_ref(), id.as_str(), &record.snapshots, RetryPolicy::default())
            .await
            .map_err(|e| e.to_string()),
        Err(why) => Err(why),
    };
    let snapshots = match snapshots {
        Ok(deleted) => deleted,
        Err(e) => {
            let why = format!("its volume snapshots could not be deleted: {e}");
            tracing::warn!(backup.id = %id, cluster = %cluster, "left for the next prune: {why}");
            return Ok(Removal { left_because: Some(why), ..Removal::default() });
        }
    };
    let blobs = match delete_blobs(deps.objects, &layout::backup_prefix(cluster, id)).await {
        Ok(blobs) => blobs,
        // Refused (e.g. a container-level immutability policy not reported per blob): this
        // backup waits, the others go on.
        Err(PruneError::Blobs { prefix, source }) if !source.is_transient() => {
            let why = format!("its blobs under {prefix} could not be deleted: {source}");
            tracing::warn!(backup.id = %id, cluster = %cluster, "left for the next prune: {why}");
            return Ok(Removal { snapshots, left_because: Some(why), ..Removal::default() });
        }
        Err(e) => return Err(e),
    };
    match deps.state.delete(layout::TABLE_BACKUPS, cluster.as_str(), id.as_str(), Some(&etag)).await {
        Ok(()) => Ok(Removal { blobs, snapshots, removed: true, left_because: None }),
        Err(e) if e.is_not_found() => Ok(Removal { blobs, snapshots, removed: true, left_because: None }),
        Err(source) => Err(PruneError::Entry { cluster: cluster.to_string(), backup_id: id.to_string(), source }),
    }
}

async fn delete_blobs(objects: &dyn ObjectStore, prefix: &str) -> Result<usize, PruneError> {
    let err = |source| PruneError::Blobs { prefix: prefix.to_owned(), source };
    let mut deleted = 0;
    loop {
        // Always the first page: what was deleted is no longer listed.
        let page = objects.list(prefix, None, 1000).await.map_err(err)?;
        if page.objects.is_empty() {
            return Ok(deleted);
        }
        let before = deleted;
        for object in &page.objects {
            if objects.delete(&object.key).await.map_err(err)? {
                deleted += 1;
            }
        }
        if deleted == before {
            return Ok(deleted); // listed but already gone: a store with lagging listings
        }
    }
}

//! `prune`: applies each target's retention to its backups, in the primary region and in the
//! second region. For each cluster it reads the catalog, the legal holds and the leases of
//! running restores, plans every target with [`retention::plan`], then, for each backup to
//! remove: marks its catalog entry `Deleting` (ETag-guarded, so a backup that changed
//! meanwhile is decided again next time), deletes its volume snapshots from the cluster (see
//! [`snapshots`]), its replica (see [`replicas`]: a replica never outlives its primary), its
//! blobs, and the catalog entry last. The replicas of the backups it keeps are then planned
//! with the replica retention and removed alone where it says so. A crash anywhere leaves a
//! `Deleting` entry (or a replica `removingSince`) that the next run finishes; a second run
//! removes nothing more. A cluster or second region that cannot be reached leaves its backups
//! `Deleting` (blobs and entry kept, so nothing is forgotten) until it can.
//!
//! Table Storage requests per cluster: one query page per 1,000 catalog entries, one query for
//! holds, one for readers; per hundred removed backups: one transaction marking them
//! `Deleting` (each guarded by the ETag the listing returned) and one deleting their entries;
//! per hundred replicas removed alone: one transaction marking them and one recording them
//! removed.

pub mod replicas;
pub mod snapshots;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use self::replicas::{ReplicaJudged, ReplicaRegion};
use self::snapshots::{ClusterSnapshots, SnapshotsDeleted};
use crate::catalog::{self, CatalogError};
use crate::domain::ids::BackupId;
use crate::domain::messages::BackupReason;
use crate::domain::names::ClusterName;
use crate::domain::policy::{Config, Target};
use crate::domain::records::{BackupRecord, BackupState};
use crate::domain::replica_retry::ReplicaRetryPolicy;
use crate::domain::retention::{self, Candidate, Decision, Options, RemoveReason};
use crate::layout::{self, TABLE_BACKUP_READERS, TABLE_HOLDS};
use crate::ports::cluster::{Cluster, ClusterConnector};
use crate::ports::object_store::{ObjectStore, ObjectStoreError};
use crate::ports::state_store::{ETag, Query, StateStore, StateStoreError, query_all};
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
}

impl PruneError {
    /// Whether a retry may succeed (the store was unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            PruneError::Catalog(e) => e.is_transient(),
            PruneError::Table { source, .. } => source.is_transient(),
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
    /// Its replica in the second region, when it has one (a copy still running is not judged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaJudged>,
}

impl Judged {
    fn new(record: &BackupRecord, decision: Decision) -> Self {
        Self {
            cluster: record.cluster.clone(),
            backup_id: record.backup_id.clone(),
            time: time_of(record),
            decision,
            blobs_deleted: 0,
            volume_snapshots_deleted: 0,
            left_because: None,
            removed: false,
            replica: None,
        }
    }
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
    /// `kept N, removed M` (or `would remove` in a dry run), and the same of replicas.
    pub fn summary(&self) -> String {
        let kept = self.backups.iter().filter(|b| b.decision.is_kept()).count();
        let going = self.backups.len() - kept;
        let verb = if self.dry_run { "would remove" } else { "removed" };
        let mut summary = format!("prune: kept {kept}, {verb} {going}");
        let replicas: Vec<&ReplicaJudged> = self.backups.iter().filter_map(|b| b.replica.as_ref()).collect();
        if !replicas.is_empty() {
            let kept = replicas.iter().filter(|r| r.decision.is_kept()).count();
            summary.push_str(&format!("; replicas: kept {kept}, {verb} {}", replicas.len() - kept));
        }
        summary
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
    /// The second regions' stores, for replicas (empty where nothing is replicated).
    pub replicas: &'a [ReplicaRegion<'a>],
    /// How `copy` retries a failed replica: one is swept only once no retry remains.
    pub replica_retry: ReplicaRetryPolicy,
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
        let guards = Guards::read(state, cluster, options.now).await?;
        let mut pass = ClusterPass { deps, options, dry_run, def: cluster_def, guards, connected: None };
        for target in targets {
            let mine: Vec<&(BackupRecord, ETag)> =
                records.iter().filter(|(r, _)| r.policy == target.policy.name).collect();
            let kept = pass.primary(&target, mine, &mut report).await?;
            pass.replicas(&target, kept, &mut report).await?;
        }
    }
    Ok(report)
}

/// What protects backups from removal in one cluster, whatever retention says: legal holds and
/// the leases of running restores.
struct Guards {
    held: BTreeSet<String>,
    read: BTreeSet<String>,
}

impl Guards {
    async fn read(state: &dyn StateStore, cluster: &ClusterName, now: DateTime<Utc>) -> Result<Self, PruneError> {
        // A hold's row key is the backup id; a reader's is `{backup id}.{restore id}` (restore ids
        // have no '.', backup ids may).
        let held = keys(state, TABLE_HOLDS, cluster, |_| true, |row| row).await?;
        let read = keys(
            state,
            TABLE_BACKUP_READERS,
            cluster,
            |e| e.str("until").and_then(|u| DateTime::parse_from_rfc3339(u).ok()).is_some_and(|until| until > now),
            |row| row.rsplit_once('.').map_or(row, |(backup, _)| backup),
        )
        .await?;
        Ok(Self { held, read })
    }
}

/// One cluster's pruning: its guards, and its client once a removal needs it.
struct ClusterPass<'a, 'd> {
    deps: PruneDeps<'d>,
    options: &'a Options,
    dry_run: bool,
    def: &'a crate::domain::policy::Cluster,
    guards: Guards,
    /// Connected, and its snapshots read, once: when the first backup of the cluster goes.
    connected: Option<Result<Connected, String>>,
}

impl<'d> ClusterPass<'_, 'd> {
    /// Plans and carries out the primary retention of `target` over its records `mine`; the
    /// backups kept (with their ETag and index in the report).
    async fn primary<'r>(
        &mut self,
        target: &Target<'_>,
        mine: Vec<&'r (BackupRecord, ETag)>,
        report: &mut PruneReport,
    ) -> Result<Vec<(&'r BackupRecord, &'r ETag, usize)>, PruneError> {
        let (unfinished, live): (Vec<_>, Vec<_>) =
            mine.into_iter().partition(|(r, _)| r.state == BackupState::Deleting);
        let candidates: Vec<Candidate> = live.iter().map(|(r, _)| self.candidate(r, r.state.is_restorable())).collect();
        let stores = vec![Some(self.deps.objects); live.len()];
        let records: Vec<&BackupRecord> = live.iter().map(|(r, _)| r).collect();
        let decisions =
            decide(&target.policy.spec.retention, &records, candidates, &stores, true, self.options).await?;
        let left_over = unfinished.into_iter().map(|r| (r, Decision::Remove(RemoveReason::NoRule)));
        let mut kept = Vec::new();
        let mut removals = Vec::new();
        for (entry, decision) in live.into_iter().zip(decisions).chain(left_over) {
            let (record, etag) = (&entry.0, &entry.1);
            let mut judged = Judged::new(record, decision);
            if judged.decision.is_kept() {
                kept.push((record, etag, report.backups.len()));
            } else {
                judged.replica = record
                    .replica
                    .as_ref()
                    .filter(|r| r.is_present())
                    .map(|r| ReplicaJudged::new(r, Decision::Remove(RemoveReason::WithPrimary)));
                if !self.dry_run {
                    removals.push((report.backups.len(), record, etag));
                }
            }
            report.backups.push(judged);
        }
        if !removals.is_empty() {
            self.remove_all(&removals, report).await?;
        }
        Ok(kept)
    }

    /// Removes `removals` (each with its index in the report): marks them all `Deleting` (one
    /// transaction per hundred), clears each (volume snapshots, replica, blobs), then deletes
    /// the entries of those cleared (one transaction per hundred). An entry that changed since
    /// it was listed is left alone (decided again next run); a cluster or second region that
    /// cannot be reached leaves the entry `Deleting` with its blobs. A store failure midway
    /// leaves entries `Deleting` that the next run finishes.
    async fn remove_all(
        &mut self,
        removals: &[(usize, &BackupRecord, &ETag)],
        report: &mut PruneReport,
    ) -> Result<(), PruneError> {
        let (state, now) = (self.deps.state, self.options.now);
        let cluster = &self.def.name;
        let mut marked: Vec<Option<(BackupRecord, ETag)>> = vec![None; removals.len()];
        let mut marking = Vec::new();
        for (i, (_, listed, etag)) in removals.iter().enumerate() {
            if listed.state == BackupState::Deleting {
                marked[i] = Some(((*listed).clone(), (*etag).clone())); // an interrupted removal
            } else if let Some(record) = deleting(listed, now) {
                marking.push((i, (record, (*etag).clone())));
            }
        }
        let records: Vec<(BackupRecord, ETag)> = marking.iter().map(|(_, m)| m.clone()).collect();
        let saved = catalog::save_all(state, cluster, &records).await?;
        for ((i, (record, _)), etag) in marking.into_iter().zip(saved) {
            marked[i] = etag.map(|etag| (record, etag));
        }
        if self.connected.is_none() && marked.iter().any(Option::is_some) {
            self.connected = Some(connect(self.deps.clusters, self.def).await);
        }
        let client = match &self.connected {
            Some(Ok(c)) => Ok(c),
            Some(Err(why)) => Err(why.clone()),
            None => Err("not connected".to_owned()),
        };
        let mut cleared = Vec::new();
        for ((index, ..), marked) in removals.iter().zip(&marked) {
            let Some((record, etag)) = marked else { continue };
            let removal = clear(self.deps, client.clone(), record).await?;
            let Some(judged) = report.backups.get_mut(*index) else { continue };
            judged.blobs_deleted = removal.blobs;
            judged.volume_snapshots_deleted = removal.snapshots.volume_snapshots + removal.snapshots.contents;
            judged.replica = removal.replica.or(judged.replica.take());
            match removal.left_because {
                Some(why) => judged.left_because = Some(why),
                None => cleared.push((*index, (record.backup_id.clone(), etag.clone()))),
            }
        }
        let entries: Vec<(BackupId, ETag)> = cleared.iter().map(|(_, e)| e.clone()).collect();
        let gone = catalog::delete_all(state, cluster, &entries).await?;
        for ((index, _), gone) in cleared.iter().zip(gone) {
            if let Some(judged) = report.backups.get_mut(*index) {
                judged.removed = gone;
            }
        }
        Ok(())
    }

    /// Plans the replicas of the backups the primary `kept` with the replica retention of
    /// `target`, and removes those it does not keep (finishing removals found started).
    async fn replicas(
        &mut self,
        target: &Target<'_>,
        kept: Vec<(&BackupRecord, &ETag, usize)>,
        report: &mut PruneReport,
    ) -> Result<(), PruneError> {
        let mut unfinished = Vec::new();
        let mut live = Vec::new();
        for (record, etag, index) in kept {
            let Some(replica) = record.replica.as_ref().filter(|r| r.is_present()) else { continue };
            if replica.removing_since.is_some() {
                unfinished.push((record, etag, index, Decision::Remove(RemoveReason::NoRule)));
            } else if replica.replicated_at.is_some() || self.deps.replica_retry.gave_up(replica) {
                live.push((record, etag, index, replica));
            } // else: the copy is still running, or will be retried; `copy` finishes or fails it first
        }
        let candidates =
            live.iter().map(|(r, _, _, replica)| self.candidate(r, replica.replicated_at.is_some())).collect();
        let stores: Vec<Option<&dyn ObjectStore>> = live
            .iter()
            .map(|(_, _, _, replica)| replicas::region(self.deps.replicas, &replica.region).map(|r| r.objects))
            .collect();
        let records: Vec<&BackupRecord> = live.iter().map(|(r, ..)| *r).collect();
        let decisions =
            decide(target.policy.spec.replica_retention(), &records, candidates, &stores, false, self.options).await?;
        let live = live.into_iter().zip(decisions).map(|((r, e, i, _), d)| (r, e, i, d));
        let mut going = Vec::new();
        let mut going_at = Vec::new();
        for (record, etag, index, decision) in live.chain(unfinished) {
            let Some(replica) = record.replica.as_ref() else { continue };
            let judged = ReplicaJudged::new(replica, decision);
            if !judged.decision.is_kept() && !self.dry_run {
                going.push((record, etag, judged.clone()));
                going_at.push(index);
            }
            if let Some(entry) = report.backups.get_mut(index) {
                entry.replica = Some(judged);
            }
        }
        if !going.is_empty() {
            let (state, regions, now) = (self.deps.state, self.deps.replicas, self.options.now);
            let judged = replicas::remove_alone(state, regions, &self.def.name, going, now).await?;
            for (index, judged) in going_at.into_iter().zip(judged) {
                if let Some(entry) = report.backups.get_mut(index) {
                    entry.replica = Some(judged);
                }
            }
        }
        Ok(())
    }

    /// The retention candidate of `record`, `committed` as the caller counts it.
    fn candidate(&self, record: &BackupRecord, committed: bool) -> Candidate {
        Candidate {
            id: record.backup_id.to_string(),
            time: time_of(record),
            committed,
            pre_upgrade: matches!(record.reason, BackupReason::PreUpgrade { .. }),
            pinned: self.guards.held.contains(record.backup_id.as_str()),
            // Asked of the object store for the backups the plan would remove (see `decide`).
            immutable_until: None,
            in_use: self.guards.read.contains(record.backup_id.as_str()),
        }
    }
}

/// Plans `candidates` (of `records`) with `retention`; the store of each (`stores`, where one
/// is configured) is asked for the immutability of what would go (one request each), and the
/// plan made again with what it said. A store that fails to answer fails the run when
/// `strict`, else leaves the immutability unknown.
async fn decide(
    retention: &crate::domain::policy::Retention,
    records: &[&BackupRecord],
    mut candidates: Vec<Candidate>,
    stores: &[Option<&dyn ObjectStore>],
    strict: bool,
    options: &Options,
) -> Result<Vec<Decision>, PruneError> {
    let decisions = retention::plan(retention, &candidates, options);
    let mut immutable = false;
    for (i, decision) in decisions.iter().enumerate() {
        if decision.is_kept() {
            continue;
        }
        if let (Some(record), Some(candidate), Some(Some(store))) =
            (records.get(i), candidates.get_mut(i), stores.get(i))
        {
            candidate.immutable_until = match immutable_until(*store, record).await {
                Ok(until) => until,
                // The second region unreachable: its removal fails and is left with the reason.
                Err(e) if !strict => {
                    tracing::warn!(backup.id = %record.backup_id, "immutability unknown: {}", crate::errors::chain(&e));
                    None
                }
                Err(e) => return Err(e),
            };
            immutable |= candidate.is_immutable_at(options.now);
        }
    }
    Ok(if immutable { retention::plan(retention, &candidates, options) } else { decisions })
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

/// What clearing one backup did.
#[derive(Debug, Default)]
struct Removal {
    blobs: usize,
    snapshots: SnapshotsDeleted,
    /// Why it could not be cleared now (its entry stays `Deleting`).
    left_because: Option<String>,
    /// Its replica's removal, when it had one.
    replica: Option<ReplicaJudged>,
}

/// `listed` moved to `Deleting` (through `Failed` when it never committed), unless it cannot.
fn deleting(listed: &BackupRecord, now: DateTime<Utc>) -> Option<BackupRecord> {
    let mut record = listed.clone();
    if !record.state.is_restorable() && record.state != BackupState::Failed {
        record.failure = Some("uncommitted after the grace period; swept by prune".into());
        let _ = record.move_to(BackupState::Failed, now);
    }
    record.move_to(BackupState::Deleting, now).ok().map(|_| record)
}

/// Deletes what a backup marked `Deleting` holds: its volume snapshots in the cluster (`client`
/// is why not, when it cannot be reached), its replica, then its blobs.
async fn clear(
    deps: PruneDeps<'_>,
    client: Result<&Connected, String>,
    record: &BackupRecord,
) -> Result<Removal, PruneError> {
    let (cluster, id) = (&record.cluster, &record.backup_id);
    let left = |why: String| {
        tracing::warn!(backup.id = %id, cluster = %cluster, "left for the next prune: {why}");
        Some(why)
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
            let left_because = left(format!("its volume snapshots could not be deleted: {e}"));
            return Ok(Removal { left_because, ..Removal::default() });
        }
    };
    let mut replica = None;
    if let Some(copy) = record.replica.as_ref().filter(|r| r.is_present()) {
        let judged = ReplicaJudged::new(copy, Decision::Remove(RemoveReason::WithPrimary));
        match replicas::delete_contents(deps.replicas, record, copy).await {
            Ok(deleted) => {
                let mut judged = judged.deleted(deleted);
                judged.removed = true;
                replica = Some(judged);
            }
            Err((deleted, why)) => {
                let replica = Some(judged.deleted(deleted).left(why.clone()));
                return Ok(Removal { snapshots, left_because: left(why), replica, ..Removal::default() });
            }
        }
    }
    let blobs = match delete_blobs(deps.objects, &layout::backup_prefix(cluster, id)).await {
        Ok(blobs) => blobs,
        // Refused (e.g. a container-level immutability policy not reported per blob): this
        // backup waits, the others go on.
        Err(PruneError::Blobs { prefix, source }) if !source.is_transient() => {
            let left_because = left(format!("its blobs under {prefix} could not be deleted: {source}"));
            return Ok(Removal { snapshots, left_because, replica, ..Removal::default() });
        }
        Err(e) => return Err(e),
    };
    Ok(Removal { blobs, snapshots, left_because: None, replica })
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

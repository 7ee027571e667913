//! `restore`: brings a backup back into a cluster.
//!
//! 1. Claims the restore (insert-if-absent on its id, derived from the request id): a
//!    redelivered request continues the same restore.
//! 2. Prepares without touching the cluster: checks the request, finds the backup, checks the
//!    policy allows the target, reads the whole archive against the manifest, plans, and checks
//!    every target namespace. Any refusal here ends the restore as failed with the reason, and
//!    nothing has been written.
//! 3. Applies tier by tier (the plan's order), records progress, waits for CRDs to be
//!    established before their custom resources and, when asked, for workloads to be ready.
//! 4. Ends completed, partially failed (with the list) or failed, with the recovery time
//!    achieved; the per-object results go to the object store, events to `restore-events`.

mod apply;
mod expected;
mod ready;
pub mod source;

use std::time::Duration;

use serde::Serialize;

pub use apply::{Applied, ApplyOptions, ObjectOutcome, RESTORE_ID_LABEL, resource_of};
pub use ready::is_ready;

use crate::archive::ReadOptions;
use crate::catalog::CatalogError;
use crate::domain::manifest::Manifest;
use crate::domain::messages::{Message, RestoreCounts, RestoreEvent, RestorePhase, encode};
use crate::domain::policy::Config;
use crate::domain::records::{BackupRecord, ObjectFailure, RestoreRecord};
use crate::domain::restore::{self as planner, PlanOptions, RestorePlan, WaitFor};
use crate::domain::restore_access::authorize;
use crate::domain::restore_request::{BackupSelector, RestoreRequest};
use crate::layout;
use crate::ports::bus::{Bus, BusError, OutgoingMessage};
use crate::ports::clock::Clock;
use crate::ports::cluster::{Cluster, ClusterError};
use crate::ports::object_store::{ObjectStore, ObjectStoreError, PutOptions, stream_from_bytes};
use crate::ports::state_store::{ETag, StateStore};
use crate::restores::{self, RestoreRecordError};
use crate::workflows::regions::{self, ReplicaRegion};
use crate::workflows::retry::RetryPolicy;

/// The ports a restore uses, and the time.
pub struct Deps<'a> {
    /// Catalog and restore records.
    pub state: &'a dyn StateStore,
    /// The primary region's archives and manifests, and results.
    pub objects: &'a dyn ObjectStore,
    /// The second regions' stores, for a request that reads the copy (`fromRegion`).
    pub replicas: &'a [ReplicaRegion<'a>],
    /// `restore-events`.
    pub bus: &'a dyn Bus,
    /// The cluster restored into.
    pub cluster: &'a dyn Cluster,
    /// The time: the first delivery's arrival starts the recovery time, the end stops it.
    pub clock: &'a dyn Clock,
}

impl<'a> Deps<'a> {
    /// Where this restore's backups are read from.
    pub fn sources(&self) -> Sources<'a> {
        Sources { primary: self.objects, replicas: self.replicas }
    }
}

/// Where restores read backups: the primary region's store, and the second regions' stores
/// holding the copies.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The primary region's objects.
    pub primary: &'a dyn ObjectStore,
    /// The second regions'.
    pub replicas: &'a [ReplicaRegion<'a>],
}

impl<'a> Sources<'a> {
    /// The store of `request`'s `fromRegion`: a second region's when it names one, else the
    /// primary's (also when it names the source cluster's own region).
    fn store_for(&self, request: &RestoreRequest) -> &'a dyn ObjectStore {
        request
            .from_region
            .as_deref()
            .and_then(|r| regions::region(self.replicas, r))
            .map_or(self.primary, |r| r.objects)
    }
}

/// Tuning of restores.
#[derive(Debug, Clone)]
pub struct RestoreSettings {
    /// Objects in flight at once within a tier.
    pub parallelism: usize,
    /// Retries of 429/5xx.
    pub retry: RetryPolicy,
    /// How often readiness is polled.
    pub ready_poll: Duration,
    /// How long a CRD may take to be established.
    pub crd_timeout: Duration,
    /// Identities for encrypted archives, and size limits.
    pub read: ReadOptions,
    /// How long the lease on the backup read holds without renewal (renewed after each tier).
    pub lease: Duration,
}

impl Default for RestoreSettings {
    fn default() -> Self {
        Self {
            parallelism: 16,
            retry: RetryPolicy::default(),
            ready_poll: Duration::from_secs(2),
            crd_timeout: Duration::from_secs(60),
            read: ReadOptions::default(),
            lease: Duration::from_secs(6 * 3600),
        }
    }
}

/// What a restore message led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The restore ended (completed, partially failed or failed while applying).
    Finished {
        /// How it ended.
        phase: RestorePhase,
        /// Objects per outcome.
        counts: RestoreCounts,
        /// Recovery time achieved.
        rto_seconds: u64,
        /// What made it partial or failed.
        reason: Option<String>,
    },
    /// A dry run: the plan is in the results document.
    Planned {
        /// Objects the plan would send and skip.
        counts: RestoreCounts,
        /// Where the plan is.
        results_key: String,
    },
    /// Refused before anything was written: the message is dead-lettered with this reason.
    Refused {
        /// Machine-readable reason (`BackupNotFound`, `NotAllowed`, `DigestMismatch`…).
        code: String,
        /// Human-readable detail.
        reason: String,
    },
    /// A duplicate of a restore that already ended.
    AlreadyDone(RestorePhase),
}

/// Why a restore message could not be handled now.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Refused before anything was written (never retried).
    #[error("{code}: {reason}")]
    Refused {
        /// Machine-readable reason.
        code: String,
        /// Human-readable detail.
        reason: String,
    },
    /// The backup catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The restore records failed.
    #[error(transparent)]
    Records(#[from] RestoreRecordError),
    /// The object store failed.
    #[error("object store")]
    Objects(#[from] ObjectStoreError),
    /// The target cluster failed (after retries).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Sending an event failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Reading the archive stopped for a reason other than its content.
    #[error("reading the archive: {0}")]
    Read(String),
}

impl RestoreError {
    /// Whether redelivering the message may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            RestoreError::Refused { .. } => false,
            RestoreError::Catalog(e) => e.is_transient() || e.is_changed(),
            RestoreError::Records(e) => e.is_transient(),
            RestoreError::Objects(e) => e.is_transient(),
            RestoreError::Cluster(e) => e.is_transient(),
            RestoreError::Bus(e) => e.is_transient(),
            RestoreError::Read(_) => true,
        }
    }
}

pub(crate) fn refused(code: &str, reason: String) -> RestoreError {
    RestoreError::Refused { code: code.to_owned(), reason }
}

/// A restore ready to apply: the backup, its manifest and the plan.
#[derive(Debug)]
pub struct Prepared {
    /// The backup read.
    pub backup: BackupRecord,
    /// Its manifest.
    pub manifest: Manifest,
    /// What will be sent, in order, and what is left out.
    pub plan: RestorePlan,
    /// Time spent reading and checking the archive.
    pub read_time: Duration,
    /// Time spent planning.
    pub plan_time: Duration,
}

/// Everything before the first write: checks, the backup, authorisation, the plan. The CLI's
/// `--dry-run` calls this directly.
///
/// # Errors
/// [`RestoreError::Refused`] with the reason; others for failing stores.
pub async fn prepare(
    state: &dyn StateStore,
    sources: Sources<'_>,
    config: &Config,
    request: &RestoreRequest,
    read: &ReadOptions,
    lease: Option<&Lease>,
) -> Result<Prepared, RestoreError> {
    if let Err(problems) = request.check() {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(refused("InvalidRequest", text.join("; ")));
    }
    let source = config
        .clusters
        .get(&request.source_cluster)
        .ok_or_else(|| refused("UnknownCluster", format!("cluster {} is not declared", request.source_cluster)))?;
    let Some(target) = config.clusters.get(&request.target_cluster) else {
        return Err(refused("UnknownCluster", format!("cluster {} is not declared", request.target_cluster)));
    };
    let from_copy = request.from_region.as_deref().filter(|r| *r != source.spec.region);
    if let Some(region) = from_copy
        && regions::region(sources.replicas, region).is_none()
    {
        return Err(refused(
            "CopyUnavailable",
            format!(
                "no store for copies in {region} is configured here; the primary copy is in {}",
                source.spec.region
            ),
        ));
    }
    let backup = source::resolve(state, &request.source_cluster, &request.backup, from_copy).await?;
    let policy = config.policies.get(&backup.policy).ok_or_else(|| {
        refused(
            "UnknownPolicy",
            format!("backup {} was taken by policy {}, which is no longer declared", backup.backup_id, backup.policy),
        )
    })?;
    let allowed = authorize(policy, request).map_err(|e| refused("NotAllowed", e.to_string()))?;
    let backup_id = backup.backup_id.clone();
    if let Some(lease) = lease {
        lease.take(state, &request.source_cluster, &backup.backup_id).await?;
    }
    let reading = Reading { state, sources, from_copy, target_region: &target.spec.region, read };
    let prepared = read_and_plan(&reading, request, backup, policy, &allowed, lease.is_some()).await;
    if let (Err(_), Some(lease)) = (&prepared, lease) {
        lease.release(state, &request.source_cluster, &backup_id).await;
    }
    prepared
}

/// Where and how [`read_and_plan`] reads.
struct Reading<'a> {
    state: &'a dyn StateStore,
    sources: Sources<'a>,
    /// The second region to read the copy from, when the request asks for one.
    from_copy: Option<&'a str>,
    /// The target cluster's region: the snapshots usable are those there.
    target_region: &'a str,
    read: &'a ReadOptions,
}

/// The second half of [`prepare`]: the archive (the primary's or the copy's), checked, and
/// the plan.
async fn read_and_plan(
    reading: &Reading<'_>,
    request: &RestoreRequest,
    backup: BackupRecord,
    policy: &crate::domain::policy::Policy,
    allowed: &crate::domain::restore_access::Allowed,
    leased: bool,
) -> Result<Prepared, RestoreError> {
    let backup = if leased {
        // Retention may have started removing it (or its copy) before the lease was taken.
        let selector = BackupSelector::Id { backup_id: backup.backup_id.clone() };
        source::resolve(reading.state, &request.source_cluster, &selector, None).await?
    } else {
        backup
    };
    let objects = match reading.from_copy {
        Some(region) => {
            source::check_copy(&backup, region)?;
            reading.sources.store_for(request)
        }
        None => reading.sources.primary,
    };
    let manifest = source::manifest(objects, &request.source_cluster, &backup.backup_id).await?;
    let started = std::time::Instant::now();
    let archived = source::read_objects(objects, &manifest, reading.read.clone()).await?;
    let read_time = started.elapsed();
    let options = PlanOptions {
        restore_id: request.restore_id(),
        backup_id: backup.backup_id.to_string(),
        include_namespaces: request.include_namespaces.clone(),
        exclude_namespaces: request.exclude_namespaces.clone(),
        namespace_mapping: request.namespace_mapping.clone(),
        include_resources: request.include_resources.clone(),
        exclude_resources: request.exclude_resources.clone(),
        label_selector: request.label_selector.clone(),
        cluster_scoped: allowed.cluster_scoped,
        volumes: request.volumes,
        keep_node_ports: request.keep_node_ports,
        snapshots: planner::snapshots_in_region(&manifest.snapshots, backup.replica.as_ref(), reading.target_region),
    };
    let planning = std::time::Instant::now();
    let plan = planner::plan(archived, &options).map_err(|e| refused("InvalidRequest", e.to_string()))?;
    let plan_time = planning.elapsed();
    if plan.steps.iter().all(|s| s.kind == "Namespace") {
        return Err(refused(
            "NothingToRestore",
            format!(
                "nothing in backup {} matches the request's namespaces, resources and selector ({} object(s) skipped)",
                backup.backup_id,
                plan.skipped.len()
            ),
        ));
    }
    let namespaces = plan.steps.iter().filter_map(|s| s.namespace.as_deref());
    allowed
        .check_namespaces(policy, &request.target_cluster, namespaces)
        .map_err(|e| refused("NotAllowed", e.to_string()))?;
    Ok(Prepared { backup, manifest, plan, read_time, plan_time })
}

/// A restore's claim on the backup it reads: retention does not remove a backup with a
/// lease that has not run out (table `backupreaders`, see [`layout::TABLE_BACKUP_READERS`]).
/// Renewed after each tier and released at the end; a crashed restore's lease runs out.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The restore.
    pub restore_id: String,
    /// How long it holds without renewal.
    pub duration: Duration,
    /// Now.
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Lease {
    fn row(&self, backup: &crate::domain::ids::BackupId) -> String {
        format!("{backup}.{}", self.restore_id)
    }

    async fn take(
        &self,
        state: &dyn StateStore,
        cluster: &crate::domain::names::ClusterName,
        backup: &crate::domain::ids::BackupId,
    ) -> Result<(), RestoreError> {
        let until = self.now + chrono::Duration::from_std(self.duration).unwrap_or(chrono::Duration::hours(6));
        let entity = crate::ports::state_store::Entity::new(cluster.as_str(), self.row(backup))
            .with("until", until.to_rfc3339());
        state
            .upsert(layout::TABLE_BACKUP_READERS, &entity)
            .await
            .map_err(|e| RestoreError::Read(format!("taking the lease on backup {backup}: {e}")))?;
        Ok(())
    }

    async fn release(
        &self,
        state: &dyn StateStore,
        cluster: &crate::domain::names::ClusterName,
        backup: &crate::domain::ids::BackupId,
    ) {
        if let Err(e) = state.delete(layout::TABLE_BACKUP_READERS, cluster.as_str(), &self.row(backup), None).await
            && !e.is_not_found()
        {
            tracing::warn!(backup.id = %backup, error = %e, "the restore's lease was not released; it runs out");
        }
    }
}

/// The results document of a restore.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Results<'a> {
    restore_id: &'a str,
    backup_id: Option<String>,
    phase: RestorePhase,
    counts: &'a RestoreCounts,
    rto_seconds: Option<u64>,
    objects: &'a [Applied],
    skipped: &'a [planner::SkippedObject],
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a [planner::PlannedObject]>,
}

struct Run<'d, 'a> {
    deps: &'d Deps<'a>,
    record: RestoreRecord,
    etag: ETag,
}

impl Run<'_, '_> {
    async fn save(&mut self) -> Result<(), RestoreError> {
        self.record.updated_at = self.deps.clock.now().max(self.record.updated_at);
        self.etag = restores::save(self.deps.state, &self.record, &self.etag).await?;
        Ok(())
    }

    /// Sends the next event (its sequence is in the record, so a resend after a crash carries
    /// the same message id) and saves the record.
    async fn event(&mut self, detail: String) -> Result<(), RestoreError> {
        let event = RestoreEvent {
            schema_version: RestoreEvent::SCHEMA_VERSION,
            restore_id: self.record.restore_id.clone(),
            phase: self.record.phase,
            sequence: self.record.events,
            at: self.deps.clock.now(),
            detail,
            counts: self.record.counts.clone(),
            rto_seconds: self.record.rto_seconds,
        };
        let mut message = OutgoingMessage::json(RestoreEvent::QUEUE.name(), event.message_id(), encode(&event));
        message.correlation_id = Some(self.record.restore_id.clone());
        self.deps.bus.send(message).await?;
        self.record.events += 1;
        self.save().await
    }

    async fn write_results(&mut self, results: &Results<'_>) -> Result<(), RestoreError> {
        let key = layout::restore_results_key(&self.record.request.target_cluster, &self.record.restore_id);
        let body = serde_json::to_vec_pretty(results).unwrap_or_default();
        // Beside what was read: a restore from the copy works while the primary region is down.
        let store = self.deps.sources().store_for(&self.record.request);
        store.put(&key, stream_from_bytes(body), PutOptions::default()).await?;
        self.record.results_key = Some(key);
        Ok(())
    }
}

/// Handles one `restore-requests` message.
///
/// # Errors
/// [`RestoreError`]; see [`RestoreError::is_transient`]. Refusals are not errors: they end
/// the restore as failed and come back as [`Outcome::Refused`].
pub async fn run(
    deps: &Deps<'_>,
    settings: &RestoreSettings,
    config: &Config,
    request: &RestoreRequest,
) -> Result<Outcome, RestoreError> {
    match run_once(deps, settings, config, request).await {
        Err(e) if !e.is_transient() => {
            // No delivery can finish it: the record says so (with a `failed` event) instead of
            // staying in its phase for ever, and the message is dead-lettered with the reason.
            mark_failed(deps, request, &e).await;
            Err(e)
        }
        other => other,
    }
}

/// Ends the restore's record as failed because of `e` (best effort: the error is what counts).
async fn mark_failed(deps: &Deps<'_>, request: &RestoreRequest, e: &RestoreError) {
    let found = restores::get(deps.state, &request.target_cluster, &request.restore_id()).await;
    let Ok(Some((record, etag))) = found else { return };
    if record.is_finished() {
        return;
    }
    let reason = crate::errors::chain(e);
    let mut run = Run { deps, record, etag };
    run.record.finish(RestorePhase::Failed, Some(reason.clone()), deps.clock.now().max(run.record.started_at));
    if let Err(err) = run.event(format!("failed: {reason}")).await {
        tracing::warn!(restore.id = %run.record.restore_id, "the failed restore could not be recorded: {err}");
    }
}

async fn run_once(
    deps: &Deps<'_>,
    settings: &RestoreSettings,
    config: &Config,
    request: &RestoreRequest,
) -> Result<Outcome, RestoreError> {
    let fresh = RestoreRecord::new(request.clone(), deps.clock.now());
    let (record, etag, new) = restores::claim(deps.state, &fresh).await?;
    if record.is_finished() {
        return Ok(Outcome::AlreadyDone(record.phase));
    }
    let mut run = Run { deps, record, etag };
    if new {
        run.event(format!("restore {} accepted", run.record.restore_id)).await?;
    }
    let lease = Lease { restore_id: run.record.restore_id.clone(), duration: settings.lease, now: deps.clock.now() };
    let prepared = match prepare(deps.state, deps.sources(), config, request, &settings.read, Some(&lease)).await {
        Ok(p) => p,
        Err(RestoreError::Refused { code, reason }) => {
            run.record.finish(RestorePhase::Failed, Some(format!("{code}: {reason}")), deps.clock.now());
            run.event(format!("refused: {reason}")).await?;
            return Ok(Outcome::Refused { code, reason });
        }
        Err(e) => return Err(e),
    };
    let Prepared { backup, plan, read_time, plan_time, .. } = prepared;
    run.record.backup_id = Some(backup.backup_id.clone());
    run.record.counts =
        RestoreCounts { planned: plan.steps.len() as u64, skipped: plan.skipped.len() as u64, ..Default::default() };
    tracing::info!(restore.id = %run.record.restore_id, backup.id = %backup.backup_id,
        planned = plan.steps.len(), skipped = plan.skipped.len(), read_ms = read_time.as_millis() as u64,
        plan_ms = plan_time.as_millis() as u64, "restore planned");

    if request.dry_run {
        run.record.finish(RestorePhase::Completed, None, deps.clock.now());
        let counts = run.record.counts.clone();
        let results = Results {
            restore_id: &run.record.restore_id.clone(),
            backup_id: Some(backup.backup_id.to_string()),
            phase: RestorePhase::Completed,
            counts: &counts,
            rto_seconds: None,
            objects: &[],
            skipped: &plan.skipped,
            plan: Some(&plan.steps),
        };
        run.write_results(&results).await?;
        run.event(format!("dry run: {} object(s) would be sent, {} skipped", counts.planned, counts.skipped)).await?;
        let results_key = run.record.results_key.clone().unwrap_or_default();
        lease.release(deps.state, &request.source_cluster, &backup.backup_id).await;
        return Ok(Outcome::Planned { counts, results_key });
    }

    if run.record.phase != RestorePhase::Applying {
        run.record.phase = RestorePhase::Applying;
        run.event(format!("applying {} object(s) from backup {}", plan.steps.len(), backup.backup_id)).await?;
    }
    let options =
        ApplyOptions { parallelism: settings.parallelism, retry: settings.retry, conflict: request.conflict_policy };
    let mut applied: Vec<Applied> = Vec::with_capacity(plan.steps.len());
    for tier in plan.steps.chunk_by(|a, b| a.tier == b.tier) {
        let results = apply::apply_all(deps.cluster, tier, &run.record.restore_id, options).await?;
        let crds: Vec<&planner::PlannedObject> =
            tier.iter().filter(|s| matches!(s.wait, Some(WaitFor::CrdEstablished))).collect();
        if !crds.is_empty() {
            ready::wait_established(deps.cluster, &crds, settings.crd_timeout, settings.ready_poll).await?;
        }
        applied.extend(results);
        tally(&mut run.record, &applied, plan.skipped.len());
        run.save().await?;
        Lease { now: deps.clock.now(), ..lease.clone() }
            .take(deps.state, &request.source_cluster, &backup.backup_id)
            .await?;
    }

    let mut not_ready = Vec::new();
    if let Some(wait) = &request.wait {
        let workloads: Vec<&planner::PlannedObject> = plan
            .steps
            .iter()
            .zip(&applied)
            .filter(|(s, a)| ready::is_workload(s) && !matches!(a.outcome, ObjectOutcome::Failed { .. }))
            .map(|(s, _)| s)
            .collect();
        not_ready = ready::wait_ready(deps.cluster, &workloads, wait.deadline, settings.ready_poll).await?;
    }

    let counts = run.record.counts.clone();
    let written = counts.created + counts.updated + counts.unchanged;
    let (phase, reason) = if counts.failed > 0 && written == 0 {
        (RestorePhase::Failed, Some(format!("all {} object(s) failed", counts.failed)))
    } else if counts.failed > 0 || !not_ready.is_empty() {
        let mut parts = Vec::new();
        if counts.failed > 0 {
            parts.push(format!("{} object(s) failed", counts.failed));
        }
        if !not_ready.is_empty() {
            parts.push(format!("not ready by the deadline: {}", not_ready.join(", ")));
        }
        (RestorePhase::PartiallyFailed, Some(parts.join("; ")))
    } else {
        (RestorePhase::Completed, None)
    };
    run.record.finish(phase, reason.clone(), deps.clock.now().max(run.record.started_at));
    let results = Results {
        restore_id: &run.record.restore_id.clone(),
        backup_id: Some(backup.backup_id.to_string()),
        phase,
        counts: &counts,
        rto_seconds: run.record.rto_seconds,
        objects: &applied,
        skipped: &plan.skipped,
        plan: None,
    };
    run.write_results(&results).await?;
    let rto = run.record.rto_seconds.unwrap_or(0);
    run.event(format!(
        "restore {:?}: {} created, {} updated, {} unchanged, {} failed, {} skipped; RTO {rto}s",
        phase, counts.created, counts.updated, counts.unchanged, counts.failed, counts.skipped
    ))
    .await?;
    lease.release(deps.state, &request.source_cluster, &backup.backup_id).await;
    tracing::info!(restore.id = %run.record.restore_id, ?phase, rto_seconds = rto, "restore ended");
    Ok(Outcome::Finished { phase, counts, rto_seconds: rto, reason })
}

fn tally(record: &mut RestoreRecord, applied: &[Applied], skipped: usize) {
    let planned = record.counts.planned;
    let mut counts = RestoreCounts { planned, skipped: skipped as u64, ..Default::default() };
    let mut failures = Vec::new();
    for a in applied {
        match &a.outcome {
            ObjectOutcome::Created => counts.created += 1,
            ObjectOutcome::Updated => counts.updated += 1,
            ObjectOutcome::Unchanged { .. } => counts.unchanged += 1,
            ObjectOutcome::Failed { message } => {
                counts.failed += 1;
                if failures.len() < RestoreRecord::MAX_FAILURES {
                    failures.push(ObjectFailure {
                        resource: a.resource.clone(),
                        namespace: a.namespace.clone(),
                        name: a.name.clone(),
                        message: message.chars().take(500).collect(),
                    });
                }
            }
        }
    }
    record.counts = counts;
    record.failures = failures;
}

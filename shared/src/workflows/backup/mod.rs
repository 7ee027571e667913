//! `backup`: backs up one target. Claims the backup, exports the selected objects into the
//! archive, requests volume snapshots, then either commits at once (no volumes) or hands over
//! to `snapshot_check` with a scheduled message. When the policy enables hooks, the selected
//! pods' pre hooks run before the snapshots are requested and their post hooks after (see
//! `hooks`).
//!
//! Every step is safe to repeat: the claim is insert-if-absent, the archive is replaced
//! whole, snapshot names are deterministic, and chained messages carry deterministic ids.

mod commit;
pub mod export;
mod give_up;
mod hooks;
mod join;
pub mod object_index;
mod shards;
mod snapshots;

use std::time::Duration;

use chrono::{DateTime, Utc};

pub use commit::commit;
pub use export::{ExportError, ExportOptions, ExportResult};
pub use give_up::give_up;
pub(crate) use snapshots::SnapshotApis;

use crate::catalog::{self, CatalogError, Claim};
use crate::domain::hooks::PodHooks;
use crate::domain::manifest::SnapshotRecord;
use crate::domain::messages::{BackupRequest, BackupStep, Message, SnapshotCheck, encode};
use crate::domain::policy::{Cluster as ClusterDef, Config, Policy};
use crate::domain::records::{BackupRecord, BackupState, IllegalTransition};
use crate::errors;
use crate::layout;
use crate::ports::bus::{Bus, BusError, OutgoingMessage};
use crate::ports::cluster::{Cluster, ClusterError};
use crate::ports::object_store::{ObjectStore, ObjectStoreError};
use crate::ports::state_store::{ETag, StateStore};

/// The ports a backup uses, and the time.
pub struct Deps<'a> {
    /// Catalog and claims.
    pub state: &'a dyn StateStore,
    /// Archive and manifest.
    pub objects: &'a dyn ObjectStore,
    /// Chained messages.
    pub bus: &'a dyn Bus,
    /// The cluster backed up.
    pub cluster: &'a dyn Cluster,
    /// Now.
    pub now: DateTime<Utc>,
}

/// Tuning of backups.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// The export.
    pub export: ExportOptions,
    /// First wait before looking at snapshots; doubles per poll up to a minute.
    pub snapshot_poll: Duration,
    /// Give up waiting for snapshots after this.
    pub snapshot_timeout: Duration,
    /// A `backup` message that fails transiently on this delivery marks the backup failed
    /// instead of being retried (Service Bus's default `MaxDeliveryCount`, and the local queues').
    pub give_up_after_deliveries: u32,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            export: ExportOptions::default(),
            snapshot_poll: Duration::from_secs(5),
            snapshot_timeout: Duration::from_secs(30 * 60),
            give_up_after_deliveries: 10,
        }
    }
}

/// What a backup message led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The manifest is written.
    Committed {
        /// Objects in the archive.
        objects: u64,
        /// Whether something was left out (see the manifest's warnings).
        partial: bool,
    },
    /// Snapshots are being taken; `snapshot_check` continues.
    WaitingForSnapshots {
        /// Snapshots requested.
        snapshots: usize,
    },
    /// A sharded backup: the parts are on their way, each its own message.
    Split {
        /// How many.
        parts: u32,
    },
    /// One part of a sharded backup is written; the join takes over once every part is.
    PartDone {
        /// Which part.
        index: u32,
    },
    /// The join waits for the other parts (a later part's join message does the work).
    WaitingForParts {
        /// Parts done.
        done: u32,
        /// Parts in all.
        of: u32,
    },
    /// Nothing to do: the backup is already in this state.
    AlreadyDone(BackupState),
    /// The backup failed for good, with the reason (recorded in the catalog).
    Failed(String),
}

/// Why a backup message could not be handled (a retry may help when transient).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The request names a policy or cluster that is not declared.
    #[error("{0}")]
    UnknownTarget(String),
    /// The message refers to a backup the catalog does not have.
    #[error("backup {0} is not in the catalog")]
    UnknownBackup(String),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The export failed.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The cluster failed.
    #[error("cluster")]
    Cluster(#[from] ClusterError),
    /// The object store failed.
    #[error("object store")]
    Objects(#[from] ObjectStoreError),
    /// Sending the next message failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The catalog refused a state change (a bug, or a record changed under us).
    #[error(transparent)]
    Transition(#[from] IllegalTransition),
    /// The backup is not ready for this step yet (e.g. a check arrived before the export ended).
    #[error("backup {0} is not ready for this step yet")]
    NotYet(String),
}

impl BackupError {
    /// Whether redelivering the message may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            BackupError::UnknownTarget(_) | BackupError::UnknownBackup(_) | BackupError::Transition(_) => false,
            BackupError::Catalog(e) => e.is_transient() || e.is_changed(),
            BackupError::Export(e) => e.is_transient(),
            BackupError::Cluster(e) => e.is_transient(),
            BackupError::Objects(e) => e.is_transient(),
            BackupError::Bus(e) => e.is_transient(),
            BackupError::NotYet(_) => true,
        }
    }
}

/// The policy and cluster a request names.
///
/// # Errors
/// [`BackupError::UnknownTarget`].
pub fn target<'c>(
    config: &'c Config,
    request_policy: &str,
    request_cluster: &str,
) -> Result<(&'c Policy, &'c ClusterDef), BackupError> {
    let policy = config
        .policies
        .values()
        .find(|p| p.name.as_str() == request_policy)
        .ok_or_else(|| BackupError::UnknownTarget(format!("policy {request_policy} is not declared")))?;
    let cluster = config
        .clusters
        .values()
        .find(|c| c.name.as_str() == request_cluster && policy.spec.clusters.contains(&c.name))
        .ok_or_else(|| {
            BackupError::UnknownTarget(format!("policy {request_policy} does not protect cluster {request_cluster}"))
        })?;
    Ok((policy, cluster))
}

/// Handles one `backup-requests` message.
///
/// # Errors
/// [`BackupError`]; see [`BackupError::is_transient`].
pub async fn run(
    deps: &Deps<'_>,
    settings: &BackupSettings,
    config: &Config,
    request: &BackupRequest,
) -> Result<Outcome, BackupError> {
    match request.step {
        BackupStep::Whole => {}
        BackupStep::Shard(shard) => return shards::run_part(deps, settings, config, request, shard).await,
        BackupStep::Join(shard) => return join::run(deps, settings, config, request, shard.count).await,
    }
    let (policy, cluster_def) = target(config, request.policy.as_str(), request.cluster.as_str())?;
    let fresh = BackupRecord::requested(
        request.backup_id.clone(),
        request.cluster.clone(),
        request.policy.clone(),
        request.reason.clone(),
        deps.now,
    );
    let (mut record, mut etag) = match catalog::claim(deps.state, &fresh).await? {
        Claim::New(etag) => (fresh, etag),
        Claim::Existing(existing, etag) => match existing.state {
            BackupState::Requested | BackupState::Running => (*existing, etag),
            BackupState::WaitingForSnapshots => {
                // A redelivery after the hand-over: make sure the first check is on its way.
                send_check(deps, &existing, 1, settings).await?;
                return Ok(Outcome::WaitingForSnapshots { snapshots: existing.snapshots.len() });
            }
            done => return Ok(Outcome::AlreadyDone(done)),
        },
    };
    record.move_to(BackupState::Running, deps.now)?;
    etag = catalog::save(deps.state, &record, &etag).await?;
    tracing::info!(backup.id = %record.backup_id, cluster = %record.cluster, "backup started");
    if policy.spec.shards > 1 {
        let parts = shards::fan_out(deps, request, policy.spec.shards).await?;
        return Ok(Outcome::Split { parts });
    }

    let archive_key = layout::archive_key(&record.cluster, &record.backup_id);
    let facts = commit::ClusterFacts::gather(deps.cluster, cluster_def, settings.export.retry).await?;
    let mut export_options = settings.export.clone();
    export_options.archive.recipients = recipients(policy);
    let export =
        match export::export(deps.cluster, deps.objects, &archive_key, &policy.spec.selection, &export_options).await {
            Ok(export) => export,
            Err(e) if !e.is_transient() => return fail(deps, &mut record, &etag, errors::chain(&e)).await,
            Err(e) => return Err(e.into()),
        };
    commit::save_export(deps, &record, &facts, &export_options.archive.recipients, &export).await?;
    let taken = take_snapshots(deps, settings, policy, &record.backup_id, &export, &cluster_def.spec.region).await?;
    record.warnings = export.warnings.clone();
    record.warnings.extend(taken.warnings);
    record.snapshots = taken.snapshots;
    if let Some(reason) = taken.failure {
        return fail(deps, &mut record, &etag, reason).await;
    }
    hand_over(deps, settings, policy, &mut record, etag).await
}

/// The policy's encryption recipients (none: not encrypted).
fn recipients(policy: &Policy) -> Vec<String> {
    policy.spec.encryption.as_ref().map(|e| e.age_recipients.clone()).unwrap_or_default()
}

/// Marks the backup failed for good, for `reason`.
async fn fail(deps: &Deps<'_>, record: &mut BackupRecord, etag: &ETag, reason: String) -> Result<Outcome, BackupError> {
    record.failure = Some(reason.clone());
    record.move_to(BackupState::Failed, deps.now)?;
    catalog::save(deps.state, record, etag).await?;
    Ok(Outcome::Failed(reason))
}

/// What [`take_snapshots`] left: the snapshots requested, warnings for the manifest, and the
/// failure of a hook that fails the backup.
#[derive(Debug, Default)]
struct Snapshotted {
    snapshots: Vec<SnapshotRecord>,
    warnings: Vec<String>,
    failure: Option<String>,
}

/// Runs the pre hooks (when the policy enables them), requests a snapshot of each PVC when the
/// policy asks for volumes, then runs the post hooks whatever the requests did (a frozen
/// application must be thawed). See [`hooks`] for the order and the error rules.
async fn take_snapshots(
    deps: &Deps<'_>,
    settings: &BackupSettings,
    policy: &Policy,
    backup: &crate::domain::ids::BackupId,
    export: &export::ExportResult,
    region: &str,
) -> Result<Snapshotted, BackupError> {
    let hook_pods: &[PodHooks] = if policy.spec.volumes.hooks { &export.hooks } else { &[] };
    let mut taken = Snapshotted::default();
    let pre = hooks::run_pre(deps.cluster, hook_pods).await;
    taken.warnings.extend(pre.warnings);
    if let Some(reason) = pre.failure {
        let post = hooks::run_post(deps.cluster, &pre.ran).await;
        taken.warnings.extend(post.warnings);
        taken.failure = Some(reason);
        return Ok(taken);
    }
    let requested = request_snapshots(deps, settings, policy, backup, &export.pvcs, region).await;
    let post = hooks::run_post(deps.cluster, &hook_pods.iter().collect::<Vec<_>>()).await;
    taken.warnings.extend(post.warnings);
    let (snapshots, warnings) = requested?;
    taken.snapshots = snapshots;
    taken.warnings.extend(warnings);
    taken.failure = post.failure;
    Ok(taken)
}

/// Requests a snapshot of each PVC when the policy asks for volumes; returns the records and
/// the warnings (no snapshot API).
async fn request_snapshots(
    deps: &Deps<'_>,
    settings: &BackupSettings,
    policy: &Policy,
    backup: &crate::domain::ids::BackupId,
    pvcs: &[export::PvcRef],
    region: &str,
) -> Result<(Vec<SnapshotRecord>, Vec<String>), BackupError> {
    if !policy.spec.volumes.snapshot || pvcs.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let discovered = crate::workflows::retry::with_retry(settings.export.retry, || deps.cluster.discover()).await?;
    match SnapshotApis::find(&discovered) {
        Some(apis) => {
            let records = snapshots::request(deps.cluster, &apis, backup, pvcs, region, settings.export.retry).await?;
            Ok((records, Vec::new()))
        }
        None => Ok((
            Vec::new(),
            vec![format!(
                "{} PVC(s) not snapshotted: the cluster serves no VolumeSnapshot API (install the CSI snapshot CRDs and controller)",
                pvcs.len()
            )],
        )),
    }
}

/// After the archive and its export record are written and the snapshots requested: commits
/// at once when no snapshot is pending, else hands over to `snapshot_check`.
async fn hand_over(
    deps: &Deps<'_>,
    settings: &BackupSettings,
    policy: &Policy,
    record: &mut BackupRecord,
    etag: ETag,
) -> Result<Outcome, BackupError> {
    if record.snapshots.iter().all(|s| s.error.is_some()) {
        return commit::commit(deps, policy, record, etag).await;
    }
    record.move_to(BackupState::WaitingForSnapshots, deps.now)?;
    let timeout = chrono::Duration::from_std(settings.snapshot_timeout).unwrap_or(chrono::Duration::hours(1));
    record.snapshot_deadline = Some(deps.now + timeout);
    catalog::save(deps.state, record, &etag).await?;
    send_check(deps, record, 1, settings).await?;
    Ok(Outcome::WaitingForSnapshots { snapshots: record.snapshots.len() })
}

/// Looks at each pending snapshot once (for `snapshot_check`); returns whether any is pending.
pub(crate) async fn snapshots_check(
    deps: &Deps<'_>,
    apis: &SnapshotApis,
    records: &mut [crate::domain::manifest::SnapshotRecord],
    settings: &BackupSettings,
) -> Result<bool, BackupError> {
    Ok(snapshots::check(deps.cluster, apis, records, settings.export.retry).await?)
}

/// Sends check number `attempt`, scheduled after the poll interval's backoff.
pub(crate) async fn send_check(
    deps: &Deps<'_>,
    record: &BackupRecord,
    attempt: u32,
    settings: &BackupSettings,
) -> Result<(), BackupError> {
    let wait =
        settings.snapshot_poll.saturating_mul(1 << attempt.saturating_sub(1).min(4)).min(Duration::from_secs(60));
    let check = SnapshotCheck {
        schema_version: SnapshotCheck::SCHEMA_VERSION,
        backup_id: record.backup_id.clone(),
        cluster: record.cluster.clone(),
        attempt,
        deadline: record.snapshot_deadline.unwrap_or(deps.now),
    };
    let at = deps.now + chrono::Duration::from_std(wait).unwrap_or_default();
    let mut message =
        OutgoingMessage::json(SnapshotCheck::QUEUE.name(), check.message_id(), encode(&check)).scheduled_at(at);
    message.correlation_id = Some(record.backup_id.to_string());
    deps.bus.send(message).await?;
    Ok(())
}

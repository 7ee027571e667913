//! The `drill` workflow (a timer, hourly): restore drills as policies ask for them (see
//! [`crate::domain::policy::Drill`]). Each run:
//!
//! 1. **Cleans up** every finished drill: in its target cluster, deletes the sandbox namespaces
//!    its request mapped to, but only those carrying the drill's own
//!    [`RESTORE_ID_LABEL`] (a namespace Lifeboat did not create for that drill is never
//!    touched), and the VolumeSnapshotContents the restore pre-provisioned for its PVCs
//!    (labelled the same way; `Retain`, so the backup's disk snapshots stay). Idempotent: a
//!    drill whose sandbox is gone costs two list requests.
//! 2. **Gives up** on a drill whose restore has made no progress for its `deadline` plus
//!    [`ABANDON_AFTER_DEADLINE`] (its retries ran out, or its process died): its record ends
//!    `Failed` with that reason and no RTO, so `staleness` alerts on it, the next run cleans its
//!    sandbox up, and later drills are not blocked behind it.
//! 3. **Starts** each drill that is due (its newest drill began `every` or longer ago, and none
//!    is running) by sending a restore request to `restore-requests`: the newest committed
//!    backup, the drilled namespaces mapped to `{namespace}{suffix}`, no cluster-scoped
//!    objects, PVCs from the snapshots, waiting for the workloads, `requestedBy: drill`. Its
//!    request id is `drill.{cluster}.{policy}.{hour}`, so the timer delivered twice in an hour
//!    starts one drill.
//!
//! The restore itself (checks, apply, readiness, RTO) is the `restore` function's; `staleness`
//! alerts on a failed drill or one slower than the drill RTO.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::messages::{Message, RestorePhase, encode};
use crate::domain::names::ClusterName;
use crate::domain::policy::{Config, Drill, Target};
use crate::domain::records::RestoreRecord;
use crate::domain::restore::RESTORE_ID_LABEL;
use crate::domain::restore_request::{BackupSelector, ConflictPolicy, RestoreRequest, WaitSpec};
use crate::domain::staleness::DRILL_REQUESTER;
use crate::ports::bus::{Bus, OutgoingMessage};
use crate::ports::cluster::{Cluster, ClusterConnector, ClusterError};
use crate::restores;
use crate::workflows::prune::snapshots::list_all;
use crate::workflows::retry::{RetryPolicy, with_retry};

/// What a drill run reads and changes.
#[derive(Clone, Copy)]
pub struct DrillDeps<'a> {
    /// The restores table.
    pub state: &'a dyn crate::ports::StateStore,
    /// Where restore requests go.
    pub bus: &'a dyn Bus,
    /// The drills' target clusters, for the cleanup.
    pub clusters: &'a dyn ClusterConnector,
    /// The time.
    pub now: DateTime<Utc>,
}

/// How long past its `deadline` a drill's restore may go without progress before the drill is
/// given up (a restore saves its record after each tier; only the readiness wait, bounded by
/// the deadline, is silent).
pub const ABANDON_AFTER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3600);

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DrillReport {
    /// Request ids of the drills started.
    pub started: Vec<String>,
    /// `cluster/namespace` of each sandbox namespace deleted.
    pub cleaned: Vec<String>,
    /// Drills not due, or still running, with why.
    pub waiting: Vec<String>,
    /// Request ids of the drills given up (no progress past their deadline).
    pub abandoned: Vec<String>,
    /// What could not be done (the next run tries again).
    pub failures: Vec<String>,
}

impl DrillReport {
    /// One line for the log.
    pub fn summary(&self) -> String {
        format!(
            "drill: {} started, {} sandbox namespace(s) deleted, {} waiting, {} abandoned, {} failure(s)",
            self.started.len(),
            self.cleaned.len(),
            self.waiting.len(),
            self.abandoned.len(),
            self.failures.len()
        )
    }
}

/// Why a run failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The restores table could not be read.
    #[error("reading the restores failed")]
    Restores(#[from] restores::RestoreRecordError),
}

/// The request-id prefix of the drills of `policy` on `cluster`.
fn prefix(cluster: &ClusterName, policy: &str) -> String {
    format!("drill.{cluster}.{policy}.")
}

/// Whether `phase` is final.
fn finished(phase: RestorePhase) -> bool {
    matches!(phase, RestorePhase::Completed | RestorePhase::PartiallyFailed | RestorePhase::Failed)
}

/// Runs the cleanup, then starts the drills that are due.
///
/// # Errors
/// [`DrillError`] when the restores cannot be read; per-drill problems are in the report.
pub async fn run(config: &Config, deps: DrillDeps<'_>) -> Result<DrillReport, DrillError> {
    let mut report = DrillReport::default();
    let drills: Vec<RestoreRecord> = restores::list_all(deps.state)
        .await?
        .into_iter()
        .filter(|r| r.request.requested_by.as_deref() == Some(DRILL_REQUESTER))
        .collect();
    clean_up(config, deps, &drills, &mut report).await;
    for target in config.targets() {
        let Some(drill) = &target.policy.spec.drill else { continue };
        start_if_due(&target, drill, deps, &drills, &mut report).await;
    }
    Ok(report)
}

async fn start_if_due(
    target: &Target<'_>,
    drill: &Drill,
    deps: DrillDeps<'_>,
    drills: &[RestoreRecord],
    report: &mut DrillReport,
) {
    let source = &target.cluster.name;
    let prefix = prefix(source, target.policy.name.as_str());
    let mine: Vec<&RestoreRecord> = drills.iter().filter(|r| r.request.request_id.starts_with(&prefix)).collect();
    if let Some(running) = mine.iter().find(|r| !finished(r.phase)) {
        let quiet = deps.now - running.updated_at;
        let patience =
            chrono::Duration::from_std(drill.deadline + ABANDON_AFTER_DEADLINE).unwrap_or(chrono::Duration::MAX);
        if quiet < patience {
            report.waiting.push(format!("{}: still running", running.request.request_id));
            return;
        }
        match abandon(deps, running).await {
            Ok(()) => report.abandoned.push(running.request.request_id.clone()),
            Err(e) => {
                report.failures.push(format!("{}: giving up the stalled drill: {e}", running.request.request_id));
                return;
            }
        }
    }
    let every = chrono::Duration::from_std(drill.every).unwrap_or(chrono::Duration::MAX);
    if let Some(last) = mine.iter().map(|r| r.started_at).max()
        && deps.now - last < every
    {
        report.waiting.push(format!("{prefix}*: next due {}", (last + every).format("%Y-%m-%dT%H:%M:%SZ")));
        return;
    }
    let request = request(target, drill, &format!("{prefix}{}", deps.now.format("%Y%m%dt%H")));
    let message = OutgoingMessage::json(RestoreRequest::QUEUE.name(), request.message_id(), encode(&request));
    match deps.bus.send(message).await {
        Ok(()) => {
            tracing::info!(drill = %request.request_id, "restore drill requested");
            report.started.push(request.request_id);
        }
        Err(e) => report.failures.push(format!("{}: sending the restore request: {e}", request.request_id)),
    }
}

/// Ends a stalled drill's restore `Failed` (guarded by its ETag: a restore that moved on
/// meanwhile is left alone and reported as a failure of this run).
async fn abandon(deps: DrillDeps<'_>, stalled: &RestoreRecord) -> Result<(), restores::RestoreRecordError> {
    let id = stalled.restore_id.clone();
    let Some((mut record, etag)) = restores::get(deps.state, &stalled.request.target_cluster, &id).await? else {
        return Ok(());
    };
    if finished(record.phase) {
        return Ok(());
    }
    let since = record.updated_at.format("%Y-%m-%dT%H:%M:%SZ");
    let reason = format!(
        "abandoned: no progress since {since} in phase {:?} (its retries ran out or its process stopped)",
        record.phase
    );
    tracing::warn!(restore.id = %id, "drill given up: {reason}");
    record.finish(RestorePhase::Failed, Some(reason), deps.now);
    record.rto_seconds = None; // nothing was recovered in that time
    restores::save(deps.state, &record, &etag).await?;
    Ok(())
}

/// The restore request of one drill.
pub fn request(target: &Target<'_>, drill: &Drill, request_id: &str) -> RestoreRequest {
    RestoreRequest {
        schema_version: RestoreRequest::SCHEMA_VERSION,
        request_id: request_id.to_owned(),
        requested_by: Some(DRILL_REQUESTER.to_owned()),
        source_cluster: target.cluster.name.clone(),
        backup: BackupSelector::Latest { before: None },
        from_region: None,
        target_cluster: drill.cluster.clone().unwrap_or_else(|| target.cluster.name.clone()),
        include_namespaces: drill.namespaces.clone(),
        exclude_namespaces: Vec::new(),
        namespace_mapping: drill.namespaces.iter().map(|ns| (ns.clone(), drill.sandbox(ns))).collect(),
        include_resources: Vec::new(),
        exclude_resources: Vec::new(),
        label_selector: None,
        cluster_scoped: false,
        conflict_policy: ConflictPolicy::Fail,
        volumes: drill.volumes,
        keep_node_ports: false,
        dry_run: false,
        wait: Some(WaitSpec { deadline: drill.deadline }),
    }
}

/// Deletes the sandboxes of finished drills, cluster by cluster.
async fn clean_up(config: &Config, deps: DrillDeps<'_>, drills: &[RestoreRecord], report: &mut DrillReport) {
    let targets: BTreeSet<&ClusterName> =
        drills.iter().filter(|r| finished(r.phase)).map(|r| &r.request.target_cluster).collect();
    for cluster in targets {
        let Some(def) = config.clusters.get(cluster) else { continue };
        let finished_here: Vec<&RestoreRecord> =
            drills.iter().filter(|r| finished(r.phase) && &r.request.target_cluster == cluster).collect();
        let client = match deps.clusters.connect(def).await {
            Ok(client) => client,
            Err(e) => {
                report.failures.push(format!("cleaning up drills in cluster {cluster}: {e}"));
                continue;
            }
        };
        match clean_cluster(client.as_ref(), &finished_here).await {
            Ok(deleted) => report.cleaned.extend(deleted.into_iter().map(|ns| format!("{cluster}/{ns}"))),
            Err(e) => report.failures.push(format!("cleaning up drills in cluster {cluster}: {e}")),
        }
    }
}

/// Deletes, in one cluster, the sandbox namespaces and pre-provisioned snapshot contents of the
/// finished `drills`; returns the namespaces deleted.
async fn clean_cluster(cluster: &dyn Cluster, drills: &[&RestoreRecord]) -> Result<Vec<String>, ClusterError> {
    let retry = RetryPolicy::default();
    let discovered = with_retry(retry, || cluster.discover()).await?;
    let find = |gr: &str| discovered.iter().find(|r| r.group_resource() == gr);
    let ids: BTreeSet<String> = drills.iter().map(|r| r.restore_id.clone()).collect();
    let mut deleted = Vec::new();
    if let Some(namespaces) = find("namespaces") {
        for ns in list_all(cluster, namespaces, Some(RESTORE_ID_LABEL), retry).await? {
            let (Some(name), Some(id)) = (str_at(&ns, "/metadata/name"), label(&ns)) else { continue };
            let sandbox = drills
                .iter()
                .any(|r| r.restore_id == id && r.request.namespace_mapping.values().any(|target| target == name));
            // Already going (a namespace lingers while its objects are removed): not counted.
            let terminating = ns.pointer("/metadata/deletionTimestamp").is_some();
            if sandbox && !terminating && with_retry(retry, || cluster.delete(namespaces, None, name)).await? {
                deleted.push(name.to_owned());
            }
        }
    }
    if let Some(contents) = find("volumesnapshotcontents.snapshot.storage.k8s.io") {
        for content in list_all(cluster, contents, Some(RESTORE_ID_LABEL), retry).await? {
            let (Some(name), Some(id)) = (str_at(&content, "/metadata/name"), label(&content)) else { continue };
            // `Retain` (the restore made it so): deleting it leaves the backup's disk snapshot.
            let retained = str_at(&content, "/spec/deletionPolicy") == Some("Retain");
            if ids.contains(id) && retained {
                with_retry(retry, || cluster.delete(contents, None, name)).await?;
            }
        }
    }
    Ok(deleted)
}

fn label(object: &Value) -> Option<&str> {
    object.pointer("/metadata/labels").and_then(|l| l.get(RESTORE_ID_LABEL)).and_then(Value::as_str)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

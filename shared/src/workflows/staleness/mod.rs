//! The `staleness` workflow: evaluates every declared cluster's targets, drills and snapshots
//! (see [`crate::domain::staleness`]), moves each cluster's alert through its lifecycle in the
//! state store, and notifies the alert sink.
//!
//! Idempotent when the timer fires twice: a notification is claimed by an ETag-guarded write
//! of the alert's new status before it is sent, so of two concurrent runs only one sends.
//! When the sink fails altogether the previous status is put back, so the next run tries again.

mod orphans;
pub mod store;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::catalog;
use crate::domain::names::ClusterName;
use crate::domain::policy::{Cluster, Config};
use crate::domain::records::RestoreRecord;
use crate::domain::staleness::{
    AlertStatus, AlertTiming, Finding, Thresholds, cluster_alert_id, decide, drill_finding, orphan_finding,
    target_findings,
};
use crate::layout::TABLE_ALERTS;
use crate::ports::{AlertSink, ClusterConnector, StateStore};
use crate::restores;

/// Tuning of the workflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StalenessSettings {
    /// When conditions count as problems.
    pub thresholds: Thresholds,
    /// How a firing alert repeats.
    pub timing: AlertTiming,
    /// Skip the orphan scan (which lists VolumeSnapshots in every cluster).
    pub skip_orphan_scan: bool,
}

/// The ports the workflow uses, and the time.
pub struct Deps<'a> {
    /// Catalog, restores and alert lifecycles.
    pub state: &'a dyn StateStore,
    /// Reaches clusters for the orphan scan.
    pub clusters: &'a dyn ClusterConnector,
    /// Where notifications go.
    pub sink: &'a dyn AlertSink,
    /// The time.
    pub now: DateTime<Utc>,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StalenessReport {
    /// Notifications sent, as `alert id #n state`.
    pub notified: Vec<String>,
    /// Clusters with at least one finding.
    pub unhealthy: Vec<ClusterName>,
    /// Checks that could not run (e.g. a cluster unreachable for the orphan scan).
    pub warnings: Vec<String>,
    /// Clusters whose alert could not be evaluated or delivered (the next run retries).
    pub failures: Vec<String>,
}

impl StalenessReport {
    /// One line for the log.
    pub fn summary(&self) -> String {
        format!(
            "staleness: {} unhealthy cluster(s), {} notification(s), {} warning(s), {} failure(s)",
            self.unhealthy.len(),
            self.notified.len(),
            self.warnings.len(),
            self.failures.len()
        )
    }
}

/// Runs one evaluation of every declared cluster.
pub async fn run(config: &Config, deps: &Deps<'_>, settings: &StalenessSettings) -> StalenessReport {
    let mut report = StalenessReport::default();
    let restores = match restores::list_all(deps.state).await {
        Ok(r) => r,
        Err(e) => {
            report.warnings.push(format!("drill check skipped: {e}"));
            Vec::new()
        }
    };
    for cluster in config.clusters.values() {
        let findings = match findings(config, cluster, &restores, deps, settings, &mut report).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(cluster = %cluster.name, "staleness evaluation failed: {e}");
                report.failures.push(format!("{}: {e}", cluster.name));
                continue;
            }
        };
        if !findings.is_empty() {
            report.unhealthy.push(cluster.name.clone());
        }
        if let Err(e) = advance(&cluster.name, &findings, deps, settings).await.map(|sent| {
            report.notified.extend(sent);
        }) {
            tracing::error!(cluster = %cluster.name, "alert lifecycle failed: {e}");
            report.failures.push(format!("{}: {e}", cluster.name));
        }
    }
    report
}

async fn findings(
    config: &Config,
    cluster: &Cluster,
    restores: &[RestoreRecord],
    deps: &Deps<'_>,
    settings: &StalenessSettings,
    report: &mut StalenessReport,
) -> Result<Vec<Finding>, catalog::CatalogError> {
    let records = catalog::list(deps.state, &cluster.name).await?;
    let th = &settings.thresholds;
    let mut findings: Vec<Finding> = config
        .targets()
        .iter()
        .filter(|t| t.cluster.name == cluster.name)
        .flat_map(|t| target_findings(t, &records, deps.now, th))
        .collect();
    let drills: Vec<RestoreRecord> =
        restores.iter().filter(|r| r.request.target_cluster == cluster.name).cloned().collect();
    findings.extend(drill_finding(&drills, th));
    if !settings.skip_orphan_scan {
        match orphans::labelled_snapshots(deps.clusters, cluster).await {
            Ok(snapshots) => {
                let known: BTreeSet<&str> = records.iter().map(|r| r.backup_id.as_str()).collect();
                findings.extend(orphan_finding(&snapshots, |id| known.contains(id)));
            }
            Err(e) => {
                tracing::warn!(cluster = %cluster.name, "orphan scan skipped: {e}");
                report.warnings.push(format!("{}: orphan scan skipped: {e}", cluster.name));
            }
        }
    }
    findings.sort_by_key(|f| f.condition);
    Ok(findings)
}

/// Errors of one cluster's lifecycle step.
#[derive(Debug, thiserror::Error)]
pub enum AdvanceError {
    /// Reading or writing the alert record failed.
    #[error("updating the alert record failed")]
    Record(#[from] store::AlertRecordError),
    /// No sink took the notification (the previous status was put back).
    #[error("delivering {alert_id} failed")]
    Deliver {
        /// The alert.
        alert_id: String,
        /// The cause.
        #[source]
        source: crate::ports::AlertSinkError,
    },
}

/// Moves `cluster`'s alert one step; returns the notifications sent.
async fn advance(
    cluster: &ClusterName,
    findings: &[Finding],
    deps: &Deps<'_>,
    settings: &StalenessSettings,
) -> Result<Vec<String>, AdvanceError> {
    let alert_id = cluster_alert_id(cluster);
    let previous = store::load(deps.state, cluster, &alert_id).await?;
    let Some(decision) =
        decide(cluster, previous.as_ref().map(|(s, _)| s), findings, deps.now, settings.timing.renotify_every)
    else {
        return Ok(Vec::new());
    };
    let etag =
        match store::save(deps.state, cluster, &alert_id, &decision.status, previous.as_ref().map(|(_, e)| e)).await {
            Ok(etag) => etag,
            // Another run claimed this notification: it sends it.
            Err(e) if e.is_raced() => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
    if let Err(source) = deps.sink.notify(&decision.alert).await {
        put_back(deps.state, cluster, &alert_id, previous.map(|(s, _)| s), &etag).await;
        return Err(AdvanceError::Deliver { alert_id, source });
    }
    let a = &decision.alert;
    Ok(vec![format!("{} #{} {:?}", a.alert_id, a.notification, a.state)])
}

/// Restores the status before a notification no sink took, so the next run sends it again.
async fn put_back(
    state: &dyn StateStore,
    cluster: &ClusterName,
    alert_id: &str,
    previous: Option<AlertStatus>,
    etag: &crate::ports::state_store::ETag,
) {
    let result = match previous {
        Some(status) => store::save(state, cluster, alert_id, &status, Some(etag)).await.map(|_| ()),
        None => state.delete(TABLE_ALERTS, cluster.as_str(), alert_id, Some(etag)).await.map_err(|e| {
            store::AlertRecordError::Store {
                cluster: cluster.to_string(),
                alert_id: alert_id.to_owned(),
                source: Box::new(e),
            }
        }),
    };
    if let Err(e) = result {
        tracing::warn!(alert.id = alert_id, "putting back the alert status failed: {e}");
    }
}

#[cfg(test)]
mod tests;

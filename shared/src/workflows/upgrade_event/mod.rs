//! `upgrade_event`: a backup before every AKS upgrade.
//!
//! For one classified event ([`UpgradeEvent`]): the protected clusters it names are found by
//! ARM id (case-insensitively); every policy protecting them that triggers on the event's
//! kind (`spec.preUpgrade.on`) gets one high-priority `backup-requests` message with reason
//! `pre-upgrade`, unless a committed backup younger than `spec.preUpgrade.freshness` exists.
//! A node pool's rolling result is recorded on the claim of the `NodePoolRollingStarted` that
//! asked for the backup; no backup is requested for it.
//!
//! Exactly once, step by step (as `schedule_tick` does for slots):
//! 1. The decision is claimed by insert-if-absent in `upgradeclaims` (partition = target key,
//!    row = the backup id, derived from the event id: a redelivered event finds its claim).
//! 2. The request is sent with a deterministic message id, then the claim moves to `sent`
//!    (or to `skipped`, naming the fresh backup).
//!
//! A crash after 1 leaves a `claimed` claim, which the event's redelivery (Event Grid retries
//! a failed delivery) finishes; a crash after 2 resends a message the bus drops as a duplicate.

mod request;
mod rolling;

use chrono::{DateTime, Utc};

use crate::catalog::CatalogError;
use crate::domain::ids::BackupId;
use crate::domain::names::ClusterName;
use crate::domain::policy::{Cluster, Config};
use crate::domain::upgrade_events::{ManagedClusterId, RollingPhase, Signal, UpgradeEvent};
use crate::ports::bus::{Bus, BusError};
use crate::ports::state_store::{StateStore, StateStoreError};

pub use request::TargetOutcome;

/// What the workflow reads and writes.
pub struct Deps<'a> {
    /// The clusters and policies.
    pub config: &'a Config,
    /// Claims and the catalog.
    pub state: &'a dyn StateStore,
    /// Where backup requests go.
    pub bus: &'a dyn Bus,
    /// The time now.
    pub now: DateTime<Utc>,
}

/// What one event led to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventReport {
    /// The event's id.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// Why nothing was done, when nothing was.
    pub ignored: Option<String>,
    /// Per target (`policy.cluster`): what was decided.
    pub targets: Vec<(String, TargetOutcome)>,
    /// Rolling results recorded, one line each.
    pub recorded: Vec<String>,
}

impl EventReport {
    fn new(event: &UpgradeEvent) -> Self {
        Self { event_id: event.id.clone(), event_type: event.event_type.clone(), ..Self::default() }
    }

    /// The backups this event asked for (now or scheduled).
    pub fn requested(&self) -> Vec<&BackupId> {
        self.targets
            .iter()
            .filter_map(|(_, o)| match o {
                TargetOutcome::Requested { backup_id, .. } => Some(backup_id),
                _ => None,
            })
            .collect()
    }

    /// One line per decision, for the log.
    pub fn lines(&self) -> Vec<String> {
        let head = format!("event {} ({})", self.event_id, self.event_type);
        let mut lines: Vec<String> = self.ignored.iter().map(|why| format!("{head}: ignored: {why}")).collect();
        lines.extend(self.targets.iter().map(|(target, outcome)| format!("{head}: {target}: {outcome}")));
        lines.extend(self.recorded.iter().map(|r| format!("{head}: {r}")));
        lines
    }
}

/// Why an event could not be handled (a redelivery may succeed).
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// Reading or writing a claim failed.
    #[error("recording the upgrade claim of {target} failed")]
    Claim {
        /// The target key.
        target: String,
        /// The cause.
        #[source]
        source: StateStoreError,
    },
    /// Reading the catalog (for a fresh backup) failed.
    #[error("looking for a fresh backup of {target} failed")]
    Catalog {
        /// The target key.
        target: String,
        /// The cause.
        #[source]
        source: CatalogError,
    },
    /// Sending the backup request failed.
    #[error("requesting backup {backup_id} of {target} failed")]
    Send {
        /// The target key.
        target: String,
        /// The backup.
        backup_id: String,
        /// The cause.
        #[source]
        source: BusError,
    },
}

impl UpgradeError {
    /// Whether a redelivery may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            UpgradeError::Claim { source, .. } => source.is_transient(),
            UpgradeError::Catalog { source, .. } => source.is_transient(),
            UpgradeError::Send { source, .. } => source.is_transient(),
        }
    }
}

/// Handles one classified event.
///
/// # Errors
/// [`UpgradeError`] when the state store or the bus fails; what was done before is claimed,
/// so a redelivery finishes the rest.
pub async fn handle(deps: &Deps<'_>, event: &UpgradeEvent) -> Result<EventReport, UpgradeError> {
    let mut report = EventReport::new(event);
    let trigger = event.signal.trigger();
    if trigger.is_none() && !matches!(event.signal, Signal::NodePoolRolling { .. }) {
        report.ignored = Some(match &event.signal {
            Signal::Irrelevant { why } => why.clone(),
            _ => "this kind of event never starts a backup".to_owned(),
        });
        return Ok(report);
    }
    let Some(arm_id) = &event.cluster else {
        report.ignored = Some("the event names no AKS managed cluster".to_owned());
        return Ok(report);
    };
    let clusters = protected_clusters(deps.config, arm_id);
    if clusters.is_empty() {
        tracing::warn!(event.id = %event.id, cluster.arm_id = %arm_id, "upgrade event for a cluster Lifeboat does not protect");
        report.ignored = Some(format!("{arm_id} is not a protected cluster"));
        return Ok(report);
    }
    let targets: Vec<_> = deps.config.targets().into_iter().filter(|t| clusters.contains(&&t.cluster.name)).collect();
    match (&event.signal, trigger) {
        (Signal::NodePoolRolling { node_pool, phase: phase @ (RollingPhase::Succeeded | RollingPhase::Failed) }, _) => {
            for target in &targets {
                rolling::record(deps, target, event, node_pool.as_deref(), *phase, &mut report).await?;
            }
        }
        (_, Some(trigger)) => {
            for target in targets.iter().filter(|t| t.policy.spec.pre_upgrade.triggers_on(trigger)) {
                let outcome = request::for_target(deps, target, event).await?;
                report.targets.push((target.key(), outcome));
            }
            if report.targets.is_empty() {
                report.ignored = Some(format!("no policy of the cluster backs up on {trigger:?}"));
            }
        }
        (_, None) => {}
    }
    if report.targets.is_empty() && report.recorded.is_empty() && report.ignored.is_none() {
        report.ignored = Some("no backup of the cluster was started by this upgrade".to_owned());
    }
    Ok(report)
}

/// The declared clusters whose ARM id is `arm_id`.
fn protected_clusters<'c>(config: &'c Config, arm_id: &ManagedClusterId) -> Vec<&'c ClusterName> {
    config
        .clusters
        .values()
        .filter(|c: &&Cluster| {
            c.spec.connection.arm_resource_id().and_then(ManagedClusterId::find_in).as_ref() == Some(arm_id)
        })
        .map(|c| &c.name)
        .collect()
}

#[cfg(test)]
mod tests;

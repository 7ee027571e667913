//! One target's pre-upgrade backup: claim the decision, skip when a fresh backup exists,
//! else send the request (at once, or scheduled before a maintenance).

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use super::{Deps, UpgradeError};
use crate::catalog;
use crate::domain::ids::BackupId;
use crate::domain::messages::{BackupReason, BackupRequest, BackupStep, Message, Priority, encode};
use crate::domain::policy::Target;
use crate::domain::upgrade_events::{MaintenanceStatus, Signal, UpgradeEvent};
use crate::layout::TABLE_UPGRADE_CLAIMS;
use crate::ports::bus::OutgoingMessage;
use crate::ports::state_store::{ETag, Entity};

/// What was decided for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOutcome {
    /// A backup was requested: at once, or for `at` (scheduled maintenance).
    Requested {
        /// The backup.
        backup_id: BackupId,
        /// When the request becomes visible, if later than now.
        at: Option<DateTime<Utc>>,
    },
    /// An earlier delivery of this event (or notice of this maintenance) already decided.
    AlreadyHandled {
        /// The backup it asked for.
        backup_id: BackupId,
    },
    /// A committed backup is fresh enough: none was requested.
    Fresh {
        /// The fresh backup.
        backup_id: BackupId,
        /// When it was taken.
        taken_at: DateTime<Utc>,
    },
}

impl fmt::Display for TargetOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetOutcome::Requested { backup_id, at: None } => write!(f, "requested pre-upgrade backup {backup_id}"),
            TargetOutcome::Requested { backup_id, at: Some(at) } => {
                write!(f, "requested pre-upgrade backup {backup_id} for {}", at.to_rfc3339())
            }
            TargetOutcome::AlreadyHandled { backup_id } => write!(f, "already handled (backup {backup_id})"),
            TargetOutcome::Fresh { backup_id, taken_at } => {
                write!(f, "skipped: backup {backup_id} taken at {} is fresh enough", taken_at.to_rfc3339())
            }
        }
    }
}

/// The claim states.
const CLAIMED: &str = "claimed";
const SENT: &str = "sent";
const SKIPPED: &str = "skipped";

/// How one event is turned into a request.
struct Plan {
    /// What makes the backup unique: the event id, or the maintenance's id for its notices.
    key: String,
    /// Deliver the request no earlier than this.
    send_at: Option<DateTime<Utc>>,
}

fn plan(target: &Target<'_>, event: &UpgradeEvent, now: DateTime<Utc>) -> Plan {
    if let Signal::Maintenance {
        status: MaintenanceStatus::Scheduled, scheduled_time: Some(at), maintenance_id, ..
    } = &event.signal
    {
        let lead = Duration::from_std(target.policy.spec.pre_upgrade.maintenance_lead).unwrap_or(Duration::hours(2));
        let key = format!("maintenance-{}", maintenance_id.as_deref().unwrap_or(&event.id));
        return Plan { key, send_at: Some(*at - lead).filter(|t| *t > now) };
    }
    Plan { key: event.id.clone(), send_at: None }
}

pub(super) async fn for_target(
    deps: &Deps<'_>,
    target: &Target<'_>,
    event: &UpgradeEvent,
) -> Result<TargetOutcome, UpgradeError> {
    let key = target.key();
    let claim_err = |source| UpgradeError::Claim { target: key.clone(), source };
    let plan = plan(target, event, deps.now);
    let backup_id = BackupId::for_event(&target.policy.name, &plan.key);
    let mut claim = Entity::new(&key, backup_id.as_str())
        .with("eventId", event.id.as_str())
        .with("eventType", event.event_type.as_str())
        .with("dedupKey", plan.key.as_str())
        .with("backupId", backup_id.as_str())
        .with("cluster", target.cluster.name.as_str())
        .with("state", CLAIMED)
        .with("claimedAt", deps.now.to_rfc3339());
    if let Signal::NodePoolRolling { node_pool: Some(pool), .. } = &event.signal {
        claim = claim.with("nodePool", pool.as_str());
    }
    let etag = match deps.state.insert(TABLE_UPGRADE_CLAIMS, &claim).await {
        Ok(etag) => etag,
        Err(e) if e.is_already_exists() => {
            let existing = deps.state.get(TABLE_UPGRADE_CLAIMS, &key, backup_id.as_str()).await.map_err(claim_err)?;
            match existing {
                Some(c) if c.str("state") != Some(CLAIMED) => return Ok(TargetOutcome::AlreadyHandled { backup_id }),
                Some(c) => c.etag.clone().unwrap_or(ETag(String::new())),
                None => return Ok(TargetOutcome::AlreadyHandled { backup_id }), // swept meanwhile
            }
        }
        Err(e) => return Err(claim_err(e)),
    };

    if plan.send_at.is_none()
        && let Some((fresh, taken_at)) = fresh_backup(deps, target).await?
    {
        tracing::info!(target.key = %key, backup.id = %fresh, event.id = %event.id, "a fresh backup exists: no pre-upgrade backup needed");
        let skipped = claim.with("state", SKIPPED).with("freshBackupId", fresh.as_str());
        finish(deps, &skipped, &etag).await.map_err(claim_err)?;
        return Ok(TargetOutcome::Fresh { backup_id: fresh, taken_at });
    }

    send(deps, target, event, &backup_id, plan.send_at).await?;
    let mut sent = claim.with("state", SENT);
    if let Some(at) = plan.send_at {
        sent = sent.with("sendAt", at.to_rfc3339());
    }
    finish(deps, &sent, &etag).await.map_err(claim_err)?;
    Ok(TargetOutcome::Requested { backup_id, at: plan.send_at })
}

/// Moves the claim on; someone else having moved it meanwhile is fine (same decision).
async fn finish(deps: &Deps<'_>, claim: &Entity, etag: &ETag) -> Result<(), crate::ports::StateStoreError> {
    let claim = Entity { etag: None, ..claim.clone() };
    match deps.state.update(TABLE_UPGRADE_CLAIMS, &claim, etag).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_precondition_failed() || e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The newest committed backup of the target younger than the policy's freshness.
async fn fresh_backup(deps: &Deps<'_>, target: &Target<'_>) -> Result<Option<(BackupId, DateTime<Utc>)>, UpgradeError> {
    let freshness = Duration::from_std(target.policy.spec.pre_upgrade.freshness).unwrap_or(Duration::zero());
    let records = catalog::list(deps.state, &target.cluster.name)
        .await
        .map_err(|source| UpgradeError::Catalog { target: target.key(), source })?;
    Ok(records
        .into_iter()
        .filter(|r| r.policy == target.policy.name && r.state.is_restorable())
        .filter(|r| deps.now - r.created_at < freshness)
        .max_by_key(|r| r.created_at)
        .map(|r| (r.backup_id, r.created_at)))
}

async fn send(
    deps: &Deps<'_>,
    target: &Target<'_>,
    event: &UpgradeEvent,
    backup_id: &BackupId,
    at: Option<DateTime<Utc>>,
) -> Result<(), UpgradeError> {
    let (current_version, target_version) = event.signal.versions();
    let request = BackupRequest {
        schema_version: BackupRequest::SCHEMA_VERSION,
        backup_id: backup_id.clone(),
        cluster: target.cluster.name.clone(),
        policy: target.policy.name.clone(),
        reason: BackupReason::PreUpgrade { event_id: event.id.clone(), current_version, target_version },
        priority: Priority::High,
        requested_at: deps.now,
        step: BackupStep::Whole,
    };
    let mut message = OutgoingMessage::json(BackupRequest::QUEUE.name(), request.message_id(), encode(&request));
    message.correlation_id = Some(backup_id.to_string());
    message.subject = Some("BackupRequest".to_owned());
    message.scheduled_enqueue_time = at;
    deps.bus.send(message).await.map_err(|source| UpgradeError::Send {
        target: target.key(),
        backup_id: backup_id.to_string(),
        source,
    })?;
    tracing::info!(target.key = %target.key(), backup.id = %backup_id, event.id = %event.id, "pre-upgrade backup requested");
    Ok(())
}

//! Records kept in the state store, with explicit states and the moves allowed between them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::BackupId;
use super::manifest::SnapshotRecord;
use super::messages::{BackupReason, RestoreCounts, RestorePhase, RestoreRequest};
use super::names::{ClusterName, PolicyName};

/// Where a backup stands. Only [`BackupState::Committed`] (and later states of a committed
/// backup) may be restored from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BackupState {
    /// Claimed from a request; nothing written yet.
    Requested,
    /// Objects are being exported.
    Running,
    /// Objects are written; volume snapshots are being taken.
    WaitingForSnapshots,
    /// The manifest is written: the backup is complete and restorable.
    Committed,
    /// Committed, and the copy in the second region is verified.
    Replicated,
    /// Gave up; whatever was written is swept by `prune`.
    Failed,
    /// Being removed by retention.
    Deleting,
}

impl BackupState {
    /// Whether `self → to` is a legal move. Staying in the same state is legal (a redelivered
    /// message repeats its step).
    pub fn can_move_to(self, to: BackupState) -> bool {
        use BackupState::*;
        self == to
            || matches!(
                (self, to),
                (Requested, Running)
                    | (Running, WaitingForSnapshots)
                    | (Running, Committed)
                    | (WaitingForSnapshots, Committed)
                    | (Committed, Replicated)
                    | (Requested | Running | WaitingForSnapshots, Failed)
                    | (Committed | Replicated | Failed, Deleting)
            )
    }

    /// Whether restores may read it.
    pub fn is_restorable(self) -> bool {
        matches!(self, BackupState::Committed | BackupState::Replicated)
    }

    /// Whether no further work will happen without an outside decision.
    pub fn is_terminal(self) -> bool {
        matches!(self, BackupState::Replicated | BackupState::Failed)
    }
}

/// Why a state change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backup {backup_id} cannot move from {from:?} to {to:?}")]
pub struct IllegalTransition {
    /// The backup.
    pub backup_id: BackupId,
    /// Its state.
    pub from: BackupState,
    /// The state asked for.
    pub to: BackupState,
}

/// The catalog entry of one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// Its id.
    pub backup_id: BackupId,
    /// The cluster backed up.
    pub cluster: ClusterName,
    /// The policy that selected it.
    pub policy: PolicyName,
    /// Why it was taken.
    pub reason: BackupReason,
    /// Where it stands.
    pub state: BackupState,
    /// When it was claimed.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// The volume snapshots requested, and what became of them.
    #[serde(default)]
    pub snapshots: Vec<SnapshotRecord>,
    /// When waiting for snapshots gives up.
    #[serde(default)]
    pub snapshot_deadline: Option<DateTime<Utc>>,
    /// What did not go as planned but did not fail the backup.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The copy in the second region, once the `copy` function has started it.
    #[serde(default)]
    pub replica: Option<ReplicaRecord>,
}

/// The copy of a backup in a second region (see `workflows::copy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaRecord {
    /// The region copied to.
    pub region: String,
    /// When the copy started.
    pub started_at: DateTime<Utc>,
    /// When the copy gives up.
    pub deadline: DateTime<Utc>,
    /// When the replica's manifest was written and verified.
    #[serde(default)]
    pub replicated_at: Option<DateTime<Utc>>,
    /// Why the copy gave up, when it did.
    #[serde(default)]
    pub failure: Option<String>,
    /// The volume snapshots' copies.
    #[serde(default)]
    pub snapshots: Vec<SnapshotReplica>,
    /// What did not go as planned but did not fail the copy.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// When `prune` started removing the replica (its retention, or its primary going); a
    /// removal found started is finished by the next run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removing_since: Option<DateTime<Utc>>,
    /// When `prune` finished removing it: its blobs and disk snapshot copies are gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<DateTime<Utc>>,
    /// When the copy gave up (with [`Self::failure`]).
    #[serde(default)]
    pub failed_at: Option<DateTime<Utc>>,
    /// Retry rounds started after the first copy failed (see `domain::replica_retry`).
    #[serde(default)]
    pub retries: u32,
    /// Why the earlier rounds failed, oldest first.
    #[serde(default)]
    pub earlier_failures: Vec<String>,
}

impl ReplicaRecord {
    /// A copy to `region` starting at `now`, giving up at `deadline`.
    pub fn new(region: impl Into<String>, now: DateTime<Utc>, deadline: DateTime<Utc>) -> Self {
        Self {
            region: region.into(),
            started_at: now,
            deadline,
            replicated_at: None,
            failure: None,
            snapshots: Vec::new(),
            warnings: Vec::new(),
            removing_since: None,
            removed_at: None,
            failed_at: None,
            retries: 0,
            earlier_failures: Vec::new(),
        }
    }

    /// Whether the replica is complete and still in its region (not pruned, nor being pruned).
    pub fn is_restorable(&self) -> bool {
        self.replicated_at.is_some() && self.removing_since.is_none() && self.removed_at.is_none()
    }

    /// Whether anything of it may still be in its region: not removed yet.
    pub fn is_present(&self) -> bool {
        self.removed_at.is_none()
    }

    /// Gives up at `now` for `reason`.
    pub fn fail(&mut self, reason: String, now: DateTime<Utc>) {
        self.failure = Some(reason);
        self.failed_at = Some(now);
    }

    /// Starts retry round `round` of a failed copy, to give up again at `deadline`: the
    /// failure moves to [`Self::earlier_failures`]. Snapshot copies are kept as they are: one
    /// still running is polled on, one the service reported failed stays settled (as it does
    /// outside retries: its replica exists in a failed state and would be found again).
    pub fn retry(&mut self, round: u32, deadline: DateTime<Utc>) {
        if let Some(failure) = self.failure.take() {
            self.earlier_failures.push(failure);
        }
        self.failed_at = None;
        self.retries = round;
        self.deadline = deadline;
    }

    /// Adds `warning` unless it is already recorded (a redelivery repeats its steps).
    pub fn warn(&mut self, warning: String) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }
}

/// The copy of one volume snapshot in the replica's region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotReplica {
    /// The source snapshot's handle (see [`SnapshotRecord::handle`]).
    pub source_handle: String,
    /// The PVC's namespace.
    pub namespace: String,
    /// The PVC.
    pub pvc: String,
    /// The replica's handle in the target region, once the copy started.
    #[serde(default)]
    pub handle: Option<String>,
    /// Whether the replica is complete and restorable.
    #[serde(default)]
    pub done: bool,
    /// Why the copy failed, when it did.
    #[serde(default)]
    pub error: Option<String>,
}

impl SnapshotReplica {
    /// Whether nothing more will happen to this copy.
    pub fn is_settled(&self) -> bool {
        self.done || self.error.is_some()
    }
}

impl BackupRecord {
    /// A new record in state `Requested`.
    pub fn requested(
        backup_id: BackupId,
        cluster: ClusterName,
        policy: PolicyName,
        reason: BackupReason,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            backup_id,
            cluster,
            policy,
            reason,
            state: BackupState::Requested,
            created_at: now,
            updated_at: now,
            failure: None,
            snapshots: Vec::new(),
            snapshot_deadline: None,
            warnings: Vec::new(),
            replica: None,
        }
    }

    /// Moves to `to` at `now`.
    ///
    /// # Errors
    /// [`IllegalTransition`] when the state machine forbids it.
    pub fn move_to(&mut self, to: BackupState, now: DateTime<Utc>) -> Result<(), IllegalTransition> {
        if !self.state.can_move_to(to) {
            return Err(IllegalTransition { backup_id: self.backup_id.clone(), from: self.state, to });
        }
        self.state = to;
        self.updated_at = now;
        Ok(())
    }
}

/// One object a restore could not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectFailure {
    /// `deployments.apps`.
    pub resource: String,
    /// Target namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// The API server's message, or the conflict.
    pub message: String,
}

/// The record of one restore (table `restores`: partition = target cluster, row = restore id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRecord {
    /// Its id (from the request id).
    pub restore_id: String,
    /// The request as received.
    pub request: RestoreRequest,
    /// The backup read, once resolved.
    pub backup_id: Option<BackupId>,
    /// Where it stands.
    pub phase: RestorePhase,
    /// When it was claimed: the start of the recovery time.
    pub started_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Objects per outcome.
    pub counts: RestoreCounts,
    /// Objects that failed (the first [`RestoreRecord::MAX_FAILURES`]; all are in the results).
    pub failures: Vec<ObjectFailure>,
    /// Why it failed, or what made it partial.
    pub reason: Option<String>,
    /// Events sent so far on `restore-events` (the next event's sequence number).
    pub events: u32,
    /// The recovery time achieved, in seconds, once ended.
    pub rto_seconds: Option<u64>,
    /// The object-store key of the per-object results (and, for a dry run, the plan).
    pub results_key: Option<String>,
}

impl RestoreRecord {
    /// Failures kept in the record itself.
    pub const MAX_FAILURES: usize = 50;

    /// A new record, planning.
    pub fn new(request: RestoreRequest, now: DateTime<Utc>) -> Self {
        Self {
            restore_id: request.restore_id(),
            request,
            backup_id: None,
            phase: RestorePhase::Planning,
            started_at: now,
            updated_at: now,
            finished_at: None,
            counts: RestoreCounts::default(),
            failures: Vec::new(),
            reason: None,
            events: 0,
            rto_seconds: None,
            results_key: None,
        }
    }

    /// Whether the restore has ended.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, RestorePhase::Completed | RestorePhase::PartiallyFailed | RestorePhase::Failed)
    }

    /// Ends the restore in `phase` at `now`, recording the recovery time.
    pub fn finish(&mut self, phase: RestorePhase, reason: Option<String>, now: DateTime<Utc>) {
        self.phase = phase;
        self.reason = reason;
        self.updated_at = now;
        self.finished_at = Some(now);
        self.rto_seconds = Some(u64::try_from((now - self.started_at).num_seconds()).unwrap_or(0));
    }
}

/// The state of one schedule slot's claim (see `workflows::schedule_tick`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SlotClaimState {
    /// Claimed; the backup request may not have been sent yet.
    Claimed,
    /// The backup request was accepted by the bus.
    Sent,
}

impl SlotClaimState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotClaimState::Claimed => "claimed",
            SlotClaimState::Sent => "sent",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "claimed" => Some(SlotClaimState::Claimed),
            "sent" => Some(SlotClaimState::Sent),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BackupState::*;
    use super::*;

    #[test]
    fn only_forward_moves_are_legal() {
        assert!(Requested.can_move_to(Running));
        assert!(WaitingForSnapshots.can_move_to(Committed));
        assert!(!Committed.can_move_to(Running), "a committed backup cannot be reopened");
        assert!(!Failed.can_move_to(Committed), "a failed backup cannot be committed");
        assert!(!Requested.can_move_to(Committed), "nothing was written yet");
        assert!(Running.can_move_to(Running), "redelivery repeats a step");
    }

    #[test]
    fn move_to_reports_the_illegal_move() {
        let now = Utc::now();
        let mut r = BackupRecord {
            backup_id: BackupId::parse("b-1").unwrap(),
            cluster: ClusterName::new("c").unwrap(),
            policy: PolicyName::new("p").unwrap(),
            reason: BackupReason::OnDemand { request_id: "r".into(), requested_by: None },
            state: Committed,
            created_at: now,
            updated_at: now,
            failure: None,
            snapshots: Vec::new(),
            snapshot_deadline: None,
            warnings: Vec::new(),
            replica: None,
        };
        let err = r.move_to(Running, now).unwrap_err();
        assert_eq!(err.to_string(), "backup b-1 cannot move from Committed to Running");
        assert_eq!(r.state, Committed);
    }

    #[test]
    fn a_record_written_before_replicas_existed_still_decodes() {
        let now = Utc::now();
        let reason = BackupReason::OnDemand { request_id: "r".into(), requested_by: None };
        let current = BackupRecord::requested(
            BackupId::parse("b-1").unwrap(),
            ClusterName::new("c").unwrap(),
            PolicyName::new("p").unwrap(),
            reason,
            now,
        );
        let mut old = serde_json::to_value(&current).unwrap();
        assert!(old.as_object_mut().unwrap().remove("replica").is_some());
        let record: BackupRecord = serde_json::from_value(old).expect("old record decodes");
        assert_eq!((record.state, record.replica), (Requested, None));
    }
}

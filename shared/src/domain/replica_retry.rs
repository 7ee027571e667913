//! When a replica that failed (its copy not done by the deadline) is copied again: a bounded
//! number of retry rounds, each after a longer wait, counted in the [`ReplicaRecord`].

use chrono::{DateTime, Duration, Utc};

use super::records::{BackupRecord, BackupState, ReplicaRecord};

/// How failed replicas are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaRetryPolicy {
    /// Rounds of copying after the first (0: a failed replica stays failed).
    pub max_retries: u32,
    /// The wait after the first failure; it doubles after each failed retry.
    pub first_wait: Duration,
    /// The longest wait.
    pub max_wait: Duration,
}

impl Default for ReplicaRetryPolicy {
    fn default() -> Self {
        Self { max_retries: 3, first_wait: Duration::hours(1), max_wait: Duration::hours(24) }
    }
}

impl ReplicaRetryPolicy {
    /// The wait before retry round `round` (1 for the first retry).
    pub fn wait_before(&self, round: u32) -> Duration {
        let doublings = round.saturating_sub(1).min(20);
        let wait = self.first_wait.checked_mul(1 << doublings).unwrap_or(self.max_wait);
        wait.min(self.max_wait)
    }
}

/// The retry round due for `record`'s replica at `now`: the next round when the backup is still
/// committed, its replica failed, rounds remain and the wait since the failure has passed.
pub fn due_round(record: &BackupRecord, policy: &ReplicaRetryPolicy, now: DateTime<Utc>) -> Option<u32> {
    if record.state != BackupState::Committed {
        return None;
    }
    let replica = record.replica.as_ref()?;
    replica.failure.as_ref()?;
    if replica.retries >= policy.max_retries || replica.removing_since.is_some() || replica.removed_at.is_some() {
        return None;
    }
    let round = replica.retries + 1;
    (now >= failed_at(replica) + policy.wait_before(round)).then_some(round)
}

/// When the replica failed (records written before `failed_at` existed: its deadline, when the
/// failure was decided at the earliest).
fn failed_at(replica: &ReplicaRecord) -> DateTime<Utc> {
    replica.failed_at.unwrap_or(replica.deadline)
}

impl ReplicaRetryPolicy {
    /// Whether `replica` failed for good: failed, and no retry round remains.
    pub fn gave_up(&self, replica: &ReplicaRecord) -> bool {
        replica.failure.is_some() && replica.retries >= self.max_retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::BackupId;
    use crate::domain::messages::BackupReason;
    use crate::domain::names::{ClusterName, PolicyName};

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + h * 3600, 0).unwrap()
    }

    /// A committed backup whose replica failed at hour `failed` after `retries` retries.
    fn failed(retries: u32, failed: i64) -> BackupRecord {
        let mut record = BackupRecord::requested(
            BackupId::parse("hourly-20261122t100000z").unwrap(),
            ClusterName::new("prod").unwrap(),
            PolicyName::new("hourly").unwrap(),
            BackupReason::Scheduled { slot: t(0) },
            t(0),
        );
        record.state = BackupState::Committed;
        let mut replica = ReplicaRecord::new("northeurope", t(0), t(failed));
        replica.failure = Some("1 copies not done by the deadline".into());
        replica.failed_at = Some(t(failed));
        replica.retries = retries;
        record.replica = Some(replica);
        record
    }

    #[test]
    fn the_first_retry_comes_after_the_first_wait_and_later_ones_wait_twice_as_long() {
        let policy = ReplicaRetryPolicy::default();
        assert_eq!(due_round(&failed(0, 24), &policy, t(24)), None, "not at once");
        assert_eq!(due_round(&failed(0, 24), &policy, t(25)), Some(1));
        assert_eq!(due_round(&failed(1, 50), &policy, t(51)), None, "the second waits 2 h");
        assert_eq!(due_round(&failed(1, 50), &policy, t(52)), Some(2));
        assert_eq!(due_round(&failed(2, 80), &policy, t(84)), Some(3));
        assert_eq!(policy.wait_before(30), policy.max_wait, "capped");
    }

    #[test]
    fn no_retry_past_the_last_round_nor_for_a_replica_that_did_not_fail_or_a_backup_not_committed() {
        let policy = ReplicaRetryPolicy::default();
        assert_eq!(due_round(&failed(3, 24), &policy, t(1000)), None, "rounds used up");
        let mut running = failed(0, 24);
        if let Some(r) = running.replica.as_mut() {
            r.failure = None;
        }
        assert_eq!(due_round(&running, &policy, t(1000)), None, "not failed");
        let mut deleting = failed(0, 24);
        deleting.state = BackupState::Deleting;
        assert_eq!(due_round(&deleting, &policy, t(1000)), None, "not committed");
        let never = ReplicaRetryPolicy { max_retries: 0, ..policy };
        assert_eq!(due_round(&failed(0, 24), &never, t(1000)), None, "retries off");
    }

    #[test]
    fn a_record_from_before_failed_at_counts_from_its_deadline() {
        let mut record = failed(0, 24);
        if let Some(r) = record.replica.as_mut() {
            r.failed_at = None;
        }
        assert_eq!(due_round(&record, &ReplicaRetryPolicy::default(), t(25)), Some(1));
    }
}

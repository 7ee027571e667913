//! The conditions: each looks at records and `now` and says whether, and how badly, it holds.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::thresholds::Thresholds;
use crate::domain::messages::{RestorePhase, Severity};
use crate::domain::policy::{Target, format_duration};
use crate::domain::records::{BackupRecord, BackupState, RestoreRecord};

/// The `requestedBy` of the restore requests the `drill` function sends: how drills are told
/// apart from other restores.
pub const DRILL_REQUESTER: &str = "drill";

/// Which condition a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    /// The newest committed backup is (nearly) older than the RPO.
    Rpo,
    /// The newest replicated backup is (nearly) older than the replica's RPO.
    ReplicationRpo,
    /// A backup makes no progress.
    Stuck,
    /// The last backups failed.
    Failing,
    /// Snapshots without a catalog entry.
    Orphans,
    /// The last drill failed or was too slow.
    Drill,
}

/// One condition that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The condition.
    pub condition: Condition,
    /// How bad.
    pub severity: Severity,
    /// One line saying what and where, e.g. `nightly: newest committed backup is 27h old (RPO 26h)`.
    pub summary: String,
}

fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or_default()
}

/// Rounds down to whole minutes, so summaries read `26h 10m` rather than seconds.
fn minutes(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() / 60 * 60)
}

/// Age of the newest backup in `states` against `rpo`; `None` while young enough.
/// Whether the backup has a complete replica that prune has not removed.
fn has_replica(record: &BackupRecord) -> bool {
    record.state == BackupState::Replicated
        && record.replica.as_ref().is_none_or(|r| r.removing_since.is_none() && r.removed_at.is_none())
}

fn rpo_finding(
    what: &str,
    records: &[&BackupRecord],
    counts: impl Fn(&BackupRecord) -> bool,
    rpo: Duration,
    now: DateTime<Utc>,
    thresholds: &Thresholds,
) -> Option<(Severity, String)> {
    let newest = records.iter().filter(|r| counts(r)).map(|r| r.created_at).max();
    let (reference, subject) = match newest {
        Some(at) => (at, format!("newest {what} backup")),
        // None yet: measured from the first attempt, so a new target is not flagged at once.
        None => (records.iter().map(|r| r.created_at).min()?, format!("no {what} backup yet; first attempt")),
    };
    let age = age(now, reference);
    let warn_at = rpo.mul_f64(f64::from(thresholds.warn_at_percent) / 100.0);
    let severity = if age >= rpo {
        Severity::Critical
    } else if age >= warn_at {
        Severity::Warning
    } else {
        return None;
    };
    Some((
        severity,
        format!("{subject} is {} old ({what} RPO {})", humantime::format_duration(minutes(age)), format_duration(rpo)),
    ))
}

/// Every condition of one target that holds, from the target's catalog records (other
/// records are ignored).
pub fn target_findings(
    target: &Target<'_>,
    records: &[BackupRecord],
    now: DateTime<Utc>,
    thresholds: &Thresholds,
) -> Vec<Finding> {
    let policy = target.policy;
    let mine: Vec<&BackupRecord> =
        records.iter().filter(|r| r.policy == policy.name && r.cluster == target.cluster.name).collect();
    let mut findings = Vec::new();
    let mut push = |condition, (severity, text): (Severity, String)| {
        findings.push(Finding { condition, severity, summary: format!("{}: {text}", policy.name) });
    };
    use BackupState::*;
    let rpo = rpo_finding("committed", &mine, |r| r.state.is_restorable(), policy.spec.rpo, now, thresholds);
    if let Some(f) = rpo {
        push(Condition::Rpo, f);
    }
    if let Some(replication) = &policy.spec.replication {
        let f = rpo_finding("replicated", &mine, has_replica, replication.rpo, now, thresholds);
        if let Some(f) = f {
            push(Condition::ReplicationRpo, f);
        }
    }
    let stuck: Vec<&str> = mine
        .iter()
        .filter(|r| matches!(r.state, Requested | Running | WaitingForSnapshots))
        .filter(|r| age(now, r.updated_at) > thresholds.stuck_after)
        .map(|r| r.backup_id.as_str())
        .collect();
    if !stuck.is_empty() {
        let text = format!(
            "{} backup(s) made no progress for over {}: {}",
            stuck.len(),
            format_duration(thresholds.stuck_after),
            stuck.join(", ")
        );
        push(Condition::Stuck, (Severity::Warning, text));
    }
    let mut finished: Vec<&&BackupRecord> =
        mine.iter().filter(|r| matches!(r.state, Committed | Replicated | Failed)).collect();
    finished.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    let n = thresholds.failed_in_a_row as usize;
    if finished.len() >= n && finished.iter().take(n).all(|r| r.state == Failed) {
        let last = finished.first().and_then(|r| r.failure.as_deref()).unwrap_or("no reason recorded");
        push(Condition::Failing, (Severity::Critical, format!("the last {n} backup(s) failed (latest: {last})")));
    }
    findings
}

/// Snapshots labelled with backup ids the catalog does not know: `snapshots` are
/// `namespace/name` and the backup id of their label.
pub fn orphan_finding(snapshots: &[(String, String)], known: impl Fn(&str) -> bool) -> Option<Finding> {
    let orphans: Vec<&str> = snapshots.iter().filter(|(_, id)| !known(id)).map(|(n, _)| n.as_str()).collect();
    if orphans.is_empty() {
        return None;
    }
    let shown = orphans.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    let more = if orphans.len() > 5 { format!(" and {} more", orphans.len() - 5) } else { String::new() };
    Some(Finding {
        condition: Condition::Orphans,
        severity: Severity::Warning,
        summary: format!("{} VolumeSnapshot(s) have no catalog entry: {shown}{more}", orphans.len()),
    })
}

/// The newest finished drill among `restores` (those requested by [`DRILL_REQUESTER`]): a
/// finding when it failed or took longer than the drill RTO.
pub fn drill_finding(restores: &[RestoreRecord], thresholds: &Thresholds) -> Option<Finding> {
    let drill = restores
        .iter()
        .filter(|r| r.request.requested_by.as_deref() == Some(DRILL_REQUESTER) && r.is_finished())
        .max_by_key(|r| r.finished_at)?;
    let (severity, summary) = match drill.phase {
        RestorePhase::Failed | RestorePhase::PartiallyFailed => (
            Severity::Critical,
            format!(
                "the last drill ({}) ended {:?}: {}",
                drill.restore_id,
                drill.phase,
                drill.reason.as_deref().unwrap_or("no reason recorded")
            ),
        ),
        _ => {
            let took = Duration::from_secs(drill.rto_seconds?);
            if took <= thresholds.drill_rto {
                return None;
            }
            (
                Severity::Warning,
                format!(
                    "the last drill ({}) took {} (RTO target {})",
                    drill.restore_id,
                    humantime::format_duration(minutes(took)),
                    format_duration(thresholds.drill_rto)
                ),
            )
        }
    };
    Some(Finding { condition: Condition::Drill, severity, summary })
}

//! Table-driven tests of the conditions and the alert lifecycle.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::domain::ids::BackupId;
use crate::domain::messages::{AlertState, BackupReason, Severity};
use crate::domain::names::{ClusterName, PolicyName};
use crate::domain::policy::Config;
use crate::domain::records::{BackupRecord, BackupState, ReplicaRecord};

const CONFIG: &str = r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: { name: c1 }
spec: { region: westeurope, kubeconfig: { path: /dev/null } }
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: { name: nightly }
spec:
  clusters: [c1]
  schedule: "0 0 2 * * *"
  rpo: 10h
  retention: { keepLast: 3 }
  replication: { region: northeurope, rpo: 20h }
"#;

fn config() -> Config {
    Config::from_sources([("test", CONFIG)]).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

fn hours(h: i64) -> chrono::Duration {
    chrono::Duration::hours(h)
}

/// A record of `nightly` on `c1`, created `created` hours after t0, in `state`.
fn record(id: &str, created: i64, state: BackupState) -> BackupRecord {
    let mut r = BackupRecord::requested(
        BackupId::parse(id).unwrap(),
        ClusterName::new("c1").unwrap(),
        PolicyName::new("nightly").unwrap(),
        BackupReason::OnDemand { request_id: id.into(), requested_by: None },
        t0() + hours(created),
    );
    r.state = state;
    if state == BackupState::Failed {
        r.failure = Some("api server unreachable".into());
    }
    r
}

fn findings_at(records: &[BackupRecord], now_hours: i64) -> Vec<(Condition, Severity)> {
    let config = config();
    let targets = config.targets();
    target_findings(&targets[0], records, t0() + hours(now_hours), &Thresholds::default())
        .into_iter()
        .map(|f| (f.condition, f.severity))
        .collect()
}

#[test]
fn conditions_of_one_target() {
    use BackupState::*;
    use Condition::*;
    use Severity::*;
    type Case = (&'static str, Vec<BackupRecord>, i64, Vec<(Condition, Severity)>);
    let cases: Vec<Case> = vec![
        ("fresh replicated backup", vec![record("b1", 0, Replicated)], 1, vec![]),
        ("7h of a 10h RPO", vec![record("b1", 0, Replicated)], 7, vec![]),
        ("8h: 80 % of the RPO warns", vec![record("b1", 0, Replicated)], 8, vec![(Rpo, Warning)]),
        ("10h: the RPO is missed", vec![record("b1", 0, Replicated)], 10, vec![(Rpo, Critical)]),
        (
            "committed but never replicated, replica RPO 20h",
            vec![record("b1", 0, Committed), record("b2", 9, Committed)],
            16,
            vec![(ReplicationRpo, Warning)],
        ),
        (
            "a running backup is not stuck after 2h",
            vec![record("b1", 0, Replicated), record("b2", 5, Running)],
            7,
            vec![],
        ),
        (
            "a running backup unchanged for over 3h is stuck",
            vec![record("b1", 0, Replicated), record("b2", 3, Running)],
            7,
            vec![(Stuck, Warning)],
        ),
        (
            "three failures in a row",
            vec![
                record("b1", 0, Replicated),
                record("b2", 1, Failed),
                record("b3", 2, Failed),
                record("b4", 3, Failed),
            ],
            4,
            vec![(Failing, Critical)],
        ),
        (
            "two failures after a success are not yet failing",
            vec![record("b1", 0, Replicated), record("b2", 1, Failed), record("b3", 2, Failed)],
            3,
            vec![],
        ),
        ("no backup and no attempt: nothing to measure", vec![], 100, vec![]),
        (
            "never committed: measured from the first attempt",
            vec![record("b1", 0, Failed)],
            17,
            vec![(Rpo, Critical), (ReplicationRpo, Warning)],
        ),
    ];
    for (name, records, now, expected) in cases {
        assert_eq!(findings_at(&records, now), expected, "{name}");
    }
}

#[test]
fn a_replica_prune_removed_no_longer_counts_for_the_replica_rpo() {
    let mut pruned = record("b2", 10, BackupState::Replicated);
    let mut replica = ReplicaRecord::new("northeurope", t0() + hours(10), t0() + hours(34));
    replica.replicated_at = Some(t0() + hours(10));
    pruned.replica = Some(replica.clone());
    let records = [record("b1", 0, BackupState::Replicated), pruned.clone()];
    // 17h after the first backup, 7h after the second: both RPOs met while b2's replica exists.
    assert_eq!(findings_at(&records, 17), []);
    for (removing_since, removed_at) in
        [(Some(t0() + hours(12)), None), (Some(t0() + hours(12)), Some(t0() + hours(12)))]
    {
        let r = pruned.replica.as_mut().unwrap();
        (r.removing_since, r.removed_at) = (removing_since, removed_at);
        let records = [record("b1", 0, BackupState::Replicated), pruned.clone()];
        assert_eq!(findings_at(&records, 17), [(Condition::ReplicationRpo, Severity::Warning)], "measured from b1");
    }
}

#[test]
fn summaries_name_the_policy_and_the_numbers() {
    let config = config();
    let targets = config.targets();
    let f = target_findings(
        &targets[0],
        &[record("b1", 0, BackupState::Replicated)],
        t0() + hours(11),
        &Thresholds::default(),
    );
    assert_eq!(f[0].summary, "nightly: newest committed backup is 11h old (committed RPO 10h)");
}

#[test]
fn orphans_are_snapshots_with_unknown_backup_ids() {
    let snaps = vec![("ns/a".to_owned(), "b1".to_owned()), ("ns/b".to_owned(), "gone".to_owned())];
    let f = orphan_finding(&snaps, |id| id == "b1").unwrap();
    assert_eq!(f.summary, "1 VolumeSnapshot(s) have no catalog entry: ns/b");
    assert!(orphan_finding(&snaps, |_| true).is_none());
}

fn finding(severity: Severity, text: &str) -> Finding {
    Finding { condition: Condition::Rpo, severity, summary: text.into() }
}

#[test]
fn lifecycle_fires_once_repeats_on_schedule_and_resolves_once() {
    let c = ClusterName::new("c1").unwrap();
    let every = Duration::from_secs(4 * 3600);
    let warn = vec![finding(Severity::Warning, "nightly: old")];
    let crit = vec![finding(Severity::Critical, "nightly: older")];
    // (hour, findings, expected notification: (number, state) or None)
    type Step<'a> = (i64, &'a [Finding], Option<(u32, AlertState)>);
    let steps: Vec<Step> = vec![
        (0, &[], None),
        (1, &warn, Some((1, AlertState::Firing))),
        (2, &warn, None),
        (4, &warn, None),
        (5, &warn, Some((2, AlertState::Firing))),
        (6, &crit, Some((3, AlertState::Firing))), // rose to critical: at once
        (7, &crit, None),
        (8, &[], Some((4, AlertState::Resolved))),
        (9, &[], None),
        (10, &warn, Some((5, AlertState::Firing))),
    ];
    let mut status: Option<AlertStatus> = None;
    for (hour, findings, expected) in steps {
        let decision = decide(&c, status.as_ref(), findings, t0() + hours(hour), every);
        let got = decision.as_ref().map(|d| (d.alert.notification, d.alert.state));
        assert_eq!(got, expected, "hour {hour}");
        if let Some(d) = decision {
            assert_eq!(d.alert.alert_id, "health.c1");
            assert_eq!(d.alert.notification, d.status.notification);
            status = Some(d.status);
        }
    }
}

#[test]
fn many_findings_of_one_cluster_make_one_notification() {
    let c = ClusterName::new("c1").unwrap();
    let findings = vec![finding(Severity::Warning, "a: old"), finding(Severity::Critical, "b: older")];
    let d = decide(&c, None, &findings, t0(), Duration::from_secs(3600)).unwrap();
    assert_eq!(d.alert.severity, Severity::Critical);
    assert_eq!(d.alert.summary, "2 problem(s) on c1: a: old; b: older");
}

#[test]
fn thresholds_are_validated() {
    let bad = Thresholds { warn_at_percent: 0, failed_in_a_row: 0, ..Thresholds::default() };
    let fields: Vec<&str> = bad.problems().into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["thresholds.warnAtPercent", "thresholds.failedInARow"]);
    assert!(Thresholds::default().problems().is_empty());
}

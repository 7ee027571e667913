use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde_json::Value;

use super::*;
use crate::adapters::sqlite::SqliteStateStore;
use crate::catalog;
use crate::domain::messages::{BackupReason, BackupRequest, Priority, decode};
use crate::domain::records::{BackupRecord, BackupState};
use crate::domain::upgrade_events::{classify, parse_event};
use crate::layout::TABLE_UPGRADE_CLAIMS;
use crate::ports::bus::OutgoingMessage;

#[derive(Default)]
struct RecordingBus {
    sent: Mutex<Vec<OutgoingMessage>>,
    down: AtomicBool,
}

impl RecordingBus {
    fn requests(&self) -> Vec<(BackupRequest, Option<DateTime<Utc>>)> {
        let sent = self.sent.lock().unwrap();
        sent.iter().map(|m| (decode(&m.body).unwrap(), m.scheduled_enqueue_time)).collect()
    }
    fn distinct_ids(&self) -> Vec<String> {
        let mut ids: Vec<_> = self.sent.lock().unwrap().iter().map(|m| m.message_id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

#[async_trait]
impl Bus for RecordingBus {
    async fn send(&self, message: OutgoingMessage) -> Result<(), BusError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(BusError::Unavailable {
                queue: message.queue,
                message_id: message.message_id,
                source: "bus is down".into(),
            });
        }
        self.sent.lock().unwrap().push(message);
        Ok(())
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// `prod` is the fixtures' cluster, declared in another spelling of its ARM id.
fn config(pre_upgrade: &str) -> Config {
    let text = format!(
        r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: prod }}
spec:
  region: westeurope
  aks: {{ resourceId: /subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/RG-PROD/providers/Microsoft.ContainerService/managedClusters/aks-prod }}
---
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: other }}
spec: {{ region: westeurope, kubeconfig: {{}} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{ name: nightly }}
spec:
  clusters: [prod, other]
  schedule: "0 0 2 * * *"
  rpo: 26h
  retention: {{ keepLast: 7 }}
{pre_upgrade}
"#
    );
    Config::from_sources([("policy.yaml", text.as_str())]).unwrap()
}

fn event(name: &str) -> UpgradeEvent {
    let path = format!("{}/../tests/fixtures/eventgrid/{name}.eventgrid.json", env!("CARGO_MANIFEST_DIR"));
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    classify(&parse_event(&value).unwrap()).unwrap()
}

struct World {
    config: Config,
    store: SqliteStateStore,
    bus: RecordingBus,
}

impl World {
    fn new(pre_upgrade: &str) -> Self {
        Self {
            config: config(pre_upgrade),
            store: SqliteStateStore::in_memory().unwrap(),
            bus: RecordingBus::default(),
        }
    }
    async fn handle(&self, event: &UpgradeEvent, now: &str) -> Result<EventReport, UpgradeError> {
        let deps = Deps { config: &self.config, state: &self.store, bus: &self.bus, now: t(now) };
        handle(&deps, event).await
    }
    async fn committed_backup(&self, id: &str, at: &str) {
        let mut record = BackupRecord::requested(
            BackupId::parse(id).unwrap(),
            "prod".parse().unwrap(),
            "nightly".parse().unwrap(),
            BackupReason::OnDemand { request_id: id.into(), requested_by: None },
            t(at),
        );
        record.state = BackupState::Committed;
        catalog::claim(&self.store, &record).await.unwrap();
    }
}

#[tokio::test]
async fn a_pipeline_event_requests_one_high_priority_backup_with_its_versions() {
    let world = World::new("");
    let report = world.handle(&event("lifeboat-pre-upgrade"), "2026-11-22T09:00:05Z").await.unwrap();
    assert_eq!(report.requested().len(), 1, "{report:?}");
    let requests = world.bus.requests();
    let [(request, at)] = requests.as_slice() else { panic!("{requests:?}") };
    assert_eq!(*at, None);
    assert_eq!(request.cluster.as_str(), "prod", "mapped case-insensitively, only the AKS cluster");
    assert_eq!(request.priority, Priority::High);
    assert_eq!(
        request.reason,
        BackupReason::PreUpgrade {
            event_id: "pipeline-run-8812-attempt-1".into(),
            current_version: Some("1.29.4".into()),
            target_version: Some("1.30.3".into()),
        }
    );
    assert_eq!(request.backup_id, BackupId::for_event(&"nightly".parse().unwrap(), "pipeline-run-8812-attempt-1"));

    let again = world.handle(&event("lifeboat-pre-upgrade"), "2026-11-22T09:01:00Z").await.unwrap();
    assert!(matches!(again.targets.as_slice(), [(_, TargetOutcome::AlreadyHandled { .. })]), "{again:?}");
    assert_eq!(world.bus.distinct_ids().len(), 1);
}

#[tokio::test]
async fn a_fresh_committed_backup_makes_a_new_one_unnecessary() {
    let world = World::new("  preUpgrade: { freshness: 2h }");
    world.committed_backup("nightly-fresh", "2026-11-22T08:00:00Z").await;
    let report = world.handle(&event("lifeboat-pre-upgrade"), "2026-11-22T09:00:00Z").await.unwrap();
    let [(target, TargetOutcome::Fresh { backup_id, .. })] = report.targets.as_slice() else { panic!("{report:?}") };
    assert_eq!((target.as_str(), backup_id.as_str()), ("nightly.prod", "nightly-fresh"));
    assert!(world.bus.sent.lock().unwrap().is_empty());
    assert!(report.lines()[0].contains("skipped: backup nightly-fresh"), "{:?}", report.lines());

    let stale = World::new("  preUpgrade: { freshness: 30m }");
    stale.committed_backup("nightly-fresh", "2026-11-22T08:00:00Z").await;
    let report = stale.handle(&event("lifeboat-pre-upgrade"), "2026-11-22T09:00:00Z").await.unwrap();
    assert_eq!(report.requested().len(), 1, "an older backup does not count: {report:?}");
}

#[tokio::test]
async fn unknown_clusters_and_untriggered_kinds_are_acknowledged_without_a_backup() {
    let world = World::new("");
    let mut stranger = event("lifeboat-pre-upgrade");
    stranger.cluster = crate::domain::upgrade_events::ManagedClusterId::find_in(
        "/subscriptions/1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/elsewhere",
    );
    let report = world.handle(&stranger, "2026-11-22T09:00:00Z").await.unwrap();
    assert!(report.ignored.as_deref().unwrap_or_default().contains("not a protected cluster"), "{report:?}");

    for name in [
        "resource-write-success-managed-cluster",
        "aks-new-kubernetes-version-available",
        "scheduled-maintenance-completed",
    ] {
        let report = world.handle(&event(name), "2026-11-22T09:00:00Z").await.unwrap();
        assert!(report.ignored.is_some() && report.targets.is_empty(), "{name}: {report:?}");
    }
    assert!(world.bus.sent.lock().unwrap().is_empty());

    let opted_in = World::new("  preUpgrade: { on: [ResourceWriteSuccess] }");
    let report =
        opted_in.handle(&event("resource-write-success-managed-cluster"), "2026-11-22T09:00:00Z").await.unwrap();
    assert_eq!(report.requested().len(), 1, "{report:?}");
}

#[tokio::test]
async fn maintenance_notices_schedule_one_backup_before_the_maintenance() {
    let world = World::new("");
    let week = world.handle(&event("scheduled-maintenance-scheduled-7d"), "2024-04-09T22:17:13Z").await.unwrap();
    let [(_, TargetOutcome::Requested { backup_id, at: Some(at) })] = week.targets.as_slice() else {
        panic!("{week:?}")
    };
    assert_eq!(*at, t("2024-04-16T20:17:12.103268606Z"), "scheduledTime minus the 2h lead");
    let day = world.handle(&event("scheduled-maintenance-scheduled-24h"), "2024-04-15T22:17:13Z").await.unwrap();
    assert_eq!(
        day.targets,
        [("nightly.prod".to_owned(), TargetOutcome::AlreadyHandled { backup_id: backup_id.clone() })]
    );
    assert_eq!(world.bus.requests().len(), 1);

    // The scheduled backup ran and committed; the Started notice finds it fresh.
    world.committed_backup(backup_id.as_str(), "2024-04-16T20:17:30Z").await;
    let started = world.handle(&event("scheduled-maintenance-started"), "2024-04-16T22:17:13Z").await.unwrap();
    assert!(matches!(started.targets.as_slice(), [(_, TargetOutcome::Fresh { .. })]), "{started:?}");
    assert_eq!(world.bus.requests().len(), 1);
}

#[tokio::test]
async fn a_late_maintenance_notice_requests_at_once() {
    let world = World::new("");
    let report = world.handle(&event("scheduled-maintenance-scheduled-24h"), "2024-04-16T21:00:00Z").await.unwrap();
    assert!(matches!(report.targets.as_slice(), [(_, TargetOutcome::Requested { at: None, .. })]), "{report:?}");
}

#[tokio::test]
async fn a_rolling_result_is_recorded_on_the_backup_its_start_requested() {
    let world = World::new("");
    let started = world.handle(&event("aks-node-pool-rolling-started"), "2023-03-29T18:00:01Z").await.unwrap();
    let backup_id = started.requested()[0].clone();
    let done = world.handle(&event("aks-node-pool-rolling-succeeded"), "2023-03-29T18:40:01Z").await.unwrap();
    assert_eq!(done.recorded.len(), 1, "{done:?}");
    assert!(done.recorded[0].contains(&format!("rolling succeeded recorded on backup {backup_id}")), "{done:?}");
    assert_eq!(world.bus.requests().len(), 1, "no backup for a result");
    let claim = world.store.get(TABLE_UPGRADE_CLAIMS, "nightly.prod", backup_id.as_str()).await.unwrap().unwrap();
    assert_eq!(claim.str("rollingOutcome"), Some("succeeded"));
    let again = world.handle(&event("aks-node-pool-rolling-succeeded"), "2023-03-29T18:41:00Z").await.unwrap();
    assert!(again.recorded[0].contains("already recorded"), "{again:?}");
}

#[tokio::test]
async fn a_bus_outage_fails_the_event_and_its_redelivery_sends_it() {
    let world = World::new("");
    world.bus.down.store(true, Ordering::SeqCst);
    let error = world.handle(&event("aks-node-pool-rolling-started"), "2023-03-29T18:00:01Z").await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    world.bus.down.store(false, Ordering::SeqCst);
    let report = world.handle(&event("aks-node-pool-rolling-started"), "2023-03-29T18:01:00Z").await.unwrap();
    assert_eq!(report.requested().len(), 1, "the claimed decision is finished: {report:?}");
}

//! Classification of the published samples (tests/fixtures/eventgrid), in both schemas.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;

const CLUSTER: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-prod/providers/microsoft.containerservice/managedclusters/aks-prod";

fn fixture(name: &str, schema: &str) -> Value {
    let path = format!("{}/../tests/fixtures/eventgrid/{name}.{schema}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

/// The fixture classified in both schemas, checked to agree.
fn both(name: &str) -> UpgradeEvent {
    let grid = classify(&parse_event(&fixture(name, "eventgrid")).unwrap()).unwrap();
    let cloud = classify(&parse_event(&fixture(name, "cloudevents")).unwrap()).unwrap();
    assert_eq!(grid, cloud, "{name}: the two schemas disagree");
    grid
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn every_sample_names_the_cluster() {
    for name in [
        "aks-new-kubernetes-version-available",
        "aks-cluster-support-ending",
        "aks-cluster-support-ended",
        "aks-node-pool-rolling-started",
        "aks-node-pool-rolling-succeeded",
        "aks-node-pool-rolling-failed",
        "resource-write-success-managed-cluster",
        "scheduled-maintenance-started",
        "scheduled-maintenance-scheduled-24h",
        "lifeboat-pre-upgrade",
    ] {
        assert_eq!(both(name).cluster.as_ref().map(ManagedClusterId::as_str), Some(CLUSTER), "{name}");
    }
}

#[test]
fn aks_announcements_carry_their_versions() {
    let available = both("aks-new-kubernetes-version-available");
    assert_eq!(available.signal.trigger(), Some(UpgradeTrigger::NewKubernetesVersionAvailable));
    assert_eq!(available.signal.versions(), (None, Some("1.20.7".to_owned())));
    let ending = both("aks-cluster-support-ending");
    assert_eq!(ending.signal.trigger(), Some(UpgradeTrigger::ClusterSupportEnding));
    assert_eq!(ending.signal.versions(), (Some("1.23.15".to_owned()), None));
    assert_eq!(both("aks-cluster-support-ended").signal.trigger(), Some(UpgradeTrigger::ClusterSupportEnded));
}

#[test]
fn node_pool_rolling_starts_trigger_and_results_do_not() {
    let started = both("aks-node-pool-rolling-started");
    assert_eq!(
        started.signal,
        Signal::NodePoolRolling { node_pool: Some("nodepool1".into()), phase: RollingPhase::Started }
    );
    assert_eq!(started.signal.trigger(), Some(UpgradeTrigger::NodePoolRollingStarted));
    for (name, phase) in [
        ("aks-node-pool-rolling-succeeded", RollingPhase::Succeeded),
        ("aks-node-pool-rolling-failed", RollingPhase::Failed),
    ] {
        let result = both(name);
        assert_eq!(result.signal, Signal::NodePoolRolling { node_pool: Some("nodepool1".into()), phase });
        assert_eq!(result.signal.trigger(), None, "{name}");
    }
}

#[test]
fn only_arm_writes_to_a_managed_cluster_count() {
    let write = both("resource-write-success-managed-cluster");
    assert_eq!(write.signal.trigger(), Some(UpgradeTrigger::ResourceWriteSuccess));
    let storage = both("resource-write-success-storage-account");
    assert!(matches!(storage.signal, Signal::Irrelevant { .. }), "{storage:?}");
    assert_eq!(storage.cluster, None);
}

#[test]
fn maintenance_notices_carry_status_and_scheduled_time() {
    let started = both("scheduled-maintenance-started");
    let Signal::Maintenance { status, scheduled_time, maintenance_id, details } = &started.signal else {
        panic!("{started:?}");
    };
    assert_eq!(status, &MaintenanceStatus::Started);
    assert_eq!(*scheduled_time, Some(t("2024-04-16T22:17:12.103268606Z")));
    assert_eq!(maintenance_id.as_deref(), Some("bbe82027-0444-4f73-897a-0bbfe3af66f1"));
    assert_eq!(details.as_deref(), Some("Upgrade cluster to 1.30.3"));
    assert_eq!(started.signal.trigger(), Some(UpgradeTrigger::ScheduledMaintenance));
    let notice = both("scheduled-maintenance-scheduled-7d");
    assert!(matches!(notice.signal, Signal::Maintenance { status: MaintenanceStatus::Scheduled, .. }));
    assert_eq!(notice.signal.trigger(), Some(UpgradeTrigger::ScheduledMaintenance));
    let done = both("scheduled-maintenance-completed");
    assert!(
        matches!(&done.signal, Signal::Maintenance { status: MaintenanceStatus::Other(s), .. } if s == "Completed")
    );
    assert_eq!(done.signal.trigger(), None);
}

#[test]
fn the_pipeline_event_carries_both_versions() {
    let event = both("lifeboat-pre-upgrade");
    assert_eq!(event.id, "pipeline-run-8812-attempt-1");
    assert_eq!(event.signal.versions(), (Some("1.29.4".to_owned()), Some("1.30.3".to_owned())));
}

#[test]
fn unknown_types_are_irrelevant_and_malformed_data_is_an_error() {
    let blob = json!({"id": "b", "eventType": "Microsoft.Storage.BlobCreated", "subject": "/x", "data": {}});
    assert!(matches!(classify(&parse_event(&blob).unwrap()).unwrap().signal, Signal::Irrelevant { .. }));
    let bad = json!({"id": "p", "eventType": "Lifeboat.PreUpgrade", "data": {"targetVersion": 130}});
    assert_eq!(
        classify(&parse_event(&bad).unwrap()),
        Err(EventError::InvalidField { field: "data.targetVersion".into(), problem: "not a string".into() })
    );
    let mut no_status = fixture("scheduled-maintenance-started", "eventgrid");
    no_status["data"]["resourceInfo"]["properties"]["eventStatus"] = Value::Null;
    assert_eq!(
        classify(&parse_event(&no_status).unwrap()),
        Err(EventError::MissingField("data.resourceInfo.properties.eventStatus"))
    );
}

//! The workflow on SQLite state and a fake cluster: orphans, drills, an unreachable cluster.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::adapters::sqlite::SqliteStateStore;
use crate::domain::ids::BackupId;
use crate::domain::messages::{Alert, AlertState, BackupReason, RestorePhase, Severity};
use crate::domain::names::PolicyName;
use crate::domain::records::{BackupRecord, BackupState};
use crate::domain::restore_request::RestoreRequest;
use crate::ports::cluster::{ApiResourceInfo, Cluster as ClusterApi, ClusterError, ExecOutput, ListPage};
use crate::ports::{AlertSinkError, ClusterConnector};

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
  rpo: 26h
  retention: { keepLast: 3 }
"#;

/// A cluster serving one labelled VolumeSnapshot per backup id given; or unreachable.
struct FakeCluster(Option<Vec<&'static str>>);

fn snapshot_api() -> ApiResourceInfo {
    ApiResourceInfo {
        group: "snapshot.storage.k8s.io".into(),
        version: "v1".into(),
        resource: "volumesnapshots".into(),
        kind: "VolumeSnapshot".into(),
        namespaced: true,
        verbs: vec!["list".into()],
    }
}

#[async_trait]
impl ClusterApi for FakeCluster {
    async fn version(&self) -> Result<String, ClusterError> {
        Ok("v1.33.0".into())
    }
    async fn discover(&self) -> Result<Vec<ApiResourceInfo>, ClusterError> {
        Ok(vec![snapshot_api()])
    }
    async fn list(
        &self,
        _: &ApiResourceInfo,
        _: Option<&str>,
        selector: Option<&str>,
        _: u32,
        _: Option<&str>,
    ) -> Result<ListPage, ClusterError> {
        assert_eq!(selector, Some("lifeboat.io/backup-id"));
        let items = self.0.iter().flatten().map(|id| {
            json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                "metadata": {"namespace": "shop", "name": format!("lifeboat-{id}"), "labels": {"lifeboat.io/backup-id": id}}})
        });
        Ok(ListPage { items: items.collect(), continue_token: None })
    }
    async fn get(&self, _: &ApiResourceInfo, _: Option<&str>, _: &str) -> Result<Option<Value>, ClusterError> {
        Ok(None)
    }
    async fn create(&self, _: &ApiResourceInfo, _: Option<&str>, o: &Value) -> Result<Value, ClusterError> {
        Ok(o.clone())
    }
    async fn replace(&self, _: &ApiResourceInfo, _: Option<&str>, o: &Value) -> Result<Value, ClusterError> {
        Ok(o.clone())
    }
    async fn delete(&self, _: &ApiResourceInfo, _: Option<&str>, _: &str) -> Result<bool, ClusterError> {
        Ok(false)
    }
    async fn exec(
        &self,
        _: &str,
        pod: &str,
        _: &str,
        _: &[String],
        _: std::time::Duration,
    ) -> Result<ExecOutput, ClusterError> {
        Err(ClusterError::NotFound { what: format!("pod {pod}") })
    }
}

struct FakeConnector(Option<Vec<&'static str>>);

#[async_trait]
impl ClusterConnector for FakeConnector {
    async fn connect(&self, _: &Cluster) -> Result<Arc<dyn ClusterApi>, ClusterError> {
        match &self.0 {
            Some(ids) => Ok(Arc::new(FakeCluster(Some(ids.clone())))),
            None => Err(ClusterError::Unavailable { what: "connect".into(), message: "no route".into() }),
        }
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Alert>>);

#[async_trait]
impl AlertSink for Recorder {
    async fn notify(&self, alert: &Alert) -> Result<(), AlertSinkError> {
        self.0.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

async fn committed(state: &dyn StateStore, id: &str) {
    let mut r = BackupRecord::requested(
        BackupId::parse(id).unwrap(),
        ClusterName::new("c1").unwrap(),
        PolicyName::new("nightly").unwrap(),
        BackupReason::OnDemand { request_id: id.into(), requested_by: None },
        now() - chrono::Duration::hours(1),
    );
    r.state = BackupState::Committed;
    catalog::claim(state, &r).await.unwrap();
}

async fn run_once(state: &dyn StateStore, connector: &FakeConnector, sink: &Recorder) -> StalenessReport {
    let config = Config::from_sources([("c", CONFIG)]).unwrap();
    let deps = Deps { state, clusters: connector, sink, now: now() };
    run(&config, &deps, &StalenessSettings::default()).await
}

#[tokio::test]
async fn orphan_snapshots_fire_the_cluster_alert() {
    let state = SqliteStateStore::in_memory().unwrap();
    committed(&state, "b-1").await;
    let sink = Recorder::default();
    let report = run_once(&state, &FakeConnector(Some(vec!["b-1", "b-gone"])), &sink).await;
    assert_eq!(report.failures, Vec::<String>::new());
    let alerts = sink.0.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].severity, Severity::Warning);
    assert!(
        alerts[0].summary.contains("1 VolumeSnapshot(s) have no catalog entry: shop/lifeboat-b-gone"),
        "{}",
        alerts[0].summary
    );
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_warning_not_a_failure() {
    let state = SqliteStateStore::in_memory().unwrap();
    committed(&state, "b-1").await;
    let sink = Recorder::default();
    let report = run_once(&state, &FakeConnector(None), &sink).await;
    assert!(report.failures.is_empty() && report.notified.is_empty(), "{report:?}");
    assert_eq!(report.warnings.len(), 1);
    assert!(report.warnings[0].contains("orphan scan skipped"), "{report:?}");
}

#[tokio::test]
async fn a_failed_drill_is_critical_and_resolves_after_a_good_one() {
    let state = SqliteStateStore::in_memory().unwrap();
    committed(&state, "b-1").await;
    let request: RestoreRequest = serde_json::from_value(json!({"schemaVersion": 1, "requestId": "drill-1",
        "requestedBy": "drill", "sourceCluster": "c1", "backup": {"kind": "latest"}, "targetCluster": "c1"}))
    .unwrap();
    let mut drill = crate::domain::records::RestoreRecord::new(request, now() - chrono::Duration::hours(2));
    drill.finish(RestorePhase::Failed, Some("pods never became ready".into()), now() - chrono::Duration::hours(1));
    let (_, etag, _) = crate::restores::claim(&state, &drill).await.unwrap();
    let sink = Recorder::default();
    let connector = FakeConnector(Some(vec![]));
    run_once(&state, &connector, &sink).await;
    {
        let alerts = sink.0.lock().unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!((alerts[0].state, alerts[0].severity), (AlertState::Firing, Severity::Critical));
        assert!(alerts[0].summary.contains("pods never became ready"), "{}", alerts[0].summary);
    }
    drill.finish(RestorePhase::Completed, None, now() - chrono::Duration::minutes(90));
    crate::restores::save(&state, &drill, &etag).await.unwrap();
    run_once(&state, &connector, &sink).await;
    let alerts = sink.0.lock().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!((alerts[1].state, alerts[1].notification), (AlertState::Resolved, 2));
}

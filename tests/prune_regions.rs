//! Retention end to end, in both regions and the cluster: on a controllable clock, hourly
//! backups are made by the real chain (`schedule_tick` → `backup` → `snapshot_check` against
//! the strict test API server) and replicated by the real `copy` handler (embedded defaults:
//! local directories for both regions); then the `prune` timer removes exactly what the
//! primary retention (`keepLast: 3`) and the replica retention (`keepLast: 2`) say: the
//! VolumeSnapshots and their disk snapshots in the cluster, the blobs in both regions, the disk
//! snapshot copies in the second region, and the catalog entries last. A second run removes
//! nothing.
//!
//! Disk snapshot copies go through a fake `SnapshotCopier` that keeps the set of live copies
//! (ARM cannot run here; `tests/azure_arm.rs` tests ARM's copy and delete against a fake ARM).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeboat::app::{AppState, DataDir, Settings, embedded_with_clock};
use lifeboat::handlers::{self, MessageInput, Outcome, TimerInput, TriggerInput};
use lifeboat_shared::adapters::local_dir::LocalDirObjectStore;
use lifeboat_shared::adapters::sqlite::SqliteQueue;
use lifeboat_shared::catalog;
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::names::{ClusterName, PolicyName};
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::domain::records::BackupState;
use lifeboat_shared::ports::{
    CopyProgress, ManualClock, ObjectStore, QueueReceiver, ReceivedMessage, SnapshotCopier, SnapshotCopyError,
};
use lifeboat_test_apiserver::{Options, Running, TestApiServer};

const REGION: &str = "northeurope";

/// Disk snapshot copies, done on their first look; the set of those that exist.
#[derive(Default)]
struct SnapshotCopies {
    live: Mutex<BTreeSet<String>>,
}

impl SnapshotCopies {
    fn live(&self) -> BTreeSet<String> {
        self.live.lock().expect("lock").clone()
    }
}

#[async_trait]
impl SnapshotCopier for SnapshotCopies {
    async fn start_copy(&self, source_handle: &str, target_region: &str) -> Result<String, SnapshotCopyError> {
        let handle = format!("{source_handle}-copy-{target_region}");
        self.live.lock().expect("lock").insert(handle.clone());
        Ok(handle)
    }
    async fn progress(&self, replica_handle: &str) -> Result<CopyProgress, SnapshotCopyError> {
        match self.live.lock().expect("lock").contains(replica_handle) {
            true => Ok(CopyProgress::Done),
            false => Err(SnapshotCopyError::NotFound { what: replica_handle.to_owned() }),
        }
    }
    async fn delete(&self, replica_handle: &str) -> Result<bool, SnapshotCopyError> {
        Ok(self.live.lock().expect("lock").remove(replica_handle))
    }
}

struct World {
    server: Running,
    app: AppState,
    queue: Arc<SqliteQueue>,
    clock: Arc<ManualClock>,
    copies: Arc<SnapshotCopies>,
    dir: tempfile::TempDir,
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
}

async fn world() -> World {
    let server = TestApiServer::start(Options { snapshot_delay: Duration::from_millis(100), ..Options::default() })
        .await
        .expect("test API server");
    server.seed_snapshot_crds().await.expect("snapshot CRDs");
    server.seed_sample_app("shop").await.expect("sample app");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let yaml = format!(
        r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: prod }}
spec: {{ region: westeurope, kubeconfig: {{ path: "{}" }} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{ name: hourly }}
spec:
  clusters: [prod]
  schedule: "0 0 * * * *"
  rpo: 2h
  retention: {{ keepLast: 3 }}
  replication: {{ region: {REGION}, rpo: 4h, retention: {{ keepLast: 2 }} }}
"#,
        kubeconfig.display()
    );
    let config = Config::from_sources([("policy.yaml", yaml.as_str())]).expect("config");
    let clock = Arc::new(ManualClock::new(t("2026-11-22T10:00:30Z")));
    let mut settings = Settings::default();
    settings.backup.snapshot_poll = Duration::from_secs(2);
    let (mut app, queue) =
        embedded_with_clock(&DataDir::new(&dir.path().join("data")), config, settings, clock.clone()).expect("app");
    // The embedded replica (a local directory, streaming copies), with disk snapshot copies.
    let copies = Arc::new(SnapshotCopies::default());
    let mut replica = app.replicas.first().expect("a replica for the policy's region").clone();
    replica.snapshots = Some(copies.clone());
    app.replicas = Arc::new(vec![replica]);
    World { server, app, queue, clock, copies, dir }
}

async fn take(w: &World, queue: &str) -> Vec<ReceivedMessage> {
    let batch = w.queue.receive(queue, 10).await.expect("receive");
    for m in &batch {
        w.queue.complete(m).await.expect("complete");
    }
    batch
}

async fn run(w: &World, function: &str, input: TriggerInput) -> String {
    let def = w.app.function(function).expect("function").clone();
    match handlers::dispatch(&w.app, &def, input).await.unwrap_or_else(|e| panic!("{function}: {e}")) {
        Outcome::Done { logs, .. } => logs.join("\n"),
        other => panic!("{function}: expected Done, got {other:?}"),
    }
}

async fn deliver(w: &World, function: &str, message: &ReceivedMessage) -> String {
    run(w, function, TriggerInput::Message(MessageInput::from(message))).await
}

/// The backup of the hourly slot at `slot`, made and replicated by the real handlers.
async fn hourly_backup(w: &World, slot: &str) -> BackupId {
    w.clock.set(t(slot) + chrono::Duration::seconds(30));
    run(w, "schedule_tick", TriggerInput::Timer(TimerInput::default())).await;
    let requests = take(w, "backup-requests").await;
    assert_eq!(requests.len(), 1, "one backup for the slot {slot}: {requests:?}");
    deliver(w, "backup", &requests[0]).await;
    let id = BackupId::scheduled(&PolicyName::new("hourly").expect("name"), t(slot));
    for _ in 0..30 {
        w.clock.advance(Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(120)).await; // the simulated CSI controller works in real time
        let Some(check) = take(w, "snapshot-checks").await.pop() else { continue };
        if deliver(w, "snapshot_check", &check).await.contains("committed") {
            let copy = take(w, "copy-requests").await;
            assert_eq!(copy.len(), 1, "{copy:?}");
            let copied = deliver(w, "copy", &copy[0]).await;
            assert!(copied.contains("replicated to northeurope"), "{copied}");
            return id;
        }
    }
    panic!("the backup of {slot} never committed");
}

fn cluster() -> ClusterName {
    ClusterName::new("prod").expect("name")
}

async fn blob_count(store: &dyn ObjectStore, id: &BackupId) -> usize {
    let prefix = format!("backups/prod/{id}/");
    store.list(&prefix, None, 1000).await.expect("list").objects.len()
}

/// The backup ids the cluster's VolumeSnapshots are labelled with.
fn volume_snapshot_backups(w: &World) -> BTreeSet<String> {
    let listed = w.server.store().list("snapshot.storage.k8s.io/v1", "VolumeSnapshot", None).expect("list");
    listed.iter().filter_map(|v| v["metadata"]["labels"]["lifeboat.io/backup-id"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_exactly_the_expected_backups_in_both_regions_and_the_cluster() {
    let w = world().await;
    let mut ids = Vec::new();
    for hour in 10..15 {
        ids.push(hourly_backup(&w, &format!("2026-11-22T{hour}:00:00Z")).await);
    }
    let replica_store =
        LocalDirObjectStore::open(DataDir::new(&w.dir.path().join("data")).replica(REGION)).expect("replica directory");
    let mut records = Vec::new();
    for id in &ids {
        let (record, _) = catalog::get(w.app.state.as_ref(), &cluster(), id).await.expect("catalog").expect("record");
        assert_eq!(record.state, BackupState::Replicated, "{id}");
        assert!(!record.snapshots.is_empty(), "{id} has volume snapshots");
        assert!(blob_count(&replica_store, id).await > 0);
        records.push(record);
    }
    let handles = |i: usize| -> Vec<String> { records[i].snapshots.iter().filter_map(|s| s.handle.clone()).collect() };
    let copies_of = |i: usize| -> Vec<String> {
        records[i].replica.as_ref().expect("replica").snapshots.iter().filter_map(|s| s.handle.clone()).collect()
    };
    assert_eq!(w.copies.live().len(), (0..5).map(|i| copies_of(i).len()).sum::<usize>(), "every snapshot copied");
    assert_eq!(volume_snapshot_backups(&w).len(), 5);

    // An hour on: keepLast 3 keeps 12:00–14:00 and removes 10:00 and 11:00 with their replicas;
    // the replicas of the kept ones follow keepLast 2: 12:00's goes alone.
    w.clock.set(t("2026-11-22T15:00:30Z"));
    let logs = run(&w, "prune", TriggerInput::Timer(TimerInput::default())).await;
    assert!(logs.contains("prune: kept 3, removed 2; replicas: kept 2, removed 3"), "{logs}");

    let primary = w.app.objects.as_ref();
    let catalog_ids: BTreeSet<String> = catalog::list(w.app.state.as_ref(), &cluster())
        .await
        .expect("list")
        .iter()
        .map(|r| r.backup_id.to_string())
        .collect();
    let kept: BTreeSet<String> = ids[2..].iter().map(ToString::to_string).collect();
    assert_eq!(catalog_ids, kept, "the catalog keeps exactly 12:00–14:00");
    assert_eq!(volume_snapshot_backups(&w), kept, "the cluster keeps exactly their VolumeSnapshots");
    for (i, id) in ids.iter().enumerate() {
        let (primary_kept, replica_kept) = (i >= 2, i >= 3);
        assert_eq!(blob_count(primary, id).await > 0, primary_kept, "primary blobs of {id}");
        assert_eq!(blob_count(&replica_store, id).await > 0, replica_kept, "replica blobs of {id}");
        for handle in handles(i) {
            assert_eq!(
                lifeboat_test_apiserver::cloud_snapshot_deleted(&handle),
                !primary_kept,
                "disk snapshot {handle}"
            );
        }
        for copy in copies_of(i) {
            assert_eq!(w.copies.live().contains(&copy), replica_kept, "snapshot copy {copy}");
        }
    }
    let (noon, _) = catalog::get(w.app.state.as_ref(), &cluster(), &ids[2]).await.expect("catalog").expect("record");
    let replica = noon.replica.expect("replica");
    assert_eq!(replica.removed_at, Some(t("2026-11-22T15:00:30Z")), "{replica:?}");
    assert_eq!(noon.state, BackupState::Replicated, "the primary of 12:00 is untouched");

    // The timer fires again (or the host redelivers): nothing more goes.
    let again = run(&w, "prune", TriggerInput::Timer(TimerInput::default())).await;
    assert!(again.contains("prune: kept 3, removed 0; replicas: kept 2, removed 0"), "{again}");
    assert_eq!(volume_snapshot_backups(&w), kept);
}

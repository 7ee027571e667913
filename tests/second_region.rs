//! The second region end to end, through the real handlers on a controllable clock. Hourly
//! backups are made by the real chain (`schedule_tick` → `backup` → `snapshot_check` against
//! the strict test API server) and replicated by the real `copy` handler (embedded defaults:
//! local directories for both regions). Then:
//!
//! - the `prune` timer removes exactly what the primary retention (`keepLast: 3`) and the
//!   replica retention (`keepLast: 2`) say: the VolumeSnapshots and their disk snapshots in the
//!   cluster, the blobs in both regions, the disk snapshot copies in the second region, the
//!   catalog entries last; a second run removes nothing;
//! - with the primary region's storage down, a restore from the copy (`fromRegion`) into a
//!   cluster in the second region reads the replica and brings the volumes back from the
//!   snapshot copies there.
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
use lifeboat_shared::domain::messages::{Message, RestoreRequest, decode, encode};
use lifeboat_shared::domain::names::{ClusterName, PolicyName};
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::domain::records::BackupState;
use lifeboat_shared::ports::{
    ByteStream, CopyProgress, ManualClock, ObjectMeta, ObjectPage, ObjectStore, ObjectStoreError, OutgoingMessage,
    PutOptions, QueueReceiver, ReceivedMessage, SnapshotCopier, SnapshotCopyError,
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
    /// A cluster in the second region, restored into.
    dr: Running,
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
    let dr = TestApiServer::start(Options { snapshot_delay: Duration::from_millis(100), ..Options::default() })
        .await
        .expect("test API server");
    dr.seed_snapshot_crds().await.expect("snapshot CRDs");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let dr_kubeconfig = dir.path().join("dr.kubeconfig");
    dr.write_kubeconfig(&dr_kubeconfig).expect("kubeconfig");
    let yaml = format!(
        r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: prod }}
spec: {{ region: westeurope, kubeconfig: {{ path: "{}" }} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: dr }}
spec: {{ region: {REGION}, kubeconfig: {{ path: "{}" }} }}
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
  selection: {{ includeNamespaces: [shop] }}
  restores:
  - {{ clusters: [dr], namespaces: [shop], clusterScoped: true }}
"#,
        kubeconfig.display(),
        dr_kubeconfig.display()
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
    World { server, dr, app, queue, clock, copies, dir }
}

async fn take(w: &World, queue: &str) -> Vec<ReceivedMessage> {
    let batch = w.queue.receive(queue, 10).await.expect("receive");
    for m in &batch {
        w.queue.complete(m).await.expect("complete");
    }
    batch
}

async fn run(w: &World, function: &str, input: TriggerInput) -> String {
    match dispatch(&w.app, function, input).await {
        Outcome::Done { logs, .. } => logs.join("\n"),
        other => panic!("{function}: expected Done, got {other:?}"),
    }
}

async fn dispatch(app: &AppState, function: &str, input: TriggerInput) -> Outcome {
    let def = app.function(function).expect("function").clone();
    handlers::dispatch(app, &def, input).await.unwrap_or_else(|e| panic!("{function}: {e}"))
}

/// Puts a restore request (`fields` over a restore of backup `id` of prod into dr) on
/// `restore-requests` and delivers it to `app`'s handler.
async fn restore(w: &World, app: &AppState, id: &BackupId, fields: serde_json::Value) -> (RestoreRequest, Outcome) {
    let mut body = serde_json::json!({
        "schemaVersion": 1, "requestId": format!("req-{id}"), "sourceCluster": "prod",
        "backup": {"kind": "id", "backupId": id.as_str()}, "targetCluster": "dr",
    });
    if let (Some(map), serde_json::Value::Object(fields)) = (body.as_object_mut(), fields) {
        map.extend(fields);
    }
    let request: RestoreRequest = decode(&serde_json::to_vec(&body).expect("json")).expect("a valid request");
    let message = OutgoingMessage::json(RestoreRequest::QUEUE.name(), request.message_id(), encode(&request));
    w.app.bus.send(message).await.expect("send");
    let batch = take(w, "restore-requests").await;
    assert_eq!(batch.len(), 1, "{batch:?}");
    let outcome = dispatch(app, "restore", TriggerInput::Message(MessageInput::from(&batch[0]))).await;
    (request, outcome)
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

    // 12:00's copy is gone: a restore from it is refused, saying so.
    let (_, refused) = restore(&w, &w.app, &ids[2], serde_json::json!({"fromRegion": REGION})).await;
    match refused {
        Outcome::DeadLetter { reason, description } => {
            assert_eq!(reason, "CopyUnavailable");
            assert!(description.contains("removed by retention"), "{description}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The timer fires again (or the host redelivers): nothing more goes.
    let again = run(&w, "prune", TriggerInput::Timer(TimerInput::default())).await;
    assert!(again.contains("prune: kept 3, removed 0; replicas: kept 2, removed 0"), "{again}");
    assert_eq!(volume_snapshot_backups(&w), kept);
}

/// The primary region's storage during a regional outage: every request fails.
struct RegionDown;

fn down(key: &str) -> ObjectStoreError {
    ObjectStoreError::Unavailable {
        operation: "request",
        key: key.to_owned(),
        transient: true,
        source: "westeurope is down".into(),
    }
}

#[async_trait]
impl ObjectStore for RegionDown {
    async fn put(&self, key: &str, _: ByteStream, _: PutOptions) -> Result<ObjectMeta, ObjectStoreError> {
        Err(down(key))
    }
    async fn get(
        &self,
        key: &str,
        _: Option<std::ops::Range<u64>>,
    ) -> Result<(ObjectMeta, ByteStream), ObjectStoreError> {
        Err(down(key))
    }
    async fn head(&self, key: &str) -> Result<ObjectMeta, ObjectStoreError> {
        Err(down(key))
    }
    async fn list(&self, prefix: &str, _: Option<&str>, _: usize) -> Result<ObjectPage, ObjectStoreError> {
        Err(down(prefix))
    }
    async fn delete(&self, key: &str) -> Result<bool, ObjectStoreError> {
        Err(down(key))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_primary_region_down_a_restore_from_the_copy_brings_the_namespace_back_in_the_second_region() {
    let w = world().await;
    let id = hourly_backup(&w, "2026-11-22T10:00:00Z").await;
    let (record, _) = catalog::get(w.app.state.as_ref(), &cluster(), &id).await.expect("catalog").expect("record");
    let copies: BTreeSet<String> =
        record.replica.as_ref().expect("replica").snapshots.iter().filter_map(|s| s.handle.clone()).collect();
    assert!(!copies.is_empty(), "the volumes' snapshots were copied");

    // Westeurope's storage goes down; the catalog (here SQLite) still answers.
    let mut app = w.app.clone();
    app.objects = Arc::new(RegionDown);

    // The primary copy cannot be read: a transient failure, retried by the host.
    let def = app.function("restore").expect("function").clone();
    let request = serde_json::json!({
        "schemaVersion": 1, "requestId": "req-primary", "sourceCluster": "prod",
        "backup": {"kind": "id", "backupId": id.as_str()}, "targetCluster": "dr", "dryRun": true,
    });
    let primary: RestoreRequest = decode(&serde_json::to_vec(&request).expect("json")).expect("request");
    let message = OutgoingMessage::json(RestoreRequest::QUEUE.name(), primary.message_id(), encode(&primary));
    w.app.bus.send(message).await.expect("send");
    let batch = take(&w, "restore-requests").await;
    let err = handlers::dispatch(&app, &def, TriggerInput::Message(MessageInput::from(&batch[0])))
        .await
        .expect_err("the primary copy is unreachable");
    assert!(format!("{err:?}").contains("westeurope is down"), "{err:?}");

    // From the copy: the namespace comes back in dr, its volume from the snapshot copy there.
    let (request, outcome) = restore(
        &w,
        &app,
        &id,
        serde_json::json!({"fromRegion": REGION, "clusterScoped": true, "wait": {"deadline": "30s"}}),
    )
    .await;
    match &outcome {
        Outcome::Done { logs, .. } => {
            let record =
                lifeboat_shared::restores::get(w.app.state.as_ref(), &request.target_cluster, &request.restore_id())
                    .await
                    .expect("records")
                    .expect("a restore record")
                    .0;
            assert!(logs.join(" ").contains("completed"), "{logs:?}: {:?}", record.failures);
        }
        other => panic!("expected the restore to finish, got {other:?}"),
    }
    let config_maps = w.dr.store().list("v1", "ConfigMap", Some("shop")).expect("list");
    assert!(config_maps.iter().any(|c| c["metadata"]["name"] == "web-config"), "{config_maps:?}");
    let claims = w.dr.store().list("v1", "PersistentVolumeClaim", Some("shop")).expect("list");
    assert!(!claims.is_empty());
    for claim in &claims {
        let name = claim["metadata"]["name"].as_str().expect("name");
        let handle = restored_handle(&w.dr, "shop", name);
        assert!(copies.contains(&handle), "claim {name} comes from a copy in {REGION}, not {handle}");
    }
    // The results are written beside what was read.
    let replica_store =
        LocalDirObjectStore::open(DataDir::new(&w.dir.path().join("data")).replica(REGION)).expect("replica directory");
    let results = format!("restores/dr/{}", request.restore_id());
    let listed = replica_store.list(&results, None, 10).await.expect("list");
    assert!(!listed.objects.is_empty(), "results under {results}");
}

/// The snapshot handle a restored PVC's data comes from: PVC → VolumeSnapshot → content.
fn restored_handle(server: &Running, namespace: &str, pvc: &str) -> String {
    let s = server.store();
    let claim = s.get("v1", "PersistentVolumeClaim", namespace, pvc).expect("PVC restored");
    assert_eq!(claim["spec"]["dataSource"]["kind"], "VolumeSnapshot", "{claim}");
    let vs_name = claim["spec"]["dataSource"]["name"].as_str().expect("a snapshot name");
    let vs = s.get("snapshot.storage.k8s.io/v1", "VolumeSnapshot", namespace, vs_name).expect("VolumeSnapshot");
    let content = vs["spec"]["source"]["volumeSnapshotContentName"].as_str().expect("pre-provisioned content");
    let vsc = s.get("snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", "", content).expect("content");
    vsc["spec"]["source"]["snapshotHandle"].as_str().expect("handle").to_owned()
}

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

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lifeboat::app::{AppState, DataDir};
use lifeboat::handlers::{self, MessageInput, Outcome, TimerInput, TriggerInput};
use lifeboat_shared::adapters::local_dir::LocalDirObjectStore;
use lifeboat_shared::catalog;
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::messages::{Message, RestoreRequest, decode, encode};
use lifeboat_shared::domain::names::{ClusterName, PolicyName};
use lifeboat_shared::domain::records::BackupState;
use lifeboat_shared::ports::{
    ByteStream, CopyProgress, ObjectMeta, ObjectPage, ObjectStore, ObjectStoreError, OutgoingMessage, PutOptions,
    SnapshotCopier, SnapshotCopyError,
};
use support::world::{World, WorldBuilder, api_server, logs, restored_handle, t};

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

/// The world: `prod` (the sample app in `shop`) in westeurope, `dr` in the second region, the
/// policy replicating there; the embedded replica (a local directory, streaming copies) gets
/// disk snapshot copies.
async fn world() -> (World, Arc<SnapshotCopies>) {
    let prod = api_server(Duration::from_millis(100)).await;
    prod.seed_sample_app("shop").await.expect("sample app");
    let mut w = WorldBuilder::new()
        .cluster("prod", prod)
        .cluster_in("dr", api_server(Duration::from_millis(100)).await, REGION)
        .retention("{ keepLast: 3 }")
        .policy(&format!(
            "replication: {{ region: {REGION}, rpo: 4h, retention: {{ keepLast: 2 }} }}\n\
             selection: {{ includeNamespaces: [shop] }}\n\
             restores:\n- {{ clusters: [dr], namespaces: [shop], clusterScoped: true }}"
        ))
        .build();
    let copies = Arc::new(SnapshotCopies::default());
    let mut replica = w.app.replicas.first().expect("a replica for the policy's region").clone();
    replica.snapshots = Some(copies.clone());
    w.app.replicas = Arc::new(vec![replica]);
    (w, copies)
}

async fn dispatch(app: &AppState, function: &str, input: TriggerInput) -> Outcome {
    let def = app.function(function).expect("function").clone();
    handlers::dispatch(app, &def, input).await.unwrap_or_else(|e| panic!("{function}: {e}"))
}

async fn prune(w: &World) -> String {
    logs(&dispatch(&w.app, "prune", TriggerInput::Timer(TimerInput::default())).await)
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
    let batch = w.take("restore-requests").await;
    assert_eq!(batch.len(), 1, "{batch:?}");
    let outcome = dispatch(app, "restore", TriggerInput::Message(MessageInput::from(&batch[0]))).await;
    (request, outcome)
}

/// The backup of the hourly slot at `slot`, made and replicated by the real handlers.
async fn hourly_backup(w: &World, slot: &str) -> BackupId {
    w.clock.set(t(slot) + chrono::Duration::seconds(30));
    let request = w.request_backup().await;
    w.deliver("backup", &request).await;
    w.commit().await;
    let copy = w.take_one("copy-requests").await;
    let copied = logs(&w.deliver("copy", &copy).await);
    assert!(copied.contains("replicated to northeurope"), "{copied}");
    BackupId::scheduled(&PolicyName::new("hourly").expect("name"), t(slot))
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
    let listed = w.server("prod").store().list("snapshot.storage.k8s.io/v1", "VolumeSnapshot", None).expect("list");
    listed.iter().filter_map(|v| v["metadata"]["labels"]["lifeboat.io/backup-id"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_exactly_the_expected_backups_in_both_regions_and_the_cluster() {
    let (w, copies) = world().await;
    let mut ids = Vec::new();
    for hour in 10..15 {
        ids.push(hourly_backup(&w, &format!("2026-11-22T{hour}:00:00Z")).await);
    }
    let replica_store = LocalDirObjectStore::open(DataDir::new(&w.data()).replica(REGION)).expect("replica directory");
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
    assert_eq!(copies.live().len(), (0..5).map(|i| copies_of(i).len()).sum::<usize>(), "every snapshot copied");
    assert_eq!(volume_snapshot_backups(&w).len(), 5);

    // An hour on: keepLast 3 keeps 12:00–14:00 and removes 10:00 and 11:00 with their replicas;
    // the replicas of the kept ones follow keepLast 2: 12:00's goes alone.
    w.clock.set(t("2026-11-22T15:00:30Z"));
    let logs = prune(&w).await;
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
            assert_eq!(copies.live().contains(&copy), replica_kept, "snapshot copy {copy}");
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
    let again = prune(&w).await;
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
    let (w, _) = world().await;
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
    let batch = w.take("restore-requests").await;
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
    let config_maps = w.server("dr").store().list("v1", "ConfigMap", Some("shop")).expect("list");
    assert!(config_maps.iter().any(|c| c["metadata"]["name"] == "web-config"), "{config_maps:?}");
    let claims = w.server("dr").store().list("v1", "PersistentVolumeClaim", Some("shop")).expect("list");
    assert!(!claims.is_empty());
    for claim in &claims {
        let name = claim["metadata"]["name"].as_str().expect("name");
        let handle = restored_handle(w.server("dr"), "shop", name);
        assert!(copies.contains(&handle), "claim {name} comes from a copy in {REGION}, not {handle}");
    }
    // The results are written beside what was read.
    let replica_store = LocalDirObjectStore::open(DataDir::new(&w.data()).replica(REGION)).expect("replica directory");
    let results = format!("restores/dr/{}", request.restore_id());
    let listed = replica_store.list(&results, None, 10).await.expect("list");
    assert!(!listed.objects.is_empty(), "results under {results}");
}

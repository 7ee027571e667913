//! The `copy` function end to end: a backup made by the real chain (`schedule_tick` → `backup`
//! → `snapshot_check`, against the strict test API server) is copied to a second region
//! through the real handler and queues,
//! - on Azurite, from the development account to a second account (`AZURITE_ACCOUNTS`),
//!   server-side with Copy Blob from URL and a service SAS on the source;
//! - on the embedded defaults, from the local object directory to `<data>/replica/<region>`.
//!
//! Both wrap the handler's object stores (the primary `AppState::objects` and the replica's
//! store) in a `CountingObjectStore` once the backup is committed, and read from it what the
//! `copy` deliveries moved through the handler: on Azurite no byte at all (the handler only
//! lists the backup's prefix; the catalog is in the state store, the manifest is copied
//! server-side like the rest), on the embedded defaults every byte of the backup, read and
//! written, because the streaming copier works through those same stores.
//!
//! Disk snapshots go through a fake `SnapshotCopier` (ARM cannot run here) that reports a copy
//! running on its first look and done on the next.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeboat::app::{AppState, DataDir, Settings, embedded_with_clock};
use lifeboat::handlers::{self, MessageInput, Outcome, TimerInput, TriggerInput};
use lifeboat::replica::{self, Replica};
use lifeboat_shared::adapters::azure::{
    BlobObjectCopier, BlobObjectStore, ClientSettings, SharedKeyCredential, StorageAuth,
};
use lifeboat_shared::adapters::local_dir::LocalDirObjectStore;
use lifeboat_shared::adapters::sqlite::SqliteQueue;
use lifeboat_shared::catalog;
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::names::ClusterName;
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::domain::records::{BackupRecord, BackupState};
use lifeboat_shared::domain::replica_retry::ReplicaRetryPolicy;
use lifeboat_shared::ports::object_store::{collect_bytes, stream_from_bytes};
use lifeboat_shared::ports::{
    CopyProgress, ManualClock, ObjectCopier, ObjectCopyState, ObjectFingerprint, ObjectStore, ObjectStoreError,
    PutOptions, QueueReceiver, ReceivedMessage, SnapshotCopier, SnapshotCopyError, TargetObject, Traffic,
};
use lifeboat_shared::testing::counting_object_store::{CountingObjectStore, StoreTraffic};
use lifeboat_shared::testing::counting_policy::CountingPolicy;
use lifeboat_shared::workflows::copy::SNAPSHOTS_NOT_COPIED;
use lifeboat_test_apiserver::{Options, Running, TestApiServer};
use support::azurite::{AZURITE_ACCOUNT, AZURITE_KEY, Azurite, SECOND_ACCOUNT, SECOND_KEY};

const REGION: &str = "northeurope";

struct World {
    _server: Running,
    app: AppState,
    queue: Arc<SqliteQueue>,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
}

async fn world() -> World {
    let server = TestApiServer::start(Options { snapshot_delay: Duration::from_millis(300), ..Options::default() })
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
  retention: {{ keepLast: 24 }}
  replication: {{ region: {REGION}, rpo: 4h }}
"#,
        kubeconfig.display()
    );
    let config = Config::from_sources([("policy.yaml", yaml.as_str())]).expect("config");
    let clock = Arc::new(ManualClock::new(t("2026-11-22T10:00:30Z")));
    let mut settings = Settings::default();
    settings.backup.snapshot_poll = Duration::from_secs(2);
    settings.copy.poll = Duration::from_secs(5);
    let (app, queue) =
        embedded_with_clock(&DataDir::new(&dir.path().join("data")), config, settings, clock.clone()).expect("app");
    World { _server: server, app, queue, clock, dir }
}

async fn deliver(w: &World, function: &str, message: &ReceivedMessage) -> Outcome {
    let def = w.app.function(function).expect("function").clone();
    let input = MessageInput::from(message);
    handlers::dispatch(&w.app, &def, TriggerInput::Message(input)).await.unwrap_or_else(|e| panic!("{function}: {e}"))
}

async fn take(w: &World, queue: &str) -> Vec<ReceivedMessage> {
    let batch = w.queue.receive(queue, 10).await.expect("receive");
    for m in &batch {
        w.queue.complete(m).await.expect("complete");
    }
    batch
}

async fn take_one(w: &World, queue: &str) -> ReceivedMessage {
    let mut batch = take(w, queue).await;
    assert_eq!(batch.len(), 1, "exactly one message on {queue}: {batch:?}");
    batch.remove(0)
}

fn logs(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Done { logs, .. } => logs.join("\n"),
        other => panic!("expected Done, got {other:?}"),
    }
}

/// tick → backup → checks until committed; the backup id and its `copy-requests` message.
async fn committed_backup(w: &World) -> (BackupId, ReceivedMessage) {
    let tick = w.app.function("schedule_tick").expect("tick").clone();
    handlers::dispatch(&w.app, &tick, TriggerInput::Timer(TimerInput::default())).await.expect("tick");
    let request = take_one(w, "backup-requests").await;
    deliver(w, "backup", &request).await;
    for _ in 0..20 {
        w.clock.advance(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(150)).await; // the simulated CSI controller works in real time
        let Some(check) = take(w, "snapshot-checks").await.pop() else { continue };
        if logs(&deliver(w, "snapshot_check", &check).await).contains("committed") {
            let id = BackupId::parse("hourly-20261122t100000z").expect("id");
            return (id, take_one(w, "copy-requests").await);
        }
    }
    panic!("the backup never committed");
}

async fn record(w: &World, id: &BackupId) -> BackupRecord {
    let cluster = ClusterName::new("prod").expect("name");
    catalog::get(w.app.state.as_ref(), &cluster, id).await.expect("catalog").expect("record").0
}

async fn read(store: &dyn ObjectStore, key: &str) -> Vec<u8> {
    let (_, body) = store.get(key, None).await.unwrap_or_else(|e| panic!("{key}: {e}"));
    collect_bytes(body).await.expect("read")
}

async fn keys(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    store.list(prefix, None, 1000).await.expect("list").objects.into_iter().map(|o| o.key).collect()
}

/// Every object of the backup is in the replica, byte for byte.
async fn assert_same_bytes(source: &dyn ObjectStore, target: &dyn ObjectStore, prefix: &str) {
    let source_keys = keys(source, prefix).await;
    assert!(source_keys.iter().any(|k| k.ends_with("manifest.json")), "{source_keys:?}");
    assert_eq!(keys(target, prefix).await, source_keys, "the replica holds the same objects");
    for key in &source_keys {
        assert!(read(source, key).await == read(target, key).await, "{key} differs in the replica");
    }
}

/// Counts the copies started per key, around the real copier.
struct CountingCopier {
    inner: Arc<dyn ObjectCopier>,
    started: Mutex<BTreeMap<String, u32>>,
}

impl CountingCopier {
    fn started(&self) -> BTreeMap<String, u32> {
        self.started.lock().expect("lock").clone()
    }
}

#[async_trait]
impl ObjectCopier for CountingCopier {
    async fn source_fingerprint(&self, key: &str) -> Result<ObjectFingerprint, ObjectStoreError> {
        self.inner.source_fingerprint(key).await
    }
    async fn inspect_target(&self, key: &str) -> Result<Option<TargetObject>, ObjectStoreError> {
        self.inner.inspect_target(key).await
    }
    async fn start_copy(&self, key: &str) -> Result<ObjectCopyState, ObjectStoreError> {
        *self.started.lock().expect("lock").entry(key.to_owned()).or_default() += 1;
        self.inner.start_copy(key).await
    }
    fn traffic(&self) -> Traffic {
        self.inner.traffic()
    }
}

/// A snapshot copier that reports every copy running on its first look and done after.
#[derive(Default)]
struct FakeSnapshotCopier {
    looks: Mutex<BTreeMap<String, u32>>,
    starts: Mutex<u32>,
}

#[async_trait]
impl SnapshotCopier for FakeSnapshotCopier {
    async fn start_copy(&self, source_handle: &str, target_region: &str) -> Result<String, SnapshotCopyError> {
        *self.starts.lock().expect("lock") += 1;
        Ok(format!("{source_handle}-copy-{target_region}"))
    }
    async fn progress(&self, replica_handle: &str) -> Result<CopyProgress, SnapshotCopyError> {
        let mut looks = self.looks.lock().expect("lock");
        let seen = looks.entry(replica_handle.to_owned()).or_default();
        *seen += 1;
        Ok(if *seen == 1 { CopyProgress::Running { percent: Some(40) } } else { CopyProgress::Done })
    }
    async fn delete(&self, _replica_handle: &str) -> Result<bool, SnapshotCopyError> {
        Ok(true)
    }
}

fn azurite_store(azurite: &Azurite, account: &str, key: &str) -> BlobObjectStore {
    azurite_store_with(azurite, account, key, &ClientSettings::azurite())
}

fn azurite_store_with(azurite: &Azurite, account: &str, key: &str, settings: &ClientSettings) -> BlobObjectStore {
    let auth = StorageAuth::SharedKey(SharedKeyCredential::new(account, key));
    BlobObjectStore::new(&azurite.blob_endpoint(account), "lifeboat", &auth, settings).expect("store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_backup_is_copied_server_side_between_two_azurite_accounts() {
    let Some(azurite) = Azurite::start() else { return };
    let mut w = world().await;
    let source = Arc::new(azurite_store(&azurite, AZURITE_ACCOUNT, AZURITE_KEY));
    let target = Arc::new(azurite_store(&azurite, SECOND_ACCOUNT, SECOND_KEY));
    // The handler's own Blob clients (the copier works through its stores' clients) count
    // their traffic at the HTTP level too, whatever port it serves.
    let http = CountingPolicy::default();
    let counted = ClientSettings { policies: vec![Arc::new(http.clone())], ..ClientSettings::azurite() };
    let handler_source = Arc::new(azurite_store_with(&azurite, AZURITE_ACCOUNT, AZURITE_KEY, &counted));
    let handler_target = Arc::new(azurite_store_with(&azurite, SECOND_ACCOUNT, SECOND_KEY, &counted));
    let source_auth = StorageAuth::SharedKey(SharedKeyCredential::new(AZURITE_ACCOUNT, AZURITE_KEY));
    let copier = BlobObjectCopier::new(
        Arc::clone(&handler_source),
        &azurite.blob_endpoint(AZURITE_ACCOUNT),
        &source_auth,
        Arc::clone(&handler_target),
        &counted,
    )
    .expect("copier");
    let counting = Arc::new(CountingCopier { inner: Arc::new(copier), started: Mutex::default() });
    let snapshots = Arc::new(FakeSnapshotCopier::default());
    w.app.objects = source.clone();

    let (id, request) = committed_backup(&w).await;
    // From here on the handler's object stores count what passes through them.
    let primary = Arc::new(CountingObjectStore::new(handler_source.clone()));
    let replica_store = Arc::new(CountingObjectStore::new(handler_target.clone()));
    w.app.objects = primary.clone();
    w.app.replicas = Arc::new(vec![Replica {
        region: REGION.to_owned(),
        copier: counting.clone(),
        store: replica_store.clone(),
        snapshots: Some(snapshots.clone()),
    }]);
    let prefix = format!("backups/prod/{id}/");
    let manifest = format!("{prefix}manifest.json");
    let archive = keys(source.as_ref(), &prefix).await.into_iter().find(|k| k != &manifest).expect("an archive");

    // First look: the blobs are copied, the snapshot copy is running: no replica manifest yet.
    let first = deliver(&w, "copy", &request).await;
    assert!(logs(&first).contains("poll 1 scheduled"), "{first:?}");
    assert!(target.head(&archive).await.is_ok(), "the archive is copied");
    assert!(target.head(&manifest).await.is_err_and(|e| e.is_not_found()), "no replica manifest before the end");
    let r = record(&w, &id).await;
    assert_eq!(r.state, BackupState::Committed);
    let replica = r.replica.expect("replica recorded");
    assert_eq!(replica.snapshots.len(), 1, "{replica:?}");
    assert!(replica.snapshots[0].handle.as_deref().is_some_and(|h| h.ends_with("-copy-northeurope")));

    // Someone damages the copy before the next poll: it is detected and copied again.
    target.put(&archive, stream_from_bytes(&b"not the archive"[..]), PutOptions::default()).await.expect("tamper");
    w.clock.advance(Duration::from_secs(60));
    let poll = take_one(&w, "copy-requests").await;
    assert_eq!(poll.message_id, format!("prod.{id}.copy-{REGION}.1"));
    let done = deliver(&w, "copy", &poll).await;
    assert!(logs(&done).contains("replicated to northeurope"), "{done:?}");

    assert_same_bytes(source.as_ref(), target.as_ref(), &prefix).await;
    let r = record(&w, &id).await;
    assert_eq!(r.state, BackupState::Replicated);
    let replica = r.replica.expect("replica");
    assert_eq!(replica.replicated_at, Some(w.clock_now()));
    assert!(replica.snapshots.iter().all(|s| s.done && s.handle.is_some()), "{:?}", replica.snapshots);
    assert!(
        replica.warnings.iter().any(|m| m.contains(&archive) && m.contains("copied again")),
        "{:?}",
        replica.warnings
    );
    let started = counting.started();
    assert_eq!(started.get(&archive), Some(&2), "copied, then again after the damage: {started:?}");
    assert_eq!(started.get(&manifest), Some(&1), "{started:?}");

    // Redelivery of every message: nothing is copied again.
    for message in [&request, &poll] {
        let again = deliver(&w, "copy", message).await;
        assert!(logs(&again).contains("already replicated"), "{again:?}");
    }
    assert_eq!(counting.started(), started);
    assert_eq!(*snapshots.starts.lock().expect("lock"), 1, "the snapshot copy was started once");
    assert!(take(&w, "copy-requests").await.is_empty(), "no further polls");

    // Four deliveries, two copies of the archive, one of the manifest: not one byte read or
    // written through the handler's stores. It did use them: the two deliveries that copied
    // listed the backup (the redeliveries stopped at the catalog).
    let (primary, replica) = (primary.traffic(), replica_store.traffic());
    assert_eq!(body_bytes(&primary, &replica), 0, "no byte went through the handler: {primary:?} {replica:?}");
    assert_eq!(primary.lists, 2, "one listing of the backup per delivery that copied: {primary:?}");
    // On the wire: listings and HEADs and Copy Blob requests, no blob body either way.
    let wire = http.traffic();
    assert_eq!((wire.downloaded, wire.uploaded), (0, 0), "{wire:?}");
    assert!(wire.listed > 0 && wire.requests > 0, "the counting sees the handler's requests: {wire:?}");
    // And it would see a download: reading the archive through the same clients counts it.
    let archive_size = read(handler_source.as_ref(), &archive).await.len() as u64;
    assert_eq!(http.traffic().downloaded, archive_size);
}

/// Body bytes read from and written to the handler's primary and replica stores.
fn body_bytes(primary: &StoreTraffic, replica: &StoreTraffic) -> u64 {
    primary.read_bytes + primary.written_bytes + replica.read_bytes + replica.written_bytes
}

/// The bytes of every object under `prefix`.
async fn size_under(store: &dyn ObjectStore, prefix: &str) -> u64 {
    store.list(prefix, None, 1000).await.expect("list").objects.iter().map(|o| o.size).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_backup_is_copied_between_local_directories_on_the_embedded_defaults() {
    let mut w = world().await;
    let (id, request) = committed_backup(&w).await;
    let prefix = format!("backups/prod/{id}/");
    let replica_dir = DataDir::new(&w.dir.path().join("data")).replica(REGION);
    let target = LocalDirObjectStore::open(&replica_dir).expect("replica directory");
    // The same counting as on Azurite, around the same stores the streaming copier works on.
    let source = Arc::clone(&w.app.objects);
    let primary = Arc::new(CountingObjectStore::new(Arc::clone(&source)));
    let embedded = w.app.replicas.first().expect("a replica for the policy's region").clone();
    let replica_store = Arc::new(CountingObjectStore::new(Arc::clone(&embedded.store)));
    w.app.objects = primary.clone();
    w.app.replicas = Arc::new(vec![replica::streaming(REGION, primary.clone(), replica_store.clone())]);

    let outcome = deliver(&w, "copy", &request).await;
    let (copied, replica_traffic) = (primary.traffic(), replica_store.traffic());
    assert!(logs(&outcome).contains("replicated to northeurope"), "{outcome:?}");
    assert_same_bytes(source.as_ref(), &target, &prefix).await;
    let r = record(&w, &id).await;
    assert_eq!(r.state, BackupState::Replicated);
    let replica = r.replica.expect("replica");
    assert_eq!(replica.warnings, [SNAPSHOTS_NOT_COPIED], "no snapshot copier on the embedded defaults");

    // Here the backup does flow through the handler: every byte written to the replica, and
    // read from the primary (once to checksum it, once to copy it).
    let backup = size_under(&target, &prefix).await;
    assert!(backup > 0);
    assert_eq!(replica_traffic.written_bytes, backup, "{replica_traffic:?}");
    assert_eq!(copied.read_bytes, 2 * backup, "{copied:?}");
    assert!(body_bytes(&copied, &replica_traffic) > 0, "the Azurite test's assertion fails here");

    let again = deliver(&w, "copy", &request).await;
    assert!(logs(&again).contains("already replicated"), "{again:?}");
    assert_eq!(replica_store.traffic().since(&replica_traffic).written_bytes, 0, "a redelivery copies nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_stopped_before_the_end_leaves_no_replica_manifest_and_a_redelivery_finishes_it() {
    let mut w = world().await;
    let (id, request) = committed_backup(&w).await;
    let prefix = format!("backups/prod/{id}/");
    let replica_dir = DataDir::new(&w.dir.path().join("data")).replica(REGION);
    let target = LocalDirObjectStore::open(&replica_dir).expect("replica directory");
    let real = w.app.replicas.first().expect("replica").clone();
    w.app.replicas = Arc::new(vec![Replica { snapshots: Some(Arc::new(Unavailable)), ..real.clone() }]);

    let def = w.app.function("copy").expect("copy").clone();
    let err = handlers::dispatch(&w.app, &def, TriggerInput::Message(MessageInput::from(&request)))
        .await
        .expect_err("the snapshot service is down");
    assert_eq!(err.status(), 503, "retried: {err}");
    assert!(keys(&target, &prefix).await.iter().all(|k| !k.ends_with("manifest.json")), "no replica manifest");
    assert_eq!(record(&w, &id).await.state, BackupState::Committed);
    let copied = real.copier.traffic();

    w.app.replicas = Arc::new(vec![Replica { snapshots: Some(Arc::new(FakeSnapshotCopier::default())), ..real }]);
    let waiting = deliver(&w, "copy", &request).await;
    assert!(logs(&waiting).contains("poll 1 scheduled"), "{waiting:?}");
    w.clock.advance(Duration::from_secs(60));
    let poll = take_one(&w, "copy-requests").await;
    let done = deliver(&w, "copy", &poll).await;
    assert!(logs(&done).contains("replicated"), "{done:?}");
    assert_same_bytes(w.app.objects.as_ref(), &target, &prefix).await;
    let uploaded = w.app.replicas.first().expect("replica").copier.traffic().uploaded - copied.uploaded;
    let manifest_size = read(&target, &format!("{prefix}manifest.json")).await.len() as u64;
    assert_eq!(uploaded, manifest_size, "only the manifest was still to copy");
}

/// A snapshot service that is down.
struct Unavailable;

#[async_trait]
impl SnapshotCopier for Unavailable {
    async fn start_copy(&self, source_handle: &str, _: &str) -> Result<String, SnapshotCopyError> {
        Err(SnapshotCopyError::Unavailable { what: format!("copying {source_handle}"), message: "503".into() })
    }
    async fn progress(&self, replica_handle: &str) -> Result<CopyProgress, SnapshotCopyError> {
        Err(SnapshotCopyError::NotFound { what: replica_handle.to_owned() })
    }
    async fn delete(&self, _: &str) -> Result<bool, SnapshotCopyError> {
        Ok(false)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_past_its_deadline_marks_the_replica_failed_and_a_backup_not_committed_is_left_alone() {
    let mut w = world().await;
    let (id, request) = committed_backup(&w).await;
    let real = w.app.replicas.first().expect("replica").clone();
    w.app.replicas = Arc::new(vec![Replica { snapshots: Some(Arc::new(FakeSnapshotCopier::default())), ..real }]);
    let waiting = deliver(&w, "copy", &request).await;
    assert!(logs(&waiting).contains("poll 1 scheduled"), "{waiting:?}");
    w.clock.advance(Duration::from_secs(25 * 3600));
    // A fresh copier whose copy is still running at the late poll.
    let real = w.app.replicas.first().expect("replica").clone();
    w.app.replicas = Arc::new(vec![Replica { snapshots: Some(Arc::new(FakeSnapshotCopier::default())), ..real }]);
    let poll = take_one(&w, "copy-requests").await;
    let failed = deliver(&w, "copy", &poll).await;
    assert!(logs(&failed).contains("the replica in northeurope failed"), "{failed:?}");
    let r = record(&w, &id).await;
    assert_eq!(r.state, BackupState::Committed, "the backup itself stays good");
    assert!(r.replica.and_then(|x| x.failure).is_some_and(|f| f.contains("deadline")));
    assert!(take(&w, "copy-requests").await.is_empty(), "no further polls");

    // A request for a backup that is not committed is acknowledged without work.
    let mut r = record(&w, &id).await;
    let cluster = ClusterName::new("prod").expect("name");
    let (_, etag) = catalog::get(w.app.state.as_ref(), &cluster, &id).await.expect("get").expect("record");
    r.move_to(BackupState::Deleting, w.clock_now()).expect("move");
    catalog::save(w.app.state.as_ref(), &r, &etag).await.expect("save");
    let skipped = deliver(&w, "copy", &request).await;
    assert!(logs(&skipped).contains("Deleting, not committed"), "{skipped:?}");
}

/// A snapshot copy that never finishes.
struct Stuck;

#[async_trait]
impl SnapshotCopier for Stuck {
    async fn start_copy(&self, source_handle: &str, target_region: &str) -> Result<String, SnapshotCopyError> {
        Ok(format!("{source_handle}-copy-{target_region}"))
    }
    async fn progress(&self, _: &str) -> Result<CopyProgress, SnapshotCopyError> {
        Ok(CopyProgress::Running { percent: Some(1) })
    }
    async fn delete(&self, _: &str) -> Result<bool, SnapshotCopyError> {
        Ok(true)
    }
}

/// Runs the `staleness` timer (which also sends the retry rounds due); its log.
async fn staleness_run(w: &World) -> String {
    let def = w.app.function("staleness").expect("staleness").clone();
    let outcome =
        handlers::dispatch(&w.app, &def, TriggerInput::Timer(TimerInput::default())).await.expect("staleness");
    logs(&outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_failed_at_its_deadline_is_copied_again_by_a_later_timer_run_once_per_round() {
    let mut w = world().await;
    let hour = chrono::Duration::hours(1);
    w.app.settings.copy.retry = ReplicaRetryPolicy { max_retries: 1, first_wait: hour, max_wait: hour };
    let (id, request) = committed_backup(&w).await;
    let real = w.app.replicas.first().expect("replica").clone();
    w.app.replicas = Arc::new(vec![Replica { snapshots: Some(Arc::new(Stuck)), ..real.clone() }]);
    assert!(logs(&deliver(&w, "copy", &request).await).contains("poll 1 scheduled"));
    w.clock.advance(Duration::from_secs(25 * 3600));
    let late_poll = take_one(&w, "copy-requests").await;
    assert!(logs(&deliver(&w, "copy", &late_poll).await).contains("failed"));

    // Not retried at once; an hour after the failure, once, however often the timer runs.
    assert!(!staleness_run(&w).await.contains("retried"));
    assert!(take(&w, "copy-requests").await.is_empty(), "not due yet");
    w.clock.advance(Duration::from_secs(3600));
    let first = staleness_run(&w).await;
    assert!(first.contains("retried (round 1 of 1)"), "{first}");
    staleness_run(&w).await;
    let retry = take_one(&w, "copy-requests").await;
    assert_eq!(retry.message_id, format!("prod.{id}.copy-{REGION}.retry-1.0"), "the same id each run: sent once");

    // The snapshot service works again: the round copies, polls, and the replica is complete.
    w.app.replicas = Arc::new(vec![Replica { snapshots: Some(Arc::new(FakeSnapshotCopier::default())), ..real }]);
    assert!(logs(&deliver(&w, "copy", &retry).await).contains("poll 1 scheduled"));
    let r = record(&w, &id).await.replica.expect("replica");
    assert_eq!((r.retries, r.failure.as_deref()), (1, None));
    assert!(r.earlier_failures.len() == 1 && r.earlier_failures[0].contains("deadline"), "{:?}", r.earlier_failures);
    assert!(!staleness_run(&w).await.contains("retried"), "a running round is not retried");
    // A redelivery of the retry copies on (the snapshot copy is done by now), not over.
    assert!(logs(&deliver(&w, "copy", &retry).await).contains("replicated to northeurope"));
    assert_eq!(record(&w, &id).await.state, BackupState::Replicated);
    assert_eq!(record(&w, &id).await.replica.expect("replica").retries, 1);
    w.clock.advance(Duration::from_secs(60));
    let poll = take_one(&w, "copy-requests").await;
    assert_eq!(poll.message_id, format!("prod.{id}.copy-{REGION}.retry-1.1"), "the round's polls carry it");
    assert!(logs(&deliver(&w, "copy", &poll).await).contains("already replicated"));
    w.clock.advance(Duration::from_secs(48 * 3600));
    assert!(!staleness_run(&w).await.contains("retried"));
    assert!(take(&w, "copy-requests").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_is_retried_at_most_the_configured_number_of_rounds() {
    let mut w = world().await;
    let hour = chrono::Duration::hours(1);
    w.app.settings.copy.retry = ReplicaRetryPolicy { max_retries: 1, first_wait: hour, max_wait: hour };
    let (id, request) = committed_backup(&w).await;
    let real = w.app.replicas.first().expect("replica").clone();
    w.app.replicas = Arc::new(vec![Replica { snapshots: Some(Arc::new(Stuck)), ..real }]);
    let mut message = request;
    // The first round, then the one retry, each running into its deadline.
    for round in 0..2 {
        assert!(logs(&deliver(&w, "copy", &message).await).contains("poll 1 scheduled"), "round {round}");
        w.clock.advance(Duration::from_secs(25 * 3600));
        assert!(logs(&deliver(&w, "copy", &take_one(&w, "copy-requests").await).await).contains("failed"));
        w.clock.advance(Duration::from_secs(2 * 3600));
        let sent = staleness_run(&w).await;
        if round == 0 {
            assert!(sent.contains("round 1 of 1"), "{sent}");
            message = take_one(&w, "copy-requests").await;
        } else {
            assert!(!sent.contains("retried"), "no second retry: {sent}");
            assert!(take(&w, "copy-requests").await.is_empty());
        }
    }
    let r = record(&w, &id).await.replica.expect("replica");
    assert_eq!(r.retries, 1);
    assert_eq!(r.earlier_failures.len(), 1, "{r:?}");
    assert!(r.failure.is_some(), "failed for good");
}

impl World {
    fn clock_now(&self) -> DateTime<Utc> {
        use lifeboat_shared::ports::Clock;
        self.clock.now()
    }
}

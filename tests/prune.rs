//! `workflows::prune` on the embedded defaults (SQLite state, local-directory objects): a
//! clock moves on, backups age, and prune removes exactly what retention says, blobs first and
//! the catalog entry last; a dry run changes nothing; a second run removes nothing.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use lifeboat_shared::adapters::kube::KubeconfigConnector;
use lifeboat_shared::adapters::local_dir::LocalDirObjectStore;
use lifeboat_shared::adapters::sqlite::SqliteStateStore;
use lifeboat_shared::catalog;
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::manifest::SnapshotRecord;
use lifeboat_shared::domain::messages::BackupReason;
use lifeboat_shared::domain::names::{ClusterName, PolicyName};
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::domain::records::{BackupRecord, BackupState, ReplicaRecord, SnapshotReplica};
use lifeboat_shared::domain::retention::Options;
use lifeboat_shared::layout;
use lifeboat_shared::ports::object_store::stream_from_bytes;
use lifeboat_shared::ports::{
    BatchOp, ETag, Entity, ObjectStore, Page, PutOptions, Query, StateStore, StateStoreError,
};
use lifeboat_shared::workflows::prune::replicas::{ReplicaJudged, ReplicaRegion};
use lifeboat_shared::workflows::prune::{self, PruneDeps};
use lifeboat_test_apiserver::{Options as TestOptions, Running, TestApiServer};

/// The policy, its cluster reached through `kubeconfig`.
fn config_yaml(kubeconfig: &std::path::Path) -> String {
    config_yaml_with(kubeconfig, "")
}

/// The policy with `extra` fields in its spec (`, replication: {…}`).
fn config_yaml_with(kubeconfig: &std::path::Path, extra: &str) -> String {
    format!(
        "apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: prod }}
spec: {{ region: westeurope, kubeconfig: {{ path: '{}' }} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{ name: nightly }}
spec: {{ clusters: [prod], schedule: '0 0 2 * * *', rpo: 26h, retention: {{ keepLast: 2, daily: 3 }}{extra} }}
",
        kubeconfig.display()
    )
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 2, 0, 0).unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    state: SqliteStateStore,
    objects: LocalDirObjectStore,
    config: Config,
    yaml: String,
    cluster: ClusterName,
    server: Running,
    clusters: KubeconfigConnector,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The embedded defaults' layout of a data directory, so `lifeboat prune --data` reads it.
        let state = SqliteStateStore::open(&dir.path().join("state.sqlite")).unwrap();
        let objects = LocalDirObjectStore::open(dir.path().join("objects")).unwrap();
        let server = TestApiServer::start(TestOptions::default()).await.unwrap();
        server.seed_snapshot_crds().await.unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let yaml = config_yaml(&kubeconfig);
        let config = Config::from_sources([("p.yaml", yaml.as_str())]).unwrap();
        let clusters = KubeconfigConnector::default();
        Self { _dir: dir, state, objects, config, yaml, cluster: ClusterName::new("prod").unwrap(), server, clusters }
    }

    fn deps(&self) -> PruneDeps<'_> {
        PruneDeps {
            state: &self.state,
            objects: &self.objects,
            clusters: &self.clusters,
            replicas: &[],
            replica_retry: Default::default(),
        }
    }

    /// A backup of the nightly slot `day` days after the start, with two blobs, in `state`.
    async fn backup(&self, day: i64, state: BackupState) -> BackupId {
        let policy = PolicyName::new("nightly").unwrap();
        let slot = start() + Duration::days(day);
        let id = BackupId::scheduled(&policy, slot);
        let mut record =
            BackupRecord::requested(id.clone(), self.cluster.clone(), policy, BackupReason::Scheduled { slot }, slot);
        record.state = state;
        catalog::claim(&self.state, &record).await.unwrap();
        for key in [layout::archive_key(&self.cluster, &id), layout::manifest_key(&self.cluster, &id)] {
            self.objects.put(&key, stream_from_bytes(b"x".to_vec()), PutOptions::default()).await.unwrap();
        }
        id
    }

    /// A committed backup on each of the first `days` days, oldest first.
    async fn committed_backups(&self, days: i64) -> Vec<BackupId> {
        let mut ids = Vec::new();
        for day in 0..days {
            ids.push(self.backup(day, BackupState::Committed).await);
        }
        ids
    }

    async fn catalog_ids(&self) -> BTreeSet<String> {
        catalog::list(&self.state, &self.cluster).await.unwrap().iter().map(|r| r.backup_id.to_string()).collect()
    }

    async fn blob_count(&self, id: &BackupId) -> usize {
        self.objects.list(&layout::backup_prefix(&self.cluster, id), None, 100).await.unwrap().objects.len()
    }

    /// Runs `lifeboat ARGS --data D --config C` on this world's data directory (the embedded
    /// defaults' layout) and policy; its standard output. Panics when it fails.
    fn cli(&self, args: &[&str]) -> String {
        let data = self._dir.path();
        let config = data.join("policy.yaml");
        std::fs::write(&config, &self.yaml).unwrap();
        let mut args = args.to_vec();
        args.extend(["--data", data.to_str().unwrap(), "--config", config.to_str().unwrap()]);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat")).args(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Prunes at `now` with `racing` as the state store.
    async fn prune_racing(&self, racing: &Racing<'_>, now: DateTime<Utc>) -> prune::PruneReport {
        prune::run(&self.config, PruneDeps { state: racing, ..self.deps() }, &Options::at(now), false).await.unwrap()
    }

    async fn prune(&self, now: DateTime<Utc>, dry_run: bool) -> prune::PruneReport {
        prune::run(&self.config, self.deps(), &Options::at(now), dry_run).await.unwrap()
    }
}

#[tokio::test]
async fn prune_removes_exactly_what_retention_says_blobs_then_entry_and_is_idempotent() {
    let world = World::new().await;
    let ids = world.committed_backups(10).await;
    // Held (legal hold), and read by a running restore whose lease has not ended.
    world.state.upsert(layout::TABLE_HOLDS, &Entity::new("prod", ids[1].as_str())).await.unwrap();
    let lease = Entity::new("prod", format!("{}.restore-1", ids[2])).with("until", "2026-12-01T00:00:00Z");
    world.state.upsert(layout::TABLE_BACKUP_READERS, &lease).await.unwrap();
    // A restore that ended (lease over) protects nothing.
    let old_lease = Entity::new("prod", format!("{}.restore-0", ids[3])).with("until", "2026-11-05T00:00:00Z");
    world.state.upsert(layout::TABLE_BACKUP_READERS, &old_lease).await.unwrap();
    let stuck = {
        let policy = PolicyName::new("nightly").unwrap();
        let id = BackupId::on_demand(&policy, "req-1");
        let created = start() + Duration::days(5);
        let mut record = BackupRecord::requested(
            id.clone(),
            world.cluster.clone(),
            policy,
            BackupReason::OnDemand { request_id: "req-1".into(), requested_by: None },
            created,
        );
        record.state = BackupState::WaitingForSnapshots;
        catalog::claim(&world.state, &record).await.unwrap();
        world
            .objects
            .put(&layout::archive_key(&world.cluster, &id), stream_from_bytes(b"x".to_vec()), PutOptions::default())
            .await
            .unwrap();
        id
    };
    let now = start() + Duration::days(9) + Duration::hours(6);

    let before = world.catalog_ids().await;
    let dry = world.prune(now, true).await;
    assert_eq!(world.catalog_ids().await, before, "a dry run changes nothing");
    let would: BTreeSet<String> =
        dry.backups.iter().filter(|b| !b.decision.is_kept()).map(|b| b.backup_id.to_string()).collect();

    let report = world.prune(now, false).await;
    let removed: BTreeSet<String> =
        report.backups.iter().filter(|b| b.removed).map(|b| b.backup_id.to_string()).collect();
    // keepLast 2: days 8, 9; daily 3: days 7, 8, 9; held: day 1; read: day 2; the stuck
    // uncommitted one is older than a day: swept.
    let expected: BTreeSet<String> =
        [0, 3, 4, 5, 6].iter().map(|&d| ids[d].to_string()).chain([stuck.to_string()]).collect();
    assert_eq!(removed, expected, "{}", report.summary());
    assert_eq!(would, expected, "the dry run listed exactly what went");
    for id in &ids[..] {
        let gone = expected.contains(id.as_str());
        assert_eq!(world.blob_count(id).await, if gone { 0 } else { 2 }, "blobs of {id}");
    }
    assert_eq!(world.blob_count(&stuck).await, 0);
    let kept: BTreeSet<String> = [1, 2, 7, 8, 9].iter().map(|&d| ids[d].to_string()).collect();
    assert_eq!(world.catalog_ids().await, kept);

    let again = world.prune(now, false).await;
    assert!(again.backups.iter().all(|b| b.decision.is_kept() && !b.removed), "{}", again.summary());
}

#[tokio::test]
async fn an_interrupted_removal_is_finished_by_the_next_run() {
    let world = World::new().await;
    let ids = world.committed_backups(3).await;
    // A run crashed after marking the oldest Deleting.
    let (mut record, etag) = catalog::get(&world.state, &world.cluster, &ids[0]).await.unwrap().unwrap();
    record.move_to(BackupState::Deleting, start()).unwrap();
    catalog::save(&world.state, &record, &etag).await.unwrap();

    let report = world.prune(start() + Duration::days(3), false).await;
    let judged = report.backups.iter().find(|b| b.backup_id == ids[0]).unwrap();
    assert!(judged.removed && judged.blobs_deleted == 2, "{judged:?}");
    assert_eq!(world.catalog_ids().await.len(), 2);
}

/// A state store where someone else saves each backup entry (or only the one with the row key
/// given) just before prune marks it.
struct Racing<'a>(&'a SqliteStateStore, Option<String>);

impl Racing<'_> {
    fn races(&self, table: &str, row_key: &str) -> bool {
        table == layout::TABLE_BACKUPS && self.1.as_deref().is_none_or(|only| only == row_key)
    }
}

#[async_trait::async_trait]
impl StateStore for Racing<'_> {
    async fn insert(&self, t: &str, e: &Entity) -> Result<ETag, StateStoreError> {
        self.0.insert(t, e).await
    }
    async fn upsert(&self, t: &str, e: &Entity) -> Result<ETag, StateStoreError> {
        self.0.upsert(t, e).await
    }
    async fn update(&self, t: &str, e: &Entity, if_match: &ETag) -> Result<ETag, StateStoreError> {
        if self.races(t, &e.row_key) {
            let current = self.0.get(t, &e.partition_key, &e.row_key).await?.expect("entry");
            self.0.upsert(t, &current).await?; // a concurrent writer: new ETag
        }
        self.0.update(t, e, if_match).await
    }
    async fn get(&self, t: &str, pk: &str, rk: &str) -> Result<Option<Entity>, StateStoreError> {
        self.0.get(t, pk, rk).await
    }
    async fn delete(&self, t: &str, pk: &str, rk: &str, m: Option<&ETag>) -> Result<(), StateStoreError> {
        self.0.delete(t, pk, rk, m).await
    }
    async fn query(&self, t: &str, q: &Query) -> Result<Page, StateStoreError> {
        self.0.query(t, q).await
    }
    async fn transact(&self, t: &str, pk: &str, ops: &[BatchOp]) -> Result<Vec<Option<ETag>>, StateStoreError> {
        for op in ops {
            if let BatchOp::Update(e) = op
                && self.races(t, &e.row_key)
            {
                let current = self.0.get(t, &e.partition_key, &e.row_key).await?.expect("entry");
                self.0.upsert(t, &current).await?;
            }
        }
        self.0.transact(t, pk, ops).await
    }
}

#[tokio::test]
async fn a_backup_that_changed_since_it_was_listed_is_left_for_the_next_run() {
    let world = World::new().await;
    let ids = world.committed_backups(4).await;
    let racing = Racing(&world.state, None);
    let report = world.prune_racing(&racing, start() + Duration::days(4)).await;
    let (cluster, objects) = (&world.cluster, &world.objects);
    let going: Vec<_> = report.backups.iter().filter(|b| !b.decision.is_kept()).collect();
    assert_eq!(going.len(), 1, "{}", report.summary()); // keepLast 2, daily 3: day 0 goes
    assert!(!going[0].removed && going[0].blobs_deleted == 0, "{:?}", going[0]);
    assert_eq!(catalog::list(&racing, cluster).await.unwrap().len(), 4, "nothing deleted under a changed entry");
    let archive = layout::archive_key(cluster, &ids[0]);
    assert!(objects.head(&archive).await.is_ok(), "its blobs stay");
}

#[tokio::test]
async fn removals_are_batched_and_one_entry_that_changed_does_not_hold_up_the_others() {
    let world = World::new().await;
    let ids = world.committed_backups(6).await;
    let racing = Racing(&world.state, Some(ids[1].to_string()));
    // keepLast 2, daily 3: days 0, 1 and 2 go; day 1 changes just before it is marked.
    let report = world.prune_racing(&racing, start() + Duration::days(6)).await;
    let cluster = &world.cluster;
    let removed: Vec<&BackupId> = report.backups.iter().filter(|b| b.removed).map(|b| &b.backup_id).collect();
    assert_eq!(removed, [&ids[0], &ids[2]], "{}", report.summary());
    let left = report.backups.iter().find(|b| b.backup_id == ids[1]).unwrap();
    assert!(!left.removed && left.blobs_deleted == 0, "{left:?}");
    let listed: Vec<String> =
        catalog::list(&racing, cluster).await.unwrap().iter().map(|r| r.backup_id.to_string()).collect();
    assert_eq!(listed, [&ids[1], &ids[3], &ids[4], &ids[5]].map(ToString::to_string));
    assert_eq!(catalog::get(&racing, cluster, &ids[1]).await.unwrap().unwrap().0.state, BackupState::Committed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_dry_run_prints_what_would_go_and_changes_nothing_then_prune_removes_it() {
    let world = World::new().await;
    let ids = world.committed_backups(4).await;
    let lifeboat = |extra: &[&str]| world.cli(&[&["prune"], extra].concat());
    // The backups are from November 2026's first days; now is later, so the newest 2 (keepLast)
    // and 3 days (daily) stay and day 0 goes.
    let dry = lifeboat(&["--dry-run"]);
    let line = dry.lines().find(|l| l.contains(ids[0].as_str())).unwrap_or_default();
    assert!(line.contains("would remove") && line.contains("no rule keeps it"), "{dry}");
    assert!(dry.contains("would remove 1"), "{dry}");
    assert_eq!(world.catalog_ids().await.len(), 4, "a dry run changes nothing");
    let done = lifeboat(&[]);
    assert!(done.contains("removed 1"), "{done}");
    assert!(!world.catalog_ids().await.contains(ids[0].as_str()));
    assert_eq!(world.blob_count(&ids[0]).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_placed_from_the_cli_keeps_a_backup_until_it_is_lifted() {
    let world = World::new().await;
    let ids = world.committed_backups(4).await;
    let lifeboat = |args: &[&str]| world.cli(args);
    let oldest = ids[0].as_str();
    lifeboat(&["hold", "place", "--cluster", "prod", oldest, "--reason", "case-42"]);
    let list = lifeboat(&["hold", "list", "--cluster", "prod"]);
    assert!(list.contains(oldest) && list.contains("case-42"), "{list}");
    let held = lifeboat(&["prune"]);
    let line = held.lines().find(|l| l.contains(oldest)).unwrap_or_default();
    assert!(line.contains("kept") && line.contains("pinned"), "{held}");
    assert!(world.catalog_ids().await.contains(oldest));
    lifeboat(&["hold", "lift", "--cluster", "prod", oldest]);
    let done = lifeboat(&["prune"]);
    assert!(done.contains("removed 1"), "{done}");
    assert!(!world.catalog_ids().await.contains(oldest));
}

impl World {
    /// A ready VolumeSnapshot of `pvc` for backup `id`, as the backup makes it (labelled, its
    /// content switched to `Retain`), recorded in the catalog entry; returns its disk handle.
    async fn snapshot(&self, id: &BackupId, namespace: &str, pvc: &str, name: &str) -> String {
        let name = name.to_owned();
        self.server
            .store()
            .create(serde_json::json!({
                "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                "metadata": {"name": name, "namespace": namespace, "labels": {"lifeboat.io/backup-id": id.as_str()}},
                "spec": {"source": {"persistentVolumeClaimName": pvc}, "volumeSnapshotClassName": "csi-azuredisk-vsc"}
            }))
            .unwrap();
        let vs = loop {
            let vs = self.server.store().get("snapshot.storage.k8s.io/v1", "VolumeSnapshot", namespace, &name).unwrap();
            if vs["status"]["readyToUse"] == true {
                break vs;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let content_name = vs["status"]["boundVolumeSnapshotContentName"].as_str().unwrap().to_owned();
        let mut content =
            self.server.store().get("snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", "", &content_name).unwrap();
        content["spec"]["deletionPolicy"] = "Retain".into();
        let content = self.server.store().update(content).unwrap();
        let handle = content["status"]["snapshotHandle"].as_str().unwrap().to_owned();
        let (mut record, etag) = catalog::get(&self.state, &self.cluster, id).await.unwrap().unwrap();
        record.snapshots.push(SnapshotRecord {
            namespace: namespace.into(),
            pvc: pvc.into(),
            volume_snapshot: name,
            driver: lifeboat_test_apiserver::AZURE_DISK_DRIVER.into(),
            class: Some("csi-azuredisk-vsc".into()),
            handle: Some(handle.clone()),
            restore_size: Some("1Gi".into()),
            region: "westeurope".into(),
            error: None,
        });
        catalog::save(&self.state, &record, &etag).await.unwrap();
        handle
    }

    fn volume_snapshots(&self, namespace: &str) -> Vec<String> {
        let listed = self.server.store().list("snapshot.storage.k8s.io/v1", "VolumeSnapshot", Some(namespace)).unwrap();
        listed.iter().filter_map(|v| v["metadata"]["name"].as_str().map(str::to_owned)).collect()
    }

    fn content_handles(&self) -> BTreeSet<String> {
        let listed = self.server.store().list("snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", None).unwrap();
        listed.iter().filter_map(|c| c["status"]["snapshotHandle"].as_str().map(str::to_owned)).collect()
    }
}

#[tokio::test]
async fn a_removed_backup_takes_its_volume_snapshots_and_disk_snapshots_with_it_and_a_kept_one_keeps_them() {
    let world = World::new().await;
    let app = world.server.seed_sample_app("shop").await.unwrap();
    let ids = world.committed_backups(4).await;
    let gone = world.snapshot(&ids[0], "shop", &app.pvcs[0], "old-a").await;
    // A second snapshot of the same backup lost its VolumeSnapshot (someone deleted it; the
    // content stays, `Retain`): prune finds the content by the recorded handle.
    let orphaned = world.snapshot(&ids[0], "shop", &app.pvcs[0], "old-b").await;
    world.server.store().delete("snapshot.storage.k8s.io/v1", "VolumeSnapshot", "shop", "old-b").unwrap();
    let kept = world.snapshot(&ids[3], "shop", &app.pvcs[0], "new").await;
    assert!(world.content_handles().contains(&orphaned), "a Retain content outlives its VolumeSnapshot");

    // keepLast 2, daily 3: day 0 goes.
    let report = world.prune(start() + Duration::days(3) + Duration::hours(1), false).await;
    let judged = report.backups.iter().find(|b| b.backup_id == ids[0]).unwrap();
    assert!(judged.removed, "{judged:?}");
    assert_eq!(judged.volume_snapshots_deleted, 3, "one VolumeSnapshot and two contents: {judged:?}");
    let left = world.volume_snapshots("shop");
    assert_eq!(left, ["new"], "the removed backup's snapshots go, the kept one's stays");
    let handles = world.content_handles();
    assert!(!handles.contains(&gone) && !handles.contains(&orphaned), "{handles:?}");
    assert!(lifeboat_test_apiserver::cloud_snapshot_deleted(&gone), "the disk snapshot was deleted in the cloud");
    assert!(lifeboat_test_apiserver::cloud_snapshot_deleted(&orphaned));
    assert!(handles.contains(&kept) && !lifeboat_test_apiserver::cloud_snapshot_deleted(&kept));

    let again = world.prune(start() + Duration::days(3) + Duration::hours(1), false).await;
    assert!(again.backups.iter().all(|b| b.volume_snapshots_deleted == 0), "{}", again.summary());
}

#[tokio::test]
async fn a_cluster_that_cannot_be_reached_leaves_the_backup_deleting_with_its_blobs_until_it_can() {
    let world = World::new().await;
    let app = world.server.seed_sample_app("shop").await.unwrap();
    let ids = world.committed_backups(4).await;
    let handle = world.snapshot(&ids[0], "shop", &app.pvcs[0], "old").await;
    let unreachable =
        world.yaml.replace(&world._dir.path().join("kubeconfig").display().to_string(), "/nonexistent/kubeconfig");
    let config = Config::from_sources([("p.yaml", unreachable.as_str())]).unwrap();
    let now = start() + Duration::days(3) + Duration::hours(1);
    let report = prune::run(&config, world.deps(), &Options::at(now), false).await.unwrap();
    let judged = report.backups.iter().find(|b| b.backup_id == ids[0]).unwrap();
    assert!(!judged.removed && judged.blobs_deleted == 0, "{judged:?}");
    assert!(judged.left_because.as_deref().is_some_and(|w| w.contains("prod")), "{judged:?}");
    let (record, _) = catalog::get(&world.state, &world.cluster, &ids[0]).await.unwrap().unwrap();
    assert_eq!(record.state, BackupState::Deleting, "marked, so no restore starts from it");
    assert_eq!(world.blob_count(&ids[0]).await, 2, "nothing is forgotten while its snapshots remain");
    assert!(world.content_handles().contains(&handle));

    let report = world.prune(now, false).await;
    let judged = report.backups.iter().find(|b| b.backup_id == ids[0]).unwrap();
    assert!(judged.removed && judged.blobs_deleted == 2 && judged.volume_snapshots_deleted == 2, "{judged:?}");
    assert!(lifeboat_test_apiserver::cloud_snapshot_deleted(&handle));
}

/// An object store that reports an immutability policy on one backup's blobs. Azurite does not
/// implement immutability policies or legal holds (501), so this wrapper around the local
/// directory store stands in for what Blob Storage reports on `head` (and refuses on delete).
struct ImmutableFor {
    inner: LocalDirObjectStore,
    prefix: String,
    until: DateTime<Utc>,
}

#[async_trait::async_trait]
impl ObjectStore for ImmutableFor {
    async fn put(
        &self,
        key: &str,
        body: lifeboat_shared::ports::ByteStream,
        options: PutOptions,
    ) -> Result<lifeboat_shared::ports::ObjectMeta, lifeboat_shared::ports::ObjectStoreError> {
        self.inner.put(key, body, options).await
    }
    async fn get(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<
        (lifeboat_shared::ports::ObjectMeta, lifeboat_shared::ports::ByteStream),
        lifeboat_shared::ports::ObjectStoreError,
    > {
        self.inner.get(key, range).await
    }
    async fn head(
        &self,
        key: &str,
    ) -> Result<lifeboat_shared::ports::ObjectMeta, lifeboat_shared::ports::ObjectStoreError> {
        let mut meta = self.inner.head(key).await?;
        if key.starts_with(&self.prefix) {
            meta.immutable_until = Some(self.until);
        }
        Ok(meta)
    }
    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<lifeboat_shared::ports::ObjectPage, lifeboat_shared::ports::ObjectStoreError> {
        self.inner.list(prefix, continuation, limit).await
    }
    async fn delete(&self, key: &str) -> Result<bool, lifeboat_shared::ports::ObjectStoreError> {
        assert!(!key.starts_with(&self.prefix), "prune deleted {key}, which is immutable");
        self.inner.delete(key).await
    }
}

#[tokio::test]
async fn a_backup_the_object_store_keeps_immutable_is_kept_with_that_reason_until_the_policy_ends() {
    let world = World::new().await;
    let ids = world.committed_backups(4).await;
    let until = start() + Duration::days(20);
    let objects = ImmutableFor {
        inner: LocalDirObjectStore::open(world._dir.path().join("objects")).unwrap(),
        prefix: layout::backup_prefix(&world.cluster, &ids[0]),
        until,
    };
    let deps = PruneDeps {
        state: &world.state,
        objects: &objects,
        clusters: &world.clusters,
        replicas: &[],
        replica_retry: Default::default(),
    };
    // keepLast 2, daily 3 would remove day 0; its blobs are immutable for 20 days.
    let now = start() + Duration::days(3) + Duration::hours(1);
    let report = prune::run(&world.config, deps, &Options::at(now), false).await.unwrap();
    let judged = report.backups.iter().find(|b| b.backup_id == ids[0]).unwrap();
    assert!(judged.decision.is_kept() && !judged.removed, "{judged:?}");
    assert_eq!(judged.decision.to_string(), "keep: immutable until 2026-11-21T02:00:00Z");
    assert_eq!(world.blob_count(&ids[0]).await, 2);

    // Once the policy has ended, retention has its way.
    let objects = ImmutableFor { prefix: "nothing/".into(), ..objects };
    let deps = PruneDeps {
        state: &world.state,
        objects: &objects,
        clusters: &world.clusters,
        replicas: &[],
        replica_retry: Default::default(),
    };
    let later = until + Duration::hours(1);
    let report = prune::run(&world.config, deps, &Options::at(later), false).await.unwrap();
    let judged = report.backups.iter().find(|b| b.backup_id == ids[0]).unwrap();
    assert!(judged.removed, "{judged:?}");
}

#[tokio::test]
async fn holds_and_restore_leases_protect_backups_whose_ids_contain_dots() {
    let world = World::new().await;
    let policy = PolicyName::new("nightly").unwrap();
    let mut ids = Vec::new();
    for day in 0..6 {
        // On-demand backups named by a pipeline with dots in the name (`release.v1.2.…`).
        let id = BackupId::parse(format!("release.v1.{day}")).unwrap();
        let created = start() + Duration::days(day);
        let reason = BackupReason::OnDemand { request_id: format!("r{day}"), requested_by: None };
        let mut record = BackupRecord::requested(id.clone(), world.cluster.clone(), policy.clone(), reason, created);
        record.state = BackupState::Committed;
        catalog::claim(&world.state, &record).await.unwrap();
        ids.push(id);
    }
    world.state.upsert(layout::TABLE_HOLDS, &Entity::new("prod", ids[0].as_str())).await.unwrap();
    let lease = Entity::new("prod", format!("{}.restore-7-abc", ids[1])).with("until", "2026-12-31T00:00:00Z");
    world.state.upsert(layout::TABLE_BACKUP_READERS, &lease).await.unwrap();
    let report = world.prune(start() + Duration::days(6), false).await;
    let kept: BTreeSet<String> =
        report.backups.iter().filter(|b| b.decision.is_kept()).map(|b| b.backup_id.to_string()).collect();
    assert!(kept.contains(ids[0].as_str()), "held: {}", report.summary());
    assert!(kept.contains(ids[1].as_str()), "read by a running restore: {}", report.summary());
    assert!(!kept.contains(ids[2].as_str()), "neither held nor read, past keepLast and daily");
}

// --- The second region -------------------------------------------------------------------

const REPLICA_REGION: &str = "northeurope";

/// Replication to `northeurope`, whose copies are kept by `keepLast: 1`.
const REPLICATION: &str = ", replication: { region: northeurope, rpo: 30h, retention: { keepLast: 1 } }";

/// Disk snapshot copies in the second region, as a set of live handles. ARM cannot run here;
/// `tests/azure_arm.rs` tests the ARM copier's delete against a fake ARM server, this stands
/// for it at the port.
#[derive(Default)]
struct SnapshotCopies {
    live: std::sync::Mutex<BTreeSet<String>>,
}

#[async_trait::async_trait]
impl lifeboat_shared::ports::SnapshotCopier for SnapshotCopies {
    async fn start_copy(
        &self,
        source: &str,
        region: &str,
    ) -> Result<String, lifeboat_shared::ports::SnapshotCopyError> {
        let handle = format!("{source}-copy-{region}");
        self.live.lock().unwrap().insert(handle.clone());
        Ok(handle)
    }
    async fn progress(
        &self,
        _: &str,
    ) -> Result<lifeboat_shared::ports::CopyProgress, lifeboat_shared::ports::SnapshotCopyError> {
        Ok(lifeboat_shared::ports::CopyProgress::Done)
    }
    async fn delete(&self, handle: &str) -> Result<bool, lifeboat_shared::ports::SnapshotCopyError> {
        Ok(self.live.lock().unwrap().remove(handle))
    }
}

/// The second region's blobs and snapshot copies.
struct SecondRegion {
    objects: LocalDirObjectStore,
    copies: SnapshotCopies,
}

impl SecondRegion {
    fn new(world: &World) -> Self {
        let objects = LocalDirObjectStore::open(world._dir.path().join("replica").join(REPLICA_REGION)).unwrap();
        Self { objects, copies: SnapshotCopies::default() }
    }

    fn region(&self) -> ReplicaRegion<'_> {
        ReplicaRegion { region: REPLICA_REGION, objects: &self.objects, snapshots: Some(&self.copies) }
    }

    async fn blob_count(&self, cluster: &ClusterName, id: &BackupId) -> usize {
        self.objects.list(&layout::backup_prefix(cluster, id), None, 100).await.unwrap().objects.len()
    }

    fn copy_of(id: &BackupId) -> String {
        format!("disk-of-{id}-copy-{REPLICA_REGION}")
    }

    fn has_copy(&self, id: &BackupId) -> bool {
        self.live().contains(&Self::copy_of(id))
    }

    fn live(&self) -> BTreeSet<String> {
        self.live_copies()
    }

    fn live_copies(&self) -> BTreeSet<String> {
        self.copies.live.lock().unwrap().clone()
    }
}

impl World {
    /// This world with the policy replicating to [`REPLICA_REGION`].
    async fn replicated() -> Self {
        let mut world = World::new().await;
        let yaml = config_yaml_with(&world._dir.path().join("kubeconfig"), REPLICATION);
        world.config = Config::from_sources([("p.yaml", yaml.as_str())]).unwrap();
        world.yaml = yaml;
        world
    }

    /// Replicates backup `id` to `second` as `copy` does: its blobs under the same keys, a
    /// disk snapshot copy, the record's replica complete.
    async fn replicate(&self, second: &SecondRegion, id: &BackupId) {
        for key in [layout::archive_key(&self.cluster, id), layout::manifest_key(&self.cluster, id)] {
            second.objects.put(&key, stream_from_bytes(b"x".to_vec()), PutOptions::default()).await.unwrap();
        }
        use lifeboat_shared::ports::SnapshotCopier as _;
        let handle = second.copies.start_copy(&format!("disk-of-{id}"), REPLICA_REGION).await.unwrap();
        let (mut record, etag) = catalog::get(&self.state, &self.cluster, id).await.unwrap().unwrap();
        let at = record.created_at + Duration::minutes(30);
        let mut replica = ReplicaRecord::new(REPLICA_REGION, at, at + Duration::days(1));
        replica.replicated_at = Some(at);
        replica.snapshots.push(SnapshotReplica {
            source_handle: format!("disk-of-{id}"),
            namespace: "shop".into(),
            pvc: "data".into(),
            handle: Some(handle),
            done: true,
            error: None,
        });
        record.replica = Some(replica);
        record.state = BackupState::Replicated;
        catalog::save(&self.state, &record, &etag).await.unwrap();
    }

    async fn record(&self, id: &BackupId) -> BackupRecord {
        catalog::get(&self.state, &self.cluster, id).await.unwrap().unwrap().0
    }

    async fn prune_with(&self, regions: &[ReplicaRegion<'_>], now: DateTime<Utc>, dry_run: bool) -> prune::PruneReport {
        let deps = PruneDeps { replicas: regions, ..self.deps() };
        prune::run(&self.config, deps, &Options::at(now), dry_run).await.unwrap()
    }
}

/// A replicated world with a committed backup on each of the first `days` days, each
/// replicated to the second region.
async fn replicated_backups(days: i64) -> (World, SecondRegion, Vec<BackupId>) {
    let world = World::replicated().await;
    let second = SecondRegion::new(&world);
    let ids = world.committed_backups(days).await;
    for id in &ids {
        world.replicate(&second, id).await;
    }
    (world, second, ids)
}

fn replica_of<'r>(report: &'r prune::PruneReport, id: &BackupId) -> Option<&'r ReplicaJudged> {
    report.backups.iter().find(|b| &b.backup_id == id).and_then(|b| b.replica.as_ref())
}

#[tokio::test]
async fn replicas_follow_their_own_retention_and_never_outlive_their_primary() {
    let (world, second, ids) = replicated_backups(4).await;
    let regions = [second.region()];
    // Primary (keepLast 2, daily 3) keeps days 1–3 and removes day 0; the replicas of the kept
    // ones follow `keepLast: 1`: day 3's stays, days 1 and 2 go alone.
    let now = start() + Duration::days(3) + Duration::hours(1);

    let dry = world.prune_with(&regions, now, true).await;
    assert_eq!(dry.summary(), "prune: kept 3, would remove 1; replicas: kept 1, would remove 3");
    assert_eq!(replica_of(&dry, &ids[0]).unwrap().decision.to_string(), "remove: its primary is removed");
    assert_eq!(replica_of(&dry, &ids[1]).unwrap().decision.to_string(), "remove: no rule keeps it");
    assert!(replica_of(&dry, &ids[3]).unwrap().decision.is_kept());
    assert_eq!(second.live_copies().len(), 4, "a dry run deletes nothing");
    assert_eq!(second.blob_count(&world.cluster, &ids[0]).await, 2);

    let report = world.prune_with(&regions, now, false).await;
    assert_eq!(report.summary(), "prune: kept 3, removed 1; replicas: kept 1, removed 3");
    // Day 0: gone in both regions, the catalog entry last.
    assert_eq!(world.blob_count(&ids[0]).await, 0);
    assert_eq!(second.blob_count(&world.cluster, &ids[0]).await, 0);
    assert!(!second.has_copy(&ids[0]), "its disk snapshot copy was deleted");
    assert!(!world.catalog_ids().await.contains(ids[0].as_str()));
    let day0 = replica_of(&report, &ids[0]).unwrap();
    assert!(day0.removed && day0.blobs_deleted == 2 && day0.snapshots_deleted == 1, "{day0:?}");
    // Days 1, 2: the primary stays whole, the replica is gone and recorded as such.
    for id in &ids[1..3] {
        assert_eq!(world.blob_count(id).await, 2, "primary of {id} kept");
        assert_eq!(second.blob_count(&world.cluster, id).await, 0, "replica of {id} removed");
        assert!(!second.has_copy(id));
        let replica = world.record(id).await.replica.unwrap();
        assert_eq!(replica.removed_at, Some(now), "{replica:?}");
        assert!(!replica.is_restorable());
    }
    // Day 3: both copies stay.
    assert_eq!(second.blob_count(&world.cluster, &ids[3]).await, 2);
    assert!(second.has_copy(&ids[3]));
    assert!(world.record(&ids[3]).await.replica.unwrap().is_restorable());

    // Pruning the result of a prune removes nothing, in either region.
    let again = world.prune_with(&regions, now, false).await;
    assert_eq!(again.summary(), "prune: kept 3, removed 0; replicas: kept 1, removed 0");
    assert_eq!(second.live(), BTreeSet::from([SecondRegion::copy_of(&ids[3])]));
}

/// A second region that fails every request (an outage).
struct Unreachable;

#[async_trait::async_trait]
impl ObjectStore for Unreachable {
    async fn put(
        &self,
        key: &str,
        _: lifeboat_shared::ports::ByteStream,
        _: PutOptions,
    ) -> Result<lifeboat_shared::ports::ObjectMeta, lifeboat_shared::ports::ObjectStoreError> {
        Err(down(key))
    }
    async fn get(
        &self,
        key: &str,
        _: Option<std::ops::Range<u64>>,
    ) -> Result<
        (lifeboat_shared::ports::ObjectMeta, lifeboat_shared::ports::ByteStream),
        lifeboat_shared::ports::ObjectStoreError,
    > {
        Err(down(key))
    }
    async fn head(
        &self,
        key: &str,
    ) -> Result<lifeboat_shared::ports::ObjectMeta, lifeboat_shared::ports::ObjectStoreError> {
        Err(down(key))
    }
    async fn list(
        &self,
        prefix: &str,
        _: Option<&str>,
        _: usize,
    ) -> Result<lifeboat_shared::ports::ObjectPage, lifeboat_shared::ports::ObjectStoreError> {
        Err(down(prefix))
    }
    async fn delete(&self, key: &str) -> Result<bool, lifeboat_shared::ports::ObjectStoreError> {
        Err(down(key))
    }
}

fn down(key: &str) -> lifeboat_shared::ports::ObjectStoreError {
    lifeboat_shared::ports::ObjectStoreError::Unavailable {
        operation: "request",
        key: key.to_owned(),
        transient: true,
        source: "the second region is down".into(),
    }
}

#[tokio::test]
async fn a_second_region_that_cannot_be_reached_leaves_its_removals_for_the_next_run() {
    let (world, second, ids) = replicated_backups(4).await;
    let now = start() + Duration::days(3) + Duration::hours(1);
    // The region's snapshot copies answer, its storage does not.
    let outage = [ReplicaRegion { region: REPLICA_REGION, objects: &Unreachable, snapshots: Some(&second.copies) }];
    let report = world.prune_with(&outage, now, false).await;
    let day0 = report.backups.iter().find(|b| b.backup_id == ids[0]).unwrap();
    assert!(!day0.removed && day0.blobs_deleted == 0, "{day0:?}");
    assert!(day0.left_because.as_deref().is_some_and(|w| w.contains("northeurope") && w.contains("down")), "{day0:?}");
    assert_eq!(world.record(&ids[0]).await.state, BackupState::Deleting, "no restore starts from it meanwhile");
    assert_eq!(world.blob_count(&ids[0]).await, 2, "the primary is not deleted before its replica");
    let day1 = replica_of(&report, &ids[1]).unwrap();
    assert!(!day1.removed && day1.left_because.is_some(), "{day1:?}");
    let replica = world.record(&ids[1]).await.replica.unwrap();
    assert!(replica.removing_since.is_some() && replica.removed_at.is_none(), "{replica:?}");
    assert!(!replica.is_restorable(), "a replica being removed is not offered for restores");

    // A region not configured here at all is named.
    let report = world.prune_with(&[], now, false).await;
    let day0 = report.backups.iter().find(|b| b.backup_id == ids[0]).unwrap();
    assert!(day0.left_because.as_deref().is_some_and(|w| w.contains("no store is configured")), "{day0:?}");

    // Back up: the next run finishes every removal it started.
    let report = world.prune_with(&[second.region()], now, false).await;
    assert!(report.backups.iter().find(|b| b.backup_id == ids[0]).unwrap().removed);
    for id in &ids[1..3] {
        let judged = replica_of(&report, id).unwrap();
        assert!(judged.removed && judged.blobs_deleted == 2, "{judged:?}");
        assert!(world.record(id).await.replica.unwrap().removed_at.is_some());
    }
    assert_eq!(second.live(), BTreeSet::from([SecondRegion::copy_of(&ids[3])]));
}

#[tokio::test]
async fn a_replica_the_second_region_keeps_immutable_is_kept_with_that_reason() {
    let (world, second, ids) = replicated_backups(4).await;
    let until = start() + Duration::days(30);
    let immutable = ImmutableFor {
        inner: LocalDirObjectStore::open(world._dir.path().join("replica").join(REPLICA_REGION)).unwrap(),
        prefix: layout::backup_prefix(&world.cluster, &ids[2]),
        until,
    };
    let regions = [ReplicaRegion { region: REPLICA_REGION, objects: &immutable, snapshots: Some(&second.copies) }];
    let report = world.prune_with(&regions, start() + Duration::days(3) + Duration::hours(1), false).await;
    let day2 = replica_of(&report, &ids[2]).unwrap();
    assert_eq!(day2.decision.to_string(), "keep: immutable until 2026-12-01T02:00:00Z");
    assert_eq!(second.blob_count(&world.cluster, &ids[2]).await, 2);
    assert!(second.has_copy(&ids[2]));
    assert!(replica_of(&report, &ids[1]).unwrap().removed, "the others follow retention");
}

#[tokio::test]
async fn a_failed_copy_is_swept_from_the_second_region_once_no_retry_remains_and_a_running_one_is_not() {
    let (world, second, ids) = replicated_backups(4).await;
    // Day 1's copy failed for good (every retry round failed); day 2's failed with retries
    // left (`copy` will try again); day 3's is still running. Each left half its blobs.
    let cases = [
        (&ids[1], Some("3 copies not done by the deadline"), 3),
        (&ids[2], Some("1 copy not done"), 1),
        (&ids[3], None, 0),
    ];
    for (id, failure, retries) in cases {
        let (mut record, etag) = catalog::get(&world.state, &world.cluster, id).await.unwrap().unwrap();
        record.state = BackupState::Committed;
        let replica = record.replica.as_mut().unwrap();
        replica.replicated_at = None;
        replica.failure = failure.map(str::to_owned);
        replica.retries = retries;
        catalog::save(&world.state, &record, &etag).await.unwrap();
    }
    let report = world.prune_with(&[second.region()], start() + Duration::days(3) + Duration::hours(3), false).await;
    let failed = replica_of(&report, &ids[1]).unwrap();
    assert_eq!(failed.decision.to_string(), "remove: uncommitted leftover older than 1d", "{failed:?}");
    assert!(failed.removed && failed.blobs_deleted == 2 && failed.snapshots_deleted == 1, "{failed:?}");
    assert_eq!(world.blob_count(&ids[1]).await, 2, "its primary stays");
    // Swept for good: `copy` will not bring it back.
    let swept = world.record(&ids[1]).await;
    assert_eq!(
        lifeboat_shared::domain::replica_retry::due_round(&swept, &Default::default(), start() + Duration::days(30)),
        None
    );
    for id in &ids[2..] {
        assert!(replica_of(&report, id).is_none(), "a copy that may still finish is not judged: {id}");
        assert_eq!(second.blob_count(&world.cluster, id).await, 2);
        assert!(second.has_copy(id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_each_replica_with_its_own_decision_and_prunes_the_local_second_region() {
    // `lifeboat prune --data D` finds the second region where `lifeboat up` copies it:
    // `D/replica/<region>`, without snapshot copies (none on the embedded defaults).
    let (world, second, ids) = replicated_backups(4).await;
    for id in &ids {
        let (mut record, etag) = catalog::get(&world.state, &world.cluster, id).await.unwrap().unwrap();
        record.replica.as_mut().unwrap().snapshots.clear();
        catalog::save(&world.state, &record, &etag).await.unwrap();
    }
    let lifeboat = |extra: &[&str]| world.cli(&[&["prune"], extra].concat());
    let dry = lifeboat(&["--dry-run"]);
    let line =
        |text: &str, id: &BackupId| text.lines().find(|l| l.contains(id.as_str())).unwrap_or_default().to_owned();
    assert!(line(&dry, &ids[0]).contains("northeurope: would remove (its primary is removed)"), "{dry}");
    assert!(line(&dry, &ids[1]).contains("northeurope: would remove (no rule keeps it)"), "{dry}");
    assert!(line(&dry, &ids[3]).contains("northeurope: kept (last #1, newest committed)"), "{dry}");
    assert!(dry.contains("replicas: kept 1, would remove 3"), "{dry}");

    let json: serde_json::Value = serde_json::from_str(&lifeboat(&["--dry-run", "--json"])).unwrap();
    let day1 = json["backups"].as_array().unwrap().iter().find(|b| b["backupId"] == ids[1].as_str()).unwrap();
    assert_eq!(day1["replica"]["region"], "northeurope", "{day1}");
    assert_eq!(day1["replica"]["decision"]["verdict"], "remove", "{day1}");

    let done = lifeboat(&[]);
    assert!(done.contains("replicas: kept 1, removed 3"), "{done}");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(second.blob_count(&world.cluster, id).await, if i == 3 { 2 } else { 0 }, "replica of {id}");
    }
}

//! A world for tests of the backup chain: strict test API servers as clusters, the `hourly`
//! policy protecting the first of them, the embedded defaults (SQLite state and queues, a local
//! object directory) under a temporary data directory, a manual clock, and the moves the tests
//! make: fire the timer, take messages off a queue, deliver them to a handler, read the catalog
//! and the manifest.
//!
//! ```ignore
//! let w = WorldBuilder::new()
//!     .cluster("prod", support::world::api_server(Duration::from_millis(300)).await)
//!     .policy("selection: { includeNamespaces: [shop] }")
//!     .build();
//! let request = w.request_backup().await;
//! w.deliver("backup", &request).await;
//! w.commit().await;
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat::app::{AppState, DataDir, Settings, embedded_with_clock};
use lifeboat::handlers::{self, MessageInput, Outcome, TimerInput, TriggerInput};
use lifeboat_shared::adapters::sqlite::SqliteQueue;
use lifeboat_shared::catalog;
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::manifest::Manifest;
use lifeboat_shared::domain::names::ClusterName;
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::domain::records::BackupRecord;
use lifeboat_shared::ports::object_store::collect_bytes;
use lifeboat_shared::ports::{ManualClock, QueueReceiver, ReceivedMessage};
use lifeboat_test_apiserver::{Options, Running, TestApiServer};

/// The id of the backup of the `hourly` policy's first slot after [`START`].
pub const BACKUP_ID: &str = "hourly-20261122t100000z";
/// Where the world's clock starts: just after the `hourly` policy's 10:00 slot.
pub const START: &str = "2026-11-22T10:00:30Z";

/// An RFC 3339 time.
pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
}

/// [`BACKUP_ID`], parsed.
pub fn backup_id() -> BackupId {
    BackupId::parse(BACKUP_ID).expect("id")
}

/// A strict test API server with the snapshot CRDs, whose simulated CSI controller makes a
/// VolumeSnapshot ready after `snapshot_delay` (real time).
pub async fn api_server(snapshot_delay: Duration) -> Running {
    let server = TestApiServer::start(Options { snapshot_delay, ..Options::default() }).await.expect("test API server");
    server.seed_snapshot_crds().await.expect("snapshot CRDs");
    server
}

/// The lines of a handler's log, when it is done; panics on any other outcome.
pub fn logs(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Done { logs, .. } => logs.join("\n"),
        other => panic!("expected Done, got {other:?}"),
    }
}

/// Delivers `message` to `function` of `app` (the world's own, or one wrapped by a test).
///
/// # Errors
/// The handler's error, as text.
pub async fn handle(app: &AppState, function: &str, message: &ReceivedMessage) -> Result<Outcome, String> {
    let def = app.function(function).expect("function").clone();
    handlers::dispatch(app, &def, TriggerInput::Message(MessageInput::from(message))).await.map_err(|e| e.to_string())
}

/// Builds a [`World`]: its clusters, the policy's knobs, the settings and the clock.
pub struct WorldBuilder {
    clusters: Vec<ClusterDef>,
    policy: Vec<String>,
    retention: String,
    settings: Settings,
    start: DateTime<Utc>,
}

impl Default for WorldBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WorldBuilder {
    /// No clusters yet; a plain `hourly` policy; snapshot checks every 2 s; the clock at [`START`].
    pub fn new() -> Self {
        let mut settings = Settings::default();
        settings.backup.snapshot_poll = Duration::from_secs(2);
        let retention = "{ keepLast: 24 }".to_owned();
        Self { clusters: Vec::new(), policy: Vec::new(), retention, settings, start: t(START) }
    }

    /// A cluster `name` in `westeurope`, served by `server`. The policy protects the first one.
    pub fn cluster(self, name: &str, server: Running) -> Self {
        self.cluster_with(name, server, "")
    }

    /// [`Self::cluster`] with `spec` added to the cluster's spec, e.g. `tags: { git_tag: v1.4.2 }`.
    pub fn cluster_with(mut self, name: &str, server: Running, spec: &str) -> Self {
        let region = "westeurope".to_owned();
        self.clusters.push(ClusterDef { name: name.to_owned(), server, region, spec: spec.to_owned() });
        self
    }

    /// [`Self::cluster`] in `region`.
    pub fn cluster_in(mut self, name: &str, server: Running, region: &str) -> Self {
        let (name, region) = (name.to_owned(), region.to_owned());
        self.clusters.push(ClusterDef { name, server, region, spec: String::new() });
        self
    }

    /// The policy's `retention` (`{ keepLast: 24 }` unless set).
    pub fn retention(mut self, retention: &str) -> Self {
        retention.clone_into(&mut self.retention);
        self
    }

    /// Adds `yaml` (one or more lines, not indented) to the policy's spec, e.g.
    /// `selection: { includeNamespaces: [shop] }`.
    pub fn policy(mut self, yaml: &str) -> Self {
        self.policy.extend(yaml.lines().map(|line| format!("  {line}")));
        self
    }

    /// Changes the settings (which start as [`WorldBuilder::new`] says).
    pub fn settings(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(&mut self.settings);
        self
    }

    /// Starts the clock at `start` instead of [`START`].
    pub fn starting_at(mut self, start: DateTime<Utc>) -> Self {
        self.start = start;
        self
    }

    /// Writes each cluster's kubeconfig and the configuration (also to [`World::config_file`]),
    /// and opens the app on the embedded defaults.
    pub fn build(self) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut yaml = String::new();
        for ClusterDef { name, server, region, spec } in &self.clusters {
            let kubeconfig = dir.path().join(format!("{name}.kubeconfig"));
            server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
            let extra = if spec.is_empty() { String::new() } else { format!(", {spec}") };
            yaml.push_str(&format!(
                "apiVersion: lifeboat.io/v1alpha1\nkind: Cluster\nmetadata: {{ name: {name} }}\n\
                 spec: {{ region: {region}, kubeconfig: {{ path: \"{}\" }}{extra} }}\n---\n",
                kubeconfig.display()
            ));
        }
        let protected = self.clusters.first().map(|c| c.name.as_str()).expect("at least one cluster");
        yaml.push_str(&format!(
            "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {{ name: hourly }}\nspec:\n  \
             clusters: [{protected}]\n  schedule: \"0 0 * * * *\"\n  rpo: 2h\n  retention: {}\n{}\n",
            self.retention,
            self.policy.join("\n")
        ));
        let config_file = dir.path().join("lifeboat.yaml");
        std::fs::write(&config_file, &yaml).expect("config file");
        let config = Config::from_sources([("lifeboat.yaml", yaml.as_str())]).expect("config");
        let clock = Arc::new(ManualClock::new(self.start));
        let data = DataDir::new(&dir.path().join("data"));
        let (app, queue) = embedded_with_clock(&data, config, self.settings, clock.clone()).expect("app");
        let servers = self.clusters.into_iter().map(|c| (c.name, c.server)).collect();
        World { app, queue, clock, servers, dir }
    }
}

/// A cluster of the world.
struct ClusterDef {
    name: String,
    server: Running,
    region: String,
    /// More of its spec.
    spec: String,
}

/// The snapshot handle a restored PVC's data comes from: PVC → VolumeSnapshot → content.
pub fn restored_handle(server: &Running, namespace: &str, pvc: &str) -> String {
    let s = server.store();
    let claim = s.get("v1", "PersistentVolumeClaim", namespace, pvc).expect("PVC restored");
    assert_eq!(claim["spec"]["dataSource"]["kind"], "VolumeSnapshot", "{claim}");
    let vs_name = claim["spec"]["dataSource"]["name"].as_str().expect("a snapshot name");
    let vs = s.get("snapshot.storage.k8s.io/v1", "VolumeSnapshot", namespace, vs_name).expect("VolumeSnapshot");
    let content = vs["spec"]["source"]["volumeSnapshotContentName"].as_str().expect("pre-provisioned content");
    let vsc = s.get("snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", "", content).expect("content");
    assert_eq!(vsc["spec"]["volumeSnapshotRef"]["namespace"], namespace, "{vsc}");
    vsc["spec"]["source"]["snapshotHandle"].as_str().expect("handle").to_owned()
}

/// The running world; see the module's documentation.
pub struct World {
    /// The app on the embedded defaults.
    pub app: AppState,
    /// Its queues.
    pub queue: Arc<SqliteQueue>,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    servers: Vec<(String, Running)>,
    /// Holds the kubeconfigs, the configuration and the data directory.
    pub dir: tempfile::TempDir,
}

impl World {
    /// The test API server of cluster `name`.
    pub fn server(&self, name: &str) -> &Running {
        self.servers.iter().find(|(n, _)| n == name).map(|(_, s)| s).unwrap_or_else(|| panic!("no cluster {name}"))
    }

    /// The data directory (`lifeboat --data`).
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The configuration file (`lifeboat --config`).
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("lifeboat.yaml")
    }

    /// Fires `schedule_tick` once.
    pub async fn tick(&self) {
        let tick = self.app.function("schedule_tick").expect("tick").clone();
        handlers::dispatch(&self.app, &tick, TriggerInput::Timer(TimerInput::default())).await.expect("tick");
    }

    /// Takes (receives and completes) every message on `queue`.
    pub async fn take(&self, queue: &str) -> Vec<ReceivedMessage> {
        let batch = self.queue.receive(queue, 100).await.expect("receive");
        for m in &batch {
            self.queue.complete(m).await.expect("complete");
        }
        batch
    }

    /// Takes the one message on `queue`; panics unless there is exactly one.
    pub async fn take_one(&self, queue: &str) -> ReceivedMessage {
        let mut batch = self.take(queue).await;
        assert_eq!(batch.len(), 1, "exactly one message on {queue}: {batch:?}");
        batch.remove(0)
    }

    /// Delivers `message` to `function`; panics when the handler fails.
    pub async fn deliver(&self, function: &str, message: &ReceivedMessage) -> Outcome {
        handle(&self.app, function, message).await.unwrap_or_else(|e| panic!("{function}: {e}"))
    }

    /// Fires the timer and takes the one backup request it sends.
    pub async fn request_backup(&self) -> ReceivedMessage {
        self.tick().await;
        self.take_one("backup-requests").await
    }

    /// Moves the clock on a minute at a time, giving the simulated CSI controller real time,
    /// and delivers the snapshot checks that come due, until one commits the backup; panics if
    /// none does.
    pub async fn commit(&self) {
        for _ in 0..30 {
            self.clock.advance(Duration::from_secs(60));
            tokio::time::sleep(Duration::from_millis(150)).await; // the simulated CSI controller works in real time
            for check in self.take("snapshot-checks").await {
                if logs(&self.deliver("snapshot_check", &check).await).contains("committed") {
                    return;
                }
            }
        }
        panic!("the backup never committed");
    }

    /// The catalog's record of backup `id` of cluster `prod`, if any.
    pub async fn backup_record(&self, id: &BackupId) -> Option<BackupRecord> {
        let cluster = ClusterName::new("prod").expect("name");
        catalog::get(self.app.state.as_ref(), &cluster, id).await.expect("catalog").map(|(record, _)| record)
    }

    /// The manifest of backup `id` of cluster `prod`; panics when it is not there (not committed).
    pub async fn manifest(&self, id: &BackupId) -> Manifest {
        let key = format!("backups/prod/{id}/manifest.json");
        let (_, body) = self.app.objects.get(&key, None).await.expect("manifest exists: the commit");
        serde_json::from_slice(&collect_bytes(body).await.expect("read")).expect("manifest JSON")
    }
}

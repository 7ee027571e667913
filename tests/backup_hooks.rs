//! Pre- and post-snapshot hooks (Velero's annotations) against the strict test API server,
//! whose `pods/exec` records every command and answers as the test says: the pre hook runs
//! before the VolumeSnapshot exists and the post hook after; a failing `Fail` hook fails the
//! backup with the command's stderr, a failing `Continue` hook makes it partial.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeboat::app::{AppState, DataDir, Settings, embedded_with_clock};
use lifeboat::handlers::{self, MessageInput, Outcome, TimerInput, TriggerInput};
use lifeboat_shared::adapters::sqlite::SqliteQueue;
use lifeboat_shared::catalog;
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::manifest::Manifest;
use lifeboat_shared::domain::names::ClusterName;
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::domain::records::{BackupRecord, BackupState};
use lifeboat_shared::ports::object_store::collect_bytes;
use lifeboat_shared::ports::{ManualClock, QueueReceiver};
use lifeboat_test_apiserver::{ExecResult, Options, Running, TestApiServer};
use serde_json::{Value, json};

struct World {
    server: Running,
    app: AppState,
    queue: Arc<SqliteQueue>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

const ID: &str = "hourly-20261122t100000z";

/// A server with the sample app and an annotated, running pod `shop/pg-0`; a policy with
/// `volumes.hooks` as given.
async fn world(hooks: bool, on_error: &str) -> World {
    let server = TestApiServer::start(Options { snapshot_delay: Duration::from_millis(200), ..Options::default() })
        .await
        .expect("test API server");
    server.seed_snapshot_crds().await.expect("snapshot CRDs");
    server.seed_sample_app("shop").await.expect("sample app");
    let pod = server
        .store()
        .create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "pg-0", "namespace": "shop", "annotations": {
                "pre.hook.backup.velero.io/command": r#"["/sbin/fsfreeze", "--freeze", "/data"]"#,
                "pre.hook.backup.velero.io/on-error": on_error,
                "post.hook.backup.velero.io/command": r#"["/sbin/fsfreeze", "--unfreeze", "/data"]"#,
            }},
            "spec": {"containers": [{"name": "db", "image": "postgres:17"}, {"name": "metrics", "image": "exporter"}]}
        }))
        .expect("pod");
    let mut running = pod;
    running["status"] = json!({"phase": "Running"});
    server.store().update_status(running).expect("pod status");

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
  selection: {{ includeNamespaces: [shop] }}
  volumes: {{ snapshot: true, hooks: {hooks} }}
"#,
        kubeconfig.display()
    );
    let config = Config::from_sources([("policy.yaml", yaml.as_str())]).expect("config");
    let clock = Arc::new(ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:30Z").expect("time").with_timezone(&chrono::Utc),
    ));
    let mut settings = Settings::default();
    settings.backup.snapshot_poll = Duration::from_secs(2);
    let (app, queue) =
        embedded_with_clock(&DataDir::new(&dir.path().join("data")), config, settings, clock.clone()).expect("app");
    World { server, app, queue, clock, _dir: dir }
}

fn logs(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Done { logs, .. } => logs.join("\n"),
        other => panic!("expected Done, got {other:?}"),
    }
}

async fn deliver(w: &World, function: &str, message: &lifeboat_shared::ports::ReceivedMessage) -> String {
    let def = w.app.function(function).expect("function").clone();
    let outcome = handlers::dispatch(&w.app, &def, TriggerInput::Message(MessageInput::from(message)))
        .await
        .unwrap_or_else(|e| panic!("{function}: {e}"));
    logs(&outcome)
}

/// Fires the timer and delivers the backup request twice (at least once delivery); returns
/// the first delivery's log.
async fn backup(w: &World) -> String {
    let tick = w.app.function("schedule_tick").expect("tick").clone();
    handlers::dispatch(&w.app, &tick, TriggerInput::Timer(TimerInput::default())).await.expect("tick");
    let mut batch = w.queue.receive("backup-requests", 10).await.expect("receive");
    assert_eq!(batch.len(), 1, "{batch:?}");
    let request = batch.remove(0);
    w.queue.complete(&request).await.expect("complete");
    let first = deliver(w, "backup", &request).await;
    deliver(w, "backup", &request).await;
    first
}

async fn record(w: &World) -> BackupRecord {
    let cluster = ClusterName::new("prod").expect("name");
    let id = BackupId::parse(ID).expect("id");
    catalog::get(w.app.state.as_ref(), &cluster, &id).await.expect("catalog").expect("record").0
}

fn volume_snapshots(server: &Running) -> usize {
    server.store().list("snapshot.storage.k8s.io/v1", "VolumeSnapshot", Some("shop")).expect("list").len()
}

/// Answers `--freeze` with `freeze`, anything else with success; notes, per exec, its
/// second word and how many VolumeSnapshots existed at that moment.
fn respond(w: &World, freeze: ExecResult) -> Arc<Mutex<Vec<(String, usize)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (store, log) = (w.server.store().clone(), Arc::clone(&seen));
    w.server.execs().respond_with(move |exec| {
        let snapshots = store.list("snapshot.storage.k8s.io/v1", "VolumeSnapshot", Some("shop")).map_or(0, |l| l.len());
        let word = exec.command.get(1).cloned().unwrap_or_default();
        log.lock().expect("log").push((word.clone(), snapshots));
        if word == "--freeze" { freeze.clone() } else { ExecResult::default() }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pre_hook_runs_before_the_snapshot_is_created_and_the_post_hook_after() {
    let w = world(true, "Fail").await;
    let seen = respond(&w, ExecResult::default());
    let log = backup(&w).await;
    assert!(log.contains("waiting for 1 volume snapshot"), "{log}");

    assert_eq!(
        *seen.lock().expect("seen"),
        [("--freeze".to_owned(), 0), ("--unfreeze".to_owned(), 1)],
        "freeze with no VolumeSnapshot yet, thaw once it exists; the redelivery ran neither again"
    );
    let execs = w.server.execs().recorded();
    assert!(
        execs.iter().all(|e| (e.namespace.as_str(), e.pod.as_str(), e.container.as_str()) == ("shop", "pg-0", "db"))
    );
    assert_eq!(execs[0].command, ["/sbin/fsfreeze", "--freeze", "/data"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pre_hook_with_on_error_fail_fails_the_backup_and_still_thaws() {
    let w = world(true, "Fail").await;
    let busy =
        ExecResult { exit_code: 1, stdout: String::new(), stderr: "fsfreeze: /data: Device or resource busy\n".into() };
    let seen = respond(&w, busy);
    let log = backup(&w).await;
    assert!(log.contains("failed"), "{log}");

    let record = record(&w).await;
    assert_eq!(record.state, BackupState::Failed);
    let reason = record.failure.unwrap_or_default();
    assert!(reason.contains("Device or resource busy") && reason.contains("shop/pg-0"), "{reason}");
    assert_eq!(volume_snapshots(&w.server), 0, "no snapshot of an unfrozen volume");
    let words: Vec<String> = seen.lock().expect("seen").iter().map(|(w, _)| w.clone()).collect();
    assert_eq!(words, ["--freeze", "--unfreeze"], "the post hook undoes what the pre hook began");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pre_hook_with_on_error_continue_makes_the_backup_partial() {
    let w = world(true, "Continue").await;
    let busy = ExecResult { exit_code: 3, stdout: String::new(), stderr: "not frozen".into() };
    respond(&w, busy);
    let log = backup(&w).await;
    assert!(log.contains("waiting for 1 volume snapshot"), "{log}");

    let mut committed = false;
    for _ in 0..20 {
        w.clock.advance(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(150)).await; // the simulated CSI controller works in real time
        let mut checks = w.queue.receive("snapshot-checks", 10).await.expect("receive");
        let Some(check) = checks.pop() else { continue };
        w.queue.complete(&check).await.expect("complete");
        if deliver(&w, "snapshot_check", &check).await.contains("committed") {
            committed = true;
            break;
        }
    }
    assert!(committed, "the backup never committed");
    let key = format!("backups/prod/{ID}/manifest.json");
    let (_, body) = w.app.objects.get(&key, None).await.expect("manifest");
    let manifest: Manifest = serde_json::from_slice(&collect_bytes(body).await.expect("read")).expect("json");
    assert!(manifest.is_partial());
    assert!(
        manifest.warnings.iter().any(|m| m.contains("pre hook") && m.contains("code 3") && m.contains("not frozen")),
        "{:?}",
        manifest.warnings
    );
    assert_eq!(manifest.snapshots.len(), 1);
    assert!(manifest.snapshots[0].handle.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_do_not_run_unless_the_policy_asks() {
    let w = world(false, "Fail").await;
    let log = backup(&w).await;
    assert!(log.contains("waiting for 1 volume snapshot"), "{log}");
    assert_eq!(w.server.execs().recorded(), []);
    let pod: Value = w.server.store().get("v1", "Pod", "shop", "pg-0").expect("pod");
    assert!(pod.pointer("/metadata/annotations").is_some(), "the pod was annotated all along");
}

//! Pre- and post-snapshot hooks (Velero's annotations) against the strict test API server,
//! whose `pods/exec` records every command and answers as the test says: the pre hook runs
//! before the VolumeSnapshot exists and the post hook after; a failing `Fail` hook fails the
//! backup with the command's stderr, a failing `Continue` hook makes it partial.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeboat_shared::domain::records::BackupState;
use lifeboat_test_apiserver::{ExecResult, Running};
use serde_json::{Value, json};
use support::world::{World, WorldBuilder, api_server, backup_id, logs};

/// A server with the sample app and an annotated, running pod `shop/pg-0`; a policy with
/// `volumes.hooks` as given.
async fn world(hooks: bool, on_error: &str) -> World {
    let server = api_server(Duration::from_millis(200)).await;
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
    WorldBuilder::new()
        .cluster("prod", server)
        .policy("selection: { includeNamespaces: [shop] }")
        .policy(&format!("volumes: {{ snapshot: true, hooks: {hooks} }}"))
        .build()
}

/// Fires the timer and delivers the backup request twice (at least once delivery); returns
/// the first delivery's log.
async fn backup(w: &World) -> String {
    let request = w.request_backup().await;
    let first = logs(&w.deliver("backup", &request).await);
    logs(&w.deliver("backup", &request).await);
    first
}

fn volume_snapshots(server: &Running) -> usize {
    server.store().list("snapshot.storage.k8s.io/v1", "VolumeSnapshot", Some("shop")).expect("list").len()
}

/// Answers `--freeze` with `freeze`, anything else with success; notes, per exec, its
/// second word and how many VolumeSnapshots existed at that moment.
fn respond(w: &World, freeze: ExecResult) -> Arc<Mutex<Vec<(String, usize)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (store, log) = (w.server("prod").store().clone(), Arc::clone(&seen));
    w.server("prod").execs().respond_with(move |exec| {
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
    let execs = w.server("prod").execs().recorded();
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

    let record = w.backup_record(&backup_id()).await.expect("record");
    assert_eq!(record.state, BackupState::Failed);
    let reason = record.failure.unwrap_or_default();
    assert!(reason.contains("Device or resource busy") && reason.contains("shop/pg-0"), "{reason}");
    assert_eq!(volume_snapshots(w.server("prod")), 0, "no snapshot of an unfrozen volume");
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

    w.commit().await;
    let manifest = w.manifest(&backup_id()).await;
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
    assert_eq!(w.server("prod").execs().recorded(), []);
    let pod: Value = w.server("prod").store().get("v1", "Pod", "shop", "pg-0").expect("pod");
    assert!(pod.pointer("/metadata/annotations").is_some(), "the pod was annotated all along");
}

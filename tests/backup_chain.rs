//! The backup chain against the strict test API server: `schedule_tick` → `backup` →
//! `snapshot_check` → committed, through the real handlers, the real queues and a real
//! archive; then the archive and the manifest are checked object by object.

#[path = "support/crash.rs"]
mod crash;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lifeboat::app::AppState;
use lifeboat::handlers::{self, MessageInput, TimerInput, TriggerInput};
use lifeboat_shared::archive::{ArchiveReader, EntryRecord, ReadOptions, StoredDigest, read_sealed_lines};
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::records::BackupState;
use lifeboat_shared::ports::QueueReceiver;
use lifeboat_shared::ports::object_store::collect_bytes;
use lifeboat_test_apiserver::Denial;
use serde_json::Value;
use support::world::{World, WorldBuilder, api_server, backup_id, logs};

/// `prod`: the sample app in `shop`, and a `scratch` namespace the policy excludes; the policy
/// replicates to `northeurope`, with `spec_extra` added to its spec.
async fn world(spec_extra: &str) -> World {
    let server = api_server(Duration::from_millis(300)).await;
    server.seed_sample_app("shop").await.expect("sample app");
    server
        .store()
        .create(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scratch"}}))
        .expect("ns");
    server
        .store()
        .create(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tmp", "namespace": "scratch"}}))
        .expect("cm");
    WorldBuilder::new()
        .cluster_with("prod", server, "tags: { git_tag: v1.4.2 }")
        .policy("replication: { region: northeurope, rpo: 4h }")
        .policy("selection: { excludeNamespaces: [scratch] }")
        .policy(spec_extra)
        .build()
}

/// Runs tick → backup → checks until committed; returns the backup id.
async fn run_chain(w: &World) -> BackupId {
    let request = w.request_backup().await;
    let outcome = w.deliver("backup", &request).await;
    assert!(logs(&outcome).contains("waiting for 1 volume snapshot"), "{outcome:?}");
    // Redelivery of the same request (at least once): nothing is done twice.
    let again = w.deliver("backup", &request).await;
    assert!(logs(&again).contains("waiting for 1 volume snapshot"), "{again:?}");
    w.commit().await;
    backup_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_backup_is_committed_with_every_object_and_its_snapshot() {
    let w = world("").await;
    let id = run_chain(&w).await;

    let record = w.backup_record(&id).await.expect("record");
    assert_eq!(record.state, BackupState::Committed);

    let manifest = w.manifest(&id).await;
    assert_eq!(manifest.cluster_version, "v1.33.5");
    assert_eq!(manifest.cluster_region, "westeurope");
    assert_eq!(manifest.cluster_tags.get("git_tag").map(String::as_str), Some("v1.4.2"), "the cluster's tags");
    assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);

    // The snapshot: requested for the StatefulSet's PVC, ready, with an Azure disk snapshot id.
    assert_eq!(manifest.snapshots.len(), 1, "{:?}", manifest.snapshots);
    let snap = &manifest.snapshots[0];
    assert_eq!((snap.namespace.as_str(), snap.pvc.as_str()), ("shop", "data-db-0"));
    assert_eq!(snap.class.as_deref(), Some("csi-azuredisk-vsc"), "the default class (its content is retained)");
    let handle = snap.handle.as_deref().expect("a handle");
    assert!(
        handle.starts_with("/subscriptions/") && handle.contains("/providers/Microsoft.Compute/snapshots/"),
        "{handle}"
    );
    let snapshots =
        w.server("prod").store().list("snapshot.storage.k8s.io/v1", "VolumeSnapshot", Some("shop")).expect("list");
    assert_eq!(snapshots.len(), 1, "a redelivered request must not snapshot twice");
    let content_name = snapshots[0]["status"]["boundVolumeSnapshotContentName"].as_str().expect("bound");
    let content = w
        .server("prod")
        .store()
        .get("snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", "", content_name)
        .expect("content");
    assert_eq!(content["spec"]["deletionPolicy"], "Retain", "the snapshot must outlive its namespace: {content}");

    // The archive: exactly the manifest's objects, byte for byte.
    let (_, body) = w.app.objects.get(&manifest.archive.key, None).await.expect("archive");
    let bytes = collect_bytes(body).await.expect("read archive");
    assert_eq!(bytes.len() as u64, manifest.archive.stored_bytes);
    let mut reader = ArchiveReader::new(bytes.as_slice(), &ReadOptions::default()).expect("reader");
    let mut in_archive = BTreeMap::new();
    for entry in reader.entries().expect("entries") {
        let entry = entry.expect("entry");
        in_archive.insert(entry.path.clone(), entry);
    }
    let listed: BTreeSet<&str> = manifest.objects.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(listed, in_archive.keys().map(String::as_str).collect(), "manifest and archive list the same objects");
    for object in &manifest.objects {
        assert_eq!(in_archive[&object.path].record(), *object, "digest of {}", object.path);
    }

    let has = |p: &str| in_archive.contains_key(p);
    for path in [
        "resources/namespaces/cluster/shop.json",
        "resources/deployments.apps/namespaces/shop/web.json",
        "resources/statefulsets.apps/namespaces/shop/db.json",
        "resources/persistentvolumeclaims/namespaces/shop/data-db-0.json",
        "resources/secrets/namespaces/shop/web-secret.json",
        "resources/configmaps/namespaces/shop/web-config.json",
        "resources/rolebindings.rbac.authorization.k8s.io/namespaces/shop/web-reader.json",
        "resources/storageclasses.storage.k8s.io/cluster/managed-csi.json",
        "resources/customresourcedefinitions.apiextensions.k8s.io/cluster/widgets.example.lifeboat.io.json",
    ] {
        assert!(has(path), "missing {path}; archive has {:?}", in_archive.keys().collect::<Vec<_>>());
    }
    assert!(in_archive.keys().any(|p| p.starts_with("resources/persistentvolumes/cluster/")), "the PVC's PV (auto)");
    assert!(
        in_archive.keys().any(|p| p.starts_with("resources/widgets.example.lifeboat.io/namespaces/shop/")),
        "custom resources"
    );
    assert!(!in_archive.keys().any(|p| p.contains("/scratch/")), "an excluded namespace leaked into the archive");
    assert!(!in_archive.keys().any(|p| p.starts_with("resources/events")), "events are skipped");
    assert!(
        !in_archive.keys().any(|p| p.starts_with("resources/volumesnapshots")),
        "Lifeboat's own snapshots are not objects"
    );
    assert!(manifest.skipped_resources.contains_key("events"), "{:?}", manifest.skipped_resources);
    let deployment: Value =
        serde_json::from_slice(&in_archive["resources/deployments.apps/namespaces/shop/web.json"].bytes).expect("json");
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["apiVersion"], "apps/v1");

    // Committed, so the copy to the second region is requested.
    let copy = w.take_one("copy-requests").await;
    assert_eq!(copy.message_id, format!("prod.{id}.copy-northeurope.0"));
    drop(w.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_or_missing_volume_snapshot_class_makes_the_backup_partial_not_failed() {
    let w = world("").await;
    w.server("prod")
        .store()
        .delete("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass", "", "csi-azuredisk-vsc")
        .expect("delete the class");
    w.server("prod")
        .store()
        .delete("snapshot.storage.k8s.io/v1", "VolumeSnapshotClass", "", "csi-azuredisk-vsc-retain")
        .expect("delete the retaining class");
    let request = w.request_backup().await;
    let outcome = w.deliver("backup", &request).await;
    assert!(logs(&outcome).contains("committed, partially"), "{outcome:?}");
    let manifest = w.manifest(&backup_id()).await;
    assert!(manifest.is_partial());
    assert!(
        manifest.warnings.iter().any(|w| w.contains("no VolumeSnapshotClass for CSI driver disk.csi.azure.com")),
        "{:?}",
        manifest.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_type_answering_403_is_recorded_and_the_backup_commits_partial() {
    let w = world("").await;
    let user = "system:serviceaccount:lifeboat:lifeboat";
    w.server("prod").faults().deny(Denial::new("apps", "deployments").verb("list").user(user));
    let id = run_chain(&w).await;
    let record = w.backup_record(&id).await.expect("record");
    assert_eq!(record.state, BackupState::Committed, "the other types and the snapshot are backed up");
    let manifest = w.manifest(&id).await;
    assert!(manifest.is_partial());
    let reason = format!(
        "deployments.apps is forbidden: User \"{user}\" cannot list resource \"deployments\" in API group \"apps\""
    );
    assert!(manifest.warnings.iter().any(|w| w.contains(&reason)), "{:?}", manifest.warnings);
    assert!(!manifest.objects.iter().any(|o| o.path.starts_with("resources/deployments.apps/")), "nothing listed");
    assert!(manifest.objects.iter().any(|o| o.path == "resources/statefulsets.apps/namespaces/shop/db.json"));
    assert_eq!(manifest.snapshots.len(), 1);

    let data = w.data();
    let list = |json: bool| {
        let mut args = vec!["backups", "list", "--data", data.to_str().expect("path")];
        if json {
            args.push("--json");
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(&args)
            .env_remove("LIFEBOAT_CONFIG")
            .output()
            .expect("run lifeboat");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let table = list(false);
    let row = table.lines().find(|l| l.trim_start().starts_with(id.as_str())).unwrap_or_default();
    assert!(row.contains("committed (partial)"), "{table}");
    assert!(table.contains(&reason), "the reason is shown under the table: {table}");
    let json: Value = serde_json::from_str(&list(true)).expect("JSON");
    let listed = &json["backups"][0];
    assert_eq!((listed["state"].as_str(), listed["partial"].as_bool()), (Some("committed"), Some(true)));
    assert!(listed["warnings"][0].as_str().is_some_and(|w| w.contains(&reason)), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_stays_down_is_retried_then_the_backup_fails_with_the_reason() {
    let w = world("").await;
    use lifeboat_test_apiserver::{Fault, FaultRule};
    w.server("prod").faults().inject(FaultRule::new(Fault::InternalError).times(1000));
    let request = w.request_backup().await;
    let def = w.app.function("backup").expect("backup").clone();
    let input = MessageInput {
        queue: request.queue.clone(),
        message_id: request.message_id.clone(),
        body: request.body.clone(),
        delivery_count: 1,
        enqueued_time: None,
    };
    let err = handlers::dispatch(&w.app, &def, TriggerInput::Message(input)).await.expect_err("must fail");
    assert_eq!(err.status(), 503, "transient: the host retries it: {err}");
    assert!(
        w.app.objects.head("backups/prod/hourly-20261122t100000z/manifest.json").await.is_err(),
        "nothing committed"
    );
    let id = backup_id();
    let record = w.backup_record(&id).await;
    assert_ne!(record.map(|r| r.state), Some(BackupState::Failed), "not failed while retries remain");

    // The last delivery the queue allows: the backup fails for good, with the reason.
    let last = w.app.settings.backup.give_up_after_deliveries;
    let input = MessageInput {
        queue: request.queue.clone(),
        message_id: request.message_id.clone(),
        body: request.body.clone(),
        delivery_count: last,
        enqueued_time: None,
    };
    let outcome =
        handlers::dispatch(&w.app, &def, TriggerInput::Message(input)).await.expect("handled: no more retries");
    assert!(logs(&outcome).contains("failed"), "{outcome:?}");
    let record = w.backup_record(&id).await.expect("record");
    assert_eq!(record.state, BackupState::Failed);
    let reason = record.failure.unwrap_or_default();
    assert!(reason.contains("injected fault: internal error"), "{reason}");
    assert!(reason.contains(&format!("gave up after {last} deliveries")), "{reason}");
    assert!(
        w.app.objects.head("backups/prod/hourly-20261122t100000z/manifest.json").await.is_err(),
        "nothing committed"
    );
    w.server("prod").faults().clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_policy_writes_an_archive_only_its_identity_opens() {
    let (secret, public) = lifeboat_shared::archive::generate_identity();
    let w = world(&format!("encryption: {{ ageRecipients: [{public}] }}")).await;
    let id = run_chain(&w).await;
    let manifest = w.manifest(&id).await;
    let encryption = manifest.archive.encryption.as_ref().expect("the manifest says how it is encrypted");
    assert_eq!((encryption.format.as_str(), encryption.recipients.clone()), ("age", vec![public.clone()]));
    let (_, body) = w.app.objects.get(&manifest.archive.key, None).await.expect("archive");
    let bytes = collect_bytes(body).await.expect("read");
    assert!(
        !String::from_utf8_lossy(&bytes).contains("web-secret"),
        "object names must not be readable in the archive"
    );
    assert!(
        ArchiveReader::new(bytes.as_slice(), &ReadOptions::default())
            .and_then(|mut r| r.entries().map(|_| ()))
            .is_err(),
        "no identity, no archive"
    );
    let options = ReadOptions { identities: vec![secret.clone()], ..ReadOptions::default() };
    let mut reader = ArchiveReader::new(bytes.as_slice(), &options).expect("decrypts with the identity");
    let entries: Vec<_> = reader.entries().expect("entries").map(|e| e.expect("entry")).collect();
    assert_eq!(entries.len() as u64, manifest.object_count());

    // The manifest lists the paths, in the clear; the digests are sealed to the recipients.
    let paths: BTreeSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(manifest.object_paths.iter().map(String::as_str).collect::<BTreeSet<_>>(), paths);
    assert!(manifest.objects.is_empty(), "no record with a digest in the manifest");
    let sealed = manifest.sealed_index.clone().expect("the manifest points to the sealed index");
    let stored = StoredDigest { bytes: sealed.stored_bytes, sha256: sealed.sha256.clone() };
    let (_, body) = w.app.objects.get(&sealed.key, None).await.expect("sealed index");
    let sealed_bytes = collect_bytes(body).await.expect("read");
    let mut unsealed = BTreeMap::new();
    read_sealed_lines(sealed_bytes.as_slice(), &[secret], &stored, |_, line| {
        let record: EntryRecord = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        unsealed.insert(record.path.clone(), record);
        Ok(())
    })
    .expect("the identity opens the sealed index");
    for entry in &entries {
        assert_eq!(unsealed.get(&entry.path), Some(&entry.record()), "the sealed record of {}", entry.path);
    }

    // No stored byte anywhere (objects, catalog, queues) holds the plain digest of a Secret.
    let secrets: Vec<EntryRecord> =
        entries.iter().filter(|e| e.path.starts_with("resources/secrets/")).map(|e| e.record()).collect();
    assert!(!secrets.is_empty(), "the sample app has Secrets");
    let mut stored_files = Vec::new();
    files_under(&w.data(), &mut stored_files);
    assert!(stored_files.iter().any(|(name, _)| name.ends_with("manifest.json")), "{stored_files:?}");
    for (name, content) in &stored_files {
        for secret in &secrets {
            let digest = secret.sha256.as_bytes();
            assert!(
                !content.windows(digest.len()).any(|w| w == digest),
                "{name} holds the plain SHA-256 of {}",
                secret.path
            );
        }
    }
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).expect("read file")));
        }
    }
}

/// Delivers ticks and messages with `app` until the backup settles; failed deliveries are
/// abandoned and come back, as Service Bus would redeliver them.
async fn drive(w: &World, app: &AppState) -> Option<BackupState> {
    let id = backup_id();
    for _ in 0..40 {
        let tick = app.function("schedule_tick").expect("tick").clone();
        let _ = handlers::dispatch(app, &tick, TriggerInput::Timer(TimerInput::default())).await;
        for (queue, function) in [("backup-requests", "backup"), ("snapshot-checks", "snapshot_check")] {
            for message in w.queue.receive(queue, 10).await.expect("receive") {
                let def = app.function(function).expect("function").clone();
                let input = MessageInput::from(&message);
                match handlers::dispatch(app, &def, TriggerInput::Message(input)).await {
                    Ok(_) => w.queue.complete(&message).await.expect("complete"),
                    Err(_) => w.queue.abandon(&message, None).await.expect("abandon"),
                }
            }
        }
        let state = w.backup_record(&id).await.map(|r| r.state);
        if matches!(state, Some(BackupState::Committed | BackupState::Failed)) {
            return state;
        }
        w.clock.advance(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    None
}

/// One run with a crash at write number `n` (of a policy with `spec_extra`): returns whether
/// the crash point was reached.
async fn crash_at(n: usize, when: crash::When, spec_extra: &str) -> bool {
    use crash::*;
    let w = world(spec_extra).await;
    let c = Crash::new(n, when);
    let app = crashing(&w.app, &c);
    let state = drive(&w, &app).await;
    if !c.tripped() {
        return false;
    }
    let what = format!("crash {when:?} write {n}");
    if state != Some(BackupState::Committed) {
        let record = w.backup_record(&backup_id()).await;
        panic!("{what}: the backup did not settle as committed: {:?}", record.map(|r| (r.state, r.failure)));
    }
    let manifest = w.manifest(&backup_id()).await;
    let snapshots =
        w.server("prod").store().list("snapshot.storage.k8s.io/v1", "VolumeSnapshot", Some("shop")).expect("list");
    assert_eq!(snapshots.len(), 1, "{what}: snapshots were duplicated");
    assert_eq!(manifest.snapshots.len(), 1, "{what}");
    assert!(manifest.snapshots[0].handle.is_some(), "{what}: a snapshot was left unrecorded: {:?}", manifest.snapshots);
    assert!(!manifest.objects.is_empty(), "{what}");
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_write_is_finished_by_redelivery_with_nothing_doubled() {
    crash_at_every_write("", 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_backup_crashed_at_any_write_is_finished_by_redelivery_with_nothing_doubled() {
    // Split, parts, joins and checks: more writes than unsharded.
    crash_at_every_write("shards: 3", 40).await;
}

async fn crash_at_every_write(spec_extra: &str, at_least: usize) {
    let mut points = 0;
    for when in [crash::When::Before, crash::When::After] {
        // Four runs at a time; stop once the crash point lies beyond the chain's last write.
        let mut n = 1;
        loop {
            let batch: Vec<_> = (n..n + 4).map(|k| crash_at(k, when, spec_extra)).collect();
            let reached = futures_util::future::join_all(batch).await;
            points += reached.iter().filter(|r| **r).count();
            if reached.iter().any(|r| !r) {
                break;
            }
            n += 4;
            assert!(n < 200, "the chain never ran out of writes");
        }
    }
    assert!(points >= at_least, "too few crash points exercised: {points}");
}

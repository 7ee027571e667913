//! Sharded backups against the strict test API server: a policy with `shards: 3` splits one
//! backup into parts handled by their own `backup` messages, joined into ONE committed backup
//! whose archive and manifest hold every object exactly once, with every snapshot; redelivered
//! messages change nothing; a restore reads it.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lifeboat_shared::archive::{ArchiveReader, ReadOptions};
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::records::BackupState;
use lifeboat_shared::domain::shards::Shard;
use lifeboat_shared::ports::ReceivedMessage;
use lifeboat_shared::ports::object_store::collect_bytes;
use support::world::{World, WorldBuilder, api_server, backup_id, logs};

const TEAMS: usize = 8;

async fn world() -> World {
    let server = api_server(Duration::from_millis(300)).await;
    // A stateful app, and team namespaces spread over the parts, each binding the same
    // ClusterRole: a cluster-scoped object several parts need, kept once.
    server.seed_sample_app("shop").await.expect("shop");
    let store = server.store();
    store
        .create(serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "team-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}))
        .expect("cluster role");
    for i in 0..TEAMS {
        let ns = format!("team-{i}");
        store
            .create(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .expect("ns");
        store
            .create(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": ns}, "data": {"team": ns}}))
            .expect("cm");
        store
            .create(serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "readers", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "team-reader"},
                "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}]}))
            .expect("role binding");
    }
    WorldBuilder::new().cluster("prod", server).policy("shards: 3").build()
}

/// Delivers `message` to `function`: its log.
async fn deliver(w: &World, function: &str, message: &ReceivedMessage) -> String {
    logs(&w.deliver(function, message).await)
}

fn body(m: &ReceivedMessage) -> serde_json::Value {
    serde_json::from_slice(&m.body).expect("JSON body")
}

/// Tick → split → parts (each with its join) → checks until committed.
async fn run_sharded_chain(w: &World) -> BackupId {
    let request = w.request_backup().await;
    assert!(deliver(w, "backup", &request).await.contains("split into 3 parts"));
    assert!(deliver(w, "backup", &request).await.contains("split into 3 parts"), "redelivery repeats the split");

    let parts = w.take("backup-requests").await;
    assert_eq!(parts.len(), 3, "one message per part, the resend dropped as a duplicate");
    let mut indexes: Vec<u64> =
        parts.iter().map(|p| body(p)["step"]["shard"]["index"].as_u64().expect("a part")).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2]);

    for (i, part) in parts.iter().enumerate() {
        let logs = deliver(w, "backup", part).await;
        assert!(logs.contains("written"), "{logs}");
        // Redelivery of a finished part asks for its join again and exports nothing.
        assert!(deliver(w, "backup", part).await.contains("written"));
        let joins = w.take("backup-requests").await;
        assert_eq!(joins.len(), 1, "one join per part (the resend is a duplicate)");
        assert!(body(&joins[0])["step"]["join"].is_object(), "{:?}", body(&joins[0]));
        let joined = deliver(w, "backup", &joins[0]).await;
        if i < 2 {
            assert!(joined.contains(&format!("{} of 3 parts written", i + 1)), "{joined}");
        } else {
            assert!(joined.contains("waiting for 1 volume snapshot(s)"), "{joined}");
            // The join again: the backup moved on, nothing is redone.
            assert!(deliver(w, "backup", &joins[0]).await.contains("already WaitingForSnapshots"));
        }
    }

    w.commit().await;
    backup_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_backup_commits_one_archive_with_every_object_once_and_every_snapshot() {
    let w = world().await;
    let id = run_sharded_chain(&w).await;
    let record = w.backup_record(&id).await.expect("record");
    assert_eq!(record.state, BackupState::Committed);

    let manifest = w.manifest(&id).await;
    assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);
    assert_eq!(manifest.archive.key, format!("backups/prod/{id}/resources.tar.zst"), "one archive, as unsharded");

    // The app's snapshot, taken by the part that holds its namespace, once, and ready.
    let pvcs: Vec<(&str, &str)> = manifest.snapshots.iter().map(|s| (s.namespace.as_str(), s.pvc.as_str())).collect();
    assert_eq!(pvcs, [("shop", "data-db-0")]);
    assert!(manifest.snapshots.iter().all(|s| s.handle.is_some()), "{:?}", manifest.snapshots);
    let vs = w.server("prod").store().list("snapshot.storage.k8s.io/v1", "VolumeSnapshot", Some("shop")).expect("list");
    assert_eq!(vs.len(), 1, "redelivered parts must not snapshot twice");

    // The archive: every manifest object exactly once, byte for byte.
    let (_, archive) = w.app.objects.get(&manifest.archive.key, None).await.expect("archive");
    let bytes = collect_bytes(archive).await.expect("read archive");
    assert_eq!(bytes.len() as u64, manifest.archive.stored_bytes);
    // Not encrypted: the join reads the parts back and holds no identity, so a policy that
    // encrypts cannot be sharded yet (the configuration refuses it; see policy.rs).
    assert!(manifest.archive.encryption.is_none(), "the policy does not encrypt");
    let (identity, _recipient) = lifeboat_shared::archive::generate_identity();
    let options = ReadOptions { identities: vec![identity], ..ReadOptions::default() };
    let mut reader = ArchiveReader::new(bytes.as_slice(), &options).expect("reader");
    assert!(!reader.is_encrypted());
    let mut in_archive = BTreeMap::new();
    for entry in reader.entries().expect("entries") {
        let entry = entry.expect("entry");
        assert!(in_archive.insert(entry.path.clone(), entry.record()).is_none(), "{} twice", entry.path);
    }
    let listed: BTreeMap<String, _> = manifest.objects.iter().map(|o| (o.path.clone(), o.clone())).collect();
    assert_eq!(listed.len(), manifest.objects.len(), "the manifest lists each object once");
    assert_eq!(listed, in_archive, "manifest and archive hold the same objects with the same digests");
    assert_eq!(manifest.archive.entries, manifest.objects.len() as u64);
    let counted: u64 = manifest.counts.values().sum();
    assert_eq!(counted, manifest.objects.len() as u64, "counts: {:?}", manifest.counts);

    // What each part held, and the cluster-scoped objects both apps need, once.
    let namespaces: Vec<String> =
        ["shop"].into_iter().map(str::to_owned).chain((0..TEAMS).map(|i| format!("team-{i}"))).collect();
    let used: BTreeSet<u32> =
        namespaces.iter().filter_map(|n| Shard::all(3).find(|s| s.holds_namespace(n)).map(|s| s.index)).collect();
    assert_eq!(used.len(), 3, "the namespaces of this test spread over all three parts");
    for ns in &namespaces {
        assert!(listed.contains_key(&format!("resources/namespaces/cluster/{ns}.json")), "namespace {ns}");
    }
    for i in 0..TEAMS {
        assert!(listed.contains_key(&format!("resources/configmaps/namespaces/team-{i}/settings.json")));
    }
    for i in 0..TEAMS {
        let binding = format!("resources/rolebindings.rbac.authorization.k8s.io/namespaces/team-{i}/readers.json");
        assert!(listed.contains_key(&binding), "{binding}");
    }
    assert!(listed.contains_key("resources/statefulsets.apps/namespaces/shop/db.json"));
    assert!(listed.contains_key("resources/secrets/namespaces/shop/web-secret.json"));
    assert!(listed.contains_key("resources/clusterroles.rbac.authorization.k8s.io/cluster/team-reader.json"));
    assert!(listed.contains_key("resources/storageclasses.storage.k8s.io/cluster/managed-csi.json"));
    assert!(listed.contains_key(
        "resources/customresourcedefinitions.apiextensions.k8s.io/cluster/widgets.example.lifeboat.io.json"
    ));
    assert_eq!(listed.keys().filter(|p| p.starts_with("resources/persistentvolumes/cluster/")).count(), 1);

    // Restores read it as any backup: every object, each checked against its digest.
    let read = lifeboat_shared::workflows::restore::source::read_objects(w.app.objects.as_ref(), &manifest, options)
        .await
        .expect("a restore reads the joined archive");
    assert_eq!(read.len(), manifest.objects.len());

    // The parts are gone once joined.
    let page = w.app.objects.list(&format!("backups/prod/{id}/parts/"), None, 100).await.expect("list");
    assert!(page.objects.is_empty(), "{:?}", page.objects);
}

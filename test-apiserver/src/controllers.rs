//! The in-process controllers a real control plane runs: CRD establishment and cleanup,
//! namespace termination, garbage collection through ownerReferences, the CSI snapshot
//! controller (`snapshots.rs`, `snapshot_import.rs`), the volume binder and provisioner
//! (`volumes.rs`) and workload status (`workloads.rs`). They react to store events, after the configured delays.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::admission::deletion_complete;
use crate::delete::CRD_CLEANUP_FINALIZER;
use crate::meta::{self, meta_str};
use crate::server::Options;
use crate::snapshots;
use crate::storage::{Change, Event, GroupResource, ObjectKey};
use crate::store::{Store, crd_gr, is_established};
use crate::{snapshot_import, snapshot_registry, volumes, workloads};

impl Store {
    /// Changes an object in place under the lock; writes it if `f` changed it, removing it when
    /// it was marked for deletion and has no finalizers left.
    pub(crate) fn mutate(&self, gr: &GroupResource, key: &ObjectKey, f: impl FnOnce(&mut Value)) -> Option<Value> {
        self.storage.write(|tx| {
            let old = tx.state().get(gr, key)?.clone();
            let mut new = old.clone();
            f(&mut new);
            if new == old {
                return Some(old);
            }
            if deletion_complete(gr, &new) {
                return tx.remove(gr, key);
            }
            Some(tx.put(gr, key, new))
        })
    }

    /// Removes objects outright (no finalizers), all of `gr` or those in namespace `ns`.
    pub(crate) fn purge(&self, gr: &GroupResource, ns: Option<&str>) {
        self.storage.write(|tx| {
            let keys: Vec<ObjectKey> = tx
                .state()
                .objects_at(gr, None)
                .map(|m| m.into_keys().filter(|k| ns.is_none_or(|n| k.namespace == n)).collect())
                .unwrap_or_default();
            for k in keys {
                tx.remove(gr, &k);
            }
        });
    }

    /// Objects that list `uid` among their ownerReferences.
    fn dependents(&self, uid: &str) -> Vec<(GroupResource, ObjectKey)> {
        let inner = self.storage.lock();
        let mut out = Vec::new();
        for gr in inner.resources() {
            for (k, o) in inner.objects_at(&gr, None).unwrap_or_default() {
                if o["metadata"]["ownerReferences"].as_array().is_some_and(|rs| rs.iter().any(|r| r["uid"] == uid)) {
                    out.push((gr.clone(), k));
                }
            }
        }
        out
    }

    pub(crate) fn raw_get(&self, gr: &GroupResource, key: &ObjectKey) -> Option<Value> {
        self.storage.lock().get(gr, key).cloned()
    }

    pub(crate) fn raw_list(&self, gr: &GroupResource) -> Vec<Value> {
        self.storage.lock().objects_at(gr, None).map(|m| m.into_values().collect()).unwrap_or_default()
    }
}

/// Starts the controllers; they stop when `shutdown` turns true.
pub(crate) fn spawn(store: Store, opts: Options, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let mut events = store.storage.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                got = events.recv() => match got {
                    Ok(ev) => react(&store, &opts, &ev),
                    Err(broadcast::error::RecvError::Lagged(_)) => resync(&store, &opts),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    })
}

fn later(delay: std::time::Duration, f: impl FnOnce() + Send + 'static) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        f();
    });
}

fn react(store: &Store, opts: &Options, ev: &Arc<Event>) {
    let (group, resource) = (ev.gr.group.as_str(), ev.gr.resource.as_str());
    if ev.change == Change::Deleted {
        collect_garbage(store, meta_str(&ev.object, "uid"));
    }
    let added = ev.change == Change::Added;
    match (group, resource, ev.change) {
        ("apiextensions.k8s.io", "customresourcedefinitions", Change::Added | Change::Modified) => {
            reconcile_crd(store, opts, &ev.key);
        }
        ("", "namespaces", Change::Modified) => reconcile_namespace(store, opts, &ev.key),
        ("snapshot.storage.k8s.io", "volumesnapshots", Change::Added | Change::Modified) => {
            snapshots::schedule(store, opts, &ev.key, added);
            volumes::snapshot_changed(store, opts, &ev.key);
        }
        ("snapshot.storage.k8s.io", "volumesnapshotcontents", Change::Added | Change::Modified) => {
            snapshot_import::content_changed(store, opts, &ev.key, added);
        }
        ("snapshot.storage.k8s.io", "volumesnapshotcontents", Change::Deleted) => {
            let handle = ev.object["status"]["snapshotHandle"].as_str();
            if let Some(h) = handle.filter(|_| ev.object["spec"]["deletionPolicy"] == "Delete") {
                snapshot_registry::forget(h);
            }
        }
        ("", "persistentvolumeclaims", Change::Added | Change::Modified) => {
            if !added {
                snapshots::retry_for_claim(store, opts, &ev.key);
            }
            volumes::claim_changed(store, opts, &ev.key);
        }
        ("", "persistentvolumeclaims", Change::Deleted) => volumes::claim_deleted(store, &ev.object),
        ("", "persistentvolumes", Change::Added) => volumes::volume_added(store, opts, &ev.key),
        (g, r, Change::Added | Change::Modified) if opts.simulate_workloads && workloads::is_workload(g, r) => {
            workloads::changed(store, opts, &ev.gr, &ev.key);
        }
        _ => {}
    }
}

fn resync(store: &Store, opts: &Options) {
    for crd in store.raw_list(&crd_gr()) {
        reconcile_crd(store, opts, &ObjectKey::new("", meta_str(&crd, "name")));
    }
    for ns in store.raw_list(&GroupResource::new("", "namespaces")) {
        reconcile_namespace(store, opts, &ObjectKey::new("", meta_str(&ns, "name")));
    }
}

fn collect_garbage(store: &Store, uid: &str) {
    if uid.is_empty() {
        return;
    }
    for (gr, key) in store.dependents(uid) {
        let Some(def) = store.catalog().find_any_version(&gr.group, &gr.resource).cloned() else { continue };
        let _ = store.delete_in(&def, &key.namespace, &key.name, &crate::delete::DeleteOptions::default());
    }
}

fn reconcile_crd(store: &Store, opts: &Options, key: &ObjectKey) {
    let Some(crd) = store.raw_get(&crd_gr(), key) else { return };
    if !meta_str(&crd, "deletionTimestamp").is_empty() {
        let (group, plural) = (
            crd["spec"]["group"].as_str().unwrap_or_default(),
            crd["spec"]["names"]["plural"].as_str().unwrap_or_default(),
        );
        store.purge(&GroupResource::new(group, plural), None);
        store.mutate(&crd_gr(), key, |o| {
            if let Some(fs) = o["metadata"]["finalizers"].as_array_mut() {
                fs.retain(|f| f != CRD_CLEANUP_FINALIZER);
            }
        });
        return;
    }
    if is_established(&crd) {
        return;
    }
    let (store, key) = (store.clone(), key.clone());
    later(opts.crd_establish_delay, move || {
        store.mutate(&crd_gr(), &key, |o| {
            if is_established(o) || !meta_str(o, "deletionTimestamp").is_empty() {
                return;
            }
            let now = meta::now();
            let storage: Vec<Value> = o["spec"]["versions"]
                .as_array()
                .map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect())
                .unwrap_or_default();
            let mut accepted = o["spec"]["names"].clone();
            if accepted["singular"].is_null() {
                accepted["singular"] = json!(o["spec"]["names"]["kind"].as_str().unwrap_or_default().to_lowercase());
            }
            o["status"] = json!({
                "acceptedNames": accepted,
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
                ],
                "storedVersions": storage,
            });
        });
    });
}

fn reconcile_namespace(store: &Store, opts: &Options, key: &ObjectKey) {
    let Some(ns) = store.raw_get(&GroupResource::new("", "namespaces"), key) else { return };
    if meta_str(&ns, "deletionTimestamp").is_empty() {
        return;
    }
    let (store, key) = (store.clone(), key.clone());
    later(opts.namespace_finalize_delay, move || {
        // Snapshots are deleted through the API, so their finalizers run: a `Delete` content
        // (and its cloud snapshot) goes with them, as on a real cluster.
        for vs in store.raw_list(&snapshots::vs_gr()) {
            if meta_str(&vs, "namespace") == key.name {
                snapshots::release_content(&store, &vs);
            }
        }
        let inner_resources = store.storage.lock().resources();
        for gr in inner_resources {
            let namespaced = store.catalog().find_any_version(&gr.group, &gr.resource).is_none_or(|d| d.namespaced);
            if namespaced && gr.resource != "namespaces" {
                store.purge(&gr, Some(&key.name));
            }
        }
        store.mutate(&GroupResource::new("", "namespaces"), &key, |o| {
            o["spec"]["finalizers"] = json!([]);
        });
    });
}

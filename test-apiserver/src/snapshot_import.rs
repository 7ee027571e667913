//! Pre-provisioned snapshots, as a restore creates them (external-snapshotter's static binding):
//! a `VolumeSnapshotContent` naming an existing snapshot by `spec.source.snapshotHandle` and the
//! `VolumeSnapshot` it is for by `spec.volumeSnapshotRef`, and a `VolumeSnapshot` naming that
//! content by `spec.source.volumeSnapshotContentName`.
//!
//! The CSI sidecar checks the snapshot and marks the content ready after the snapshot delay
//! (`status.snapshotHandle`, `readyToUse`, `restoreSize` in bytes, `creationTime`). The common
//! controller binds the pair at once, whichever comes first: the content's
//! `spec.volumeSnapshotRef.uid` is filled in, and the snapshot gets
//! `status.boundVolumeSnapshotContentName` and mirrors the content's readiness and size. A content
//! that is missing, dynamically provisioned, or meant for another snapshot leaves the snapshot
//! unready with the real controller's `status.error.message`.
//!
//! The restore size of a handle is what this process's snapshots recorded for it (see
//! [`crate::snapshot_registry`]), else 1 GiB. A handle whose snapshot was deleted fails as the
//! real sidecar reports it.

use serde_json::{Value, json};

use crate::meta::{self, meta_str};
use crate::server::Options;
use crate::snapshot_registry::{self, HandleState};
use crate::snapshots::{GROUP, VS_FINALIZERS, format_quantity, set_error, vs_gr};
use crate::storage::{GroupResource, ObjectKey};
use crate::store::Store;

/// The restore size reported for a handle this process has not seen being cut.
pub const DEFAULT_RESTORE_SIZE_BYTES: i64 = 1024 * 1024 * 1024;

pub(crate) fn vsc_gr() -> GroupResource {
    GroupResource::new(GROUP, "volumesnapshotcontents")
}

/// Whether a VolumeSnapshot asks for a pre-provisioned content.
pub(crate) fn is_pre_provisioned(vs: &Value) -> bool {
    vs["spec"]["source"]["volumeSnapshotContentName"].as_str().is_some_and(|s| !s.is_empty())
}

/// Reacts to a content change: a new pre-provisioned content is checked after the delay; the
/// snapshots naming it are synced now.
pub(crate) fn content_changed(store: &Store, opts: &Options, key: &ObjectKey, added: bool) {
    let Some(content) = store.raw_get(&vsc_gr(), key) else { return };
    let handle = content["spec"]["source"]["snapshotHandle"].as_str().unwrap_or_default().to_string();
    if added && !handle.is_empty() {
        let (store, key, delay) = (store.clone(), key.clone(), opts.snapshot_delay);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            check_content(&store, &key, &handle);
        });
    }
    for vs in store.raw_list(&vs_gr()) {
        if vs["spec"]["source"]["volumeSnapshotContentName"] == key.name.as_str() {
            sync(store, &ObjectKey::new(meta_str(&vs, "namespace"), meta_str(&vs, "name")));
        }
    }
}

/// The sidecar's check of a pre-provisioned content: ready with the snapshot's size, or an error.
fn check_content(store: &Store, key: &ObjectKey, handle: &str) {
    let state = snapshot_registry::lookup(handle);
    store.mutate(&vsc_gr(), key, |o| {
        if o["status"]["readyToUse"] == true || !meta_str(o, "deletionTimestamp").is_empty() {
            return;
        }
        match state {
            HandleState::Deleted => {
                let message = format!(
                    "Failed to check and update snapshot content: failed to list snapshot for content {}: \"rpc error: code = NotFound desc = snapshot {handle} not found\"",
                    key.name
                );
                o["status"] = json!({"error": {"message": message, "time": meta::now()}, "readyToUse": false});
            }
            HandleState::Known(_) | HandleState::Unknown => {
                let size = match state {
                    HandleState::Known(bytes) => bytes,
                    _ => DEFAULT_RESTORE_SIZE_BYTES,
                };
                o["status"] = json!({
                    "creationTime": chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
                    "readyToUse": true,
                    "restoreSize": size,
                    "snapshotHandle": handle,
                });
            }
        }
    });
}

/// The common controller's sync of a pre-provisioned VolumeSnapshot (idempotent).
pub(crate) fn sync(store: &Store, key: &ObjectKey) {
    let Some(vs) = store.raw_get(&vs_gr(), key) else { return };
    if !is_pre_provisioned(&vs) || !meta_str(&vs, "deletionTimestamp").is_empty() {
        return;
    }
    let content_name = vs["spec"]["source"]["volumeSnapshotContentName"].as_str().unwrap_or_default();
    let Some(content) = store.raw_get(&vsc_gr(), &ObjectKey::new("", content_name)) else {
        return set_error(store, key, "VolumeSnapshotContent is missing".into());
    };
    if content["spec"]["source"]["snapshotHandle"].as_str().is_none_or(str::is_empty) {
        return set_error(
            store,
            key,
            "VolumeSnapshotContent is dynamically provisioned while expecting a pre-provisioned one".into(),
        );
    }
    let r = &content["spec"]["volumeSnapshotRef"];
    let uid = meta_str(&vs, "uid");
    let ref_uid = r["uid"].as_str().unwrap_or_default();
    if r["name"] != key.name.as_str()
        || r["namespace"] != key.namespace.as_str()
        || !(ref_uid.is_empty() || ref_uid == uid)
    {
        return set_error(
            store,
            key,
            format!("VolumeSnapshotContent [{content_name}] is bound to a different snapshot"),
        );
    }
    if ref_uid.is_empty() {
        let (uid, rv) = (uid.to_string(), meta_str(&vs, "resourceVersion").to_string());
        store.mutate(&vsc_gr(), &ObjectKey::new("", content_name), |o| {
            o["spec"]["volumeSnapshotRef"]["uid"] = json!(uid);
            o["spec"]["volumeSnapshotRef"]["resourceVersion"] = json!(rv);
        });
    }
    bind(store, key, content_name, &content["status"]);
}

fn bind(store: &Store, key: &ObjectKey, content_name: &str, content_status: &Value) {
    let ready = content_status["readyToUse"] == true;
    let mut status = json!({"boundVolumeSnapshotContentName": content_name, "readyToUse": ready});
    if let Some(bytes) = content_status["restoreSize"].as_i64() {
        status["restoreSize"] = json!(format_quantity(bytes));
    }
    if let Some(ns) = content_status["creationTime"].as_i64() {
        let t = chrono::DateTime::from_timestamp_nanos(ns);
        status["creationTime"] = json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    if let Some(e) = content_status.get("error") {
        status["error"] = e.clone();
    }
    store.mutate(&vs_gr(), key, |o| {
        let mut fs = o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
        for f in VS_FINALIZERS {
            if !fs.iter().any(|x| x == f) {
                fs.push(json!(f));
            }
        }
        o["metadata"]["finalizers"] = Value::Array(fs);
        o["status"] = status;
    });
}

//! A simulated CSI snapshot controller (external-snapshotter plus an Azure Disk CSI driver): a
//! `VolumeSnapshot` of a bound PVC whose PV's CSI driver has a `VolumeSnapshotClass` gets a bound
//! `VolumeSnapshotContent` and `readyToUse: true` after a delay; otherwise `status.error` carries
//! the controller's message. Deleting a snapshot deletes its content (policy `Delete`).

use serde_json::{Value, json};

use crate::meta::{self, meta_str};
use crate::server::Options;
use crate::snapshot_import;
use crate::snapshot_registry;
use crate::storage::{GroupResource, ObjectKey};
use crate::store::Store;

pub(crate) const GROUP: &str = "snapshot.storage.k8s.io";
pub(crate) const VS_FINALIZERS: [&str; 2] = [
    "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection",
    "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection",
];
const DEFAULT_CLASS_ANNOTATION: &str = "snapshot.storage.kubernetes.io/is-default-class";

pub(crate) fn vs_gr() -> GroupResource {
    GroupResource::new(GROUP, "volumesnapshots")
}

/// Reacts to a VolumeSnapshot change: cleanup now if it is being deleted; a pre-provisioned one
/// is synced at once (see `snapshot_import`); a new dynamic one is reconciled after the delay.
pub(crate) fn schedule(store: &Store, opts: &Options, key: &ObjectKey, added: bool) {
    let Some(vs) = store.raw_get(&vs_gr(), key) else { return };
    if !meta_str(&vs, "deletionTimestamp").is_empty() {
        finalize(store, key, &vs);
        return;
    }
    if snapshot_import::is_pre_provisioned(&vs) {
        snapshot_import::sync(store, key);
        return;
    }
    if added {
        let (store, key, delay) = (store.clone(), key.clone(), opts.snapshot_delay);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            reconcile(&store, &key);
        });
    }
}

/// Retries failed snapshots of a claim when the claim changes (e.g. becomes bound).
pub(crate) fn retry_for_claim(store: &Store, opts: &Options, pvc: &ObjectKey) {
    for vs in store.raw_list(&vs_gr()) {
        let waiting = vs["status"]["readyToUse"] != true && vs["status"]["boundVolumeSnapshotContentName"].is_null();
        if meta_str(&vs, "namespace") == pvc.namespace
            && vs["spec"]["source"]["persistentVolumeClaimName"] == pvc.name.as_str()
            && waiting
        {
            schedule(store, opts, &ObjectKey::new(&pvc.namespace, meta_str(&vs, "name")), true);
        }
    }
}

/// What the controller does when a bound VolumeSnapshot goes away: its content goes too when its
/// `deletionPolicy` is `Delete`, and with it the cloud snapshot.
pub(crate) fn release_content(store: &Store, vs: &Value) {
    if let Some(content) = vs["status"]["boundVolumeSnapshotContentName"].as_str() {
        let cgr = GroupResource::new(GROUP, "volumesnapshotcontents");
        let ckey = ObjectKey::new("", content);
        if let Some(c) = store.raw_get(&cgr, &ckey).filter(|c| c["spec"]["deletionPolicy"] == "Delete") {
            if let Some(handle) = c["status"]["snapshotHandle"].as_str() {
                snapshot_registry::forget(handle);
            }
            store.purge_one(&cgr, &ckey);
        }
    }
}

fn finalize(store: &Store, key: &ObjectKey, vs: &Value) {
    release_content(store, vs);
    store.mutate(&vs_gr(), key, |o| {
        if let Some(fs) = o["metadata"]["finalizers"].as_array_mut() {
            fs.retain(|f| !VS_FINALIZERS.iter().any(|x| f == x));
        }
    });
}

/// Sets `status.error` (and `readyToUse: false`), unless the same message is already set.
pub(crate) fn set_error(store: &Store, key: &ObjectKey, message: String) {
    store.mutate(&vs_gr(), key, |o| {
        if o["status"]["error"]["message"] == message.as_str() {
            return;
        }
        o["status"] = json!({"error": {"message": message, "time": meta::now()}, "readyToUse": false});
    });
}

/// Renders bytes as the API server renders a quantity: `10Gi`, `512Mi`, or plain bytes.
pub(crate) fn format_quantity(bytes: i64) -> String {
    for (suffix, unit) in [("Ti", 1i64 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes != 0 && bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// Parses a quantity (`10Gi`, `500M`, `1024`) into bytes.
pub(crate) fn quantity_bytes(q: &str) -> Option<i64> {
    let split = q.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    #[allow(clippy::cast_possible_truncation)]
    Some((n * mult) as i64)
}

/// The PVC, its PV's CSI driver and volume handle, and its size; or the controller's error.
fn source_volume(store: &Store, ns: &str, pvc_name: &str) -> Result<(String, String, String), String> {
    let pvc = store.raw_get(&GroupResource::new("", "persistentvolumeclaims"), &ObjectKey::new(ns, pvc_name)).ok_or_else(|| {
        format!("failed to retrieve PVC {pvc_name} from the lister: \"persistentvolumeclaim \\\"{pvc_name}\\\" not found\"")
    })?;
    let pv_name = pvc["spec"]["volumeName"].as_str().unwrap_or_default();
    if pvc["status"]["phase"] != "Bound" || pv_name.is_empty() {
        return Err(format!("the PVC {pvc_name} is not yet bound to a PV, will not attempt to take a snapshot"));
    }
    let pv =
        store.raw_get(&GroupResource::new("", "persistentvolumes"), &ObjectKey::new("", pv_name)).ok_or_else(|| {
            format!(
                "failed to retrieve PV {pv_name} from the API server: \"persistentvolume \\\"{pv_name}\\\" not found\""
            )
        })?;
    let driver = pv["spec"]["csi"]["driver"].as_str().filter(|d| !d.is_empty());
    let handle = pv["spec"]["csi"]["volumeHandle"].as_str().unwrap_or_default();
    let driver = driver.ok_or_else(|| format!("cannot find CSI PersistentVolumeSource for volume {pv_name}"))?;
    let size = pvc["status"]["capacity"]["storage"]
        .as_str()
        .or_else(|| pvc["spec"]["resources"]["requests"]["storage"].as_str())
        .unwrap_or("0")
        .to_string();
    Ok((driver.to_string(), handle.to_string(), size))
}

fn reconcile(store: &Store, key: &ObjectKey) {
    let Some(vs) = store.raw_get(&vs_gr(), key) else { return };
    if vs["status"]["readyToUse"] == true || !meta_str(&vs, "deletionTimestamp").is_empty() {
        return;
    }
    let pvc_name = vs["spec"]["source"]["persistentVolumeClaimName"].as_str().unwrap_or_default();
    let class_name = vs["spec"]["volumeSnapshotClassName"].as_str().unwrap_or_default().to_string();
    let classes = store.raw_list(&GroupResource::new(GROUP, "volumesnapshotclasses"));
    let volume = source_volume(store, &key.namespace, pvc_name);
    let class = if class_name.is_empty() {
        let (driver, _, _) = match &volume {
            Ok(v) => v,
            Err(e) => return set_error(store, key, format!("Failed to set default snapshot class with error {e}")),
        };
        let defaults: Vec<&Value> = classes
            .iter()
            .filter(|c| {
                c["driver"] == driver.as_str() && c["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true"
            })
            .collect();
        match defaults.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return set_error(
                    store,
                    key,
                    "Failed to set default snapshot class with error cannot find default snapshot class".into(),
                );
            }
            many => {
                let msg = format!(
                    "Failed to set default snapshot class with error {} default snapshot classes were found",
                    many.len()
                );
                return set_error(store, key, msg);
            }
        }
    } else {
        match classes.iter().find(|c| meta_str(c, "name") == class_name) {
            Some(c) => c.clone(),
            None => {
                let msg = format!(
                    "Failed to get snapshot class with error failed to retrieve snapshot class {class_name} from the informer: \"volumesnapshotclass.snapshot.storage.k8s.io \\\"{class_name}\\\" not found\""
                );
                return set_error(store, key, msg);
            }
        }
    };
    let (driver, handle, size) = match volume {
        Ok(v) => v,
        Err(e) => return set_error(store, key, format!("Failed to create snapshot content with error {e}")),
    };
    if class["driver"] != driver.as_str() {
        let msg = format!(
            "Failed to create snapshot: failed to take snapshot of the volume {handle}: \"rpc error: code = InvalidArgument desc = volume {handle} is from driver {driver}, not {}\"",
            class["driver"].as_str().unwrap_or_default()
        );
        return set_error(store, key, msg);
    }
    bind(store, key, &vs, &class, &handle, &size);
}

fn bind(store: &Store, key: &ObjectKey, vs: &Value, class: &Value, handle: &str, size: &str) {
    let uid = meta_str(vs, "uid");
    let content_name = format!("snapcontent-{uid}");
    let created = chrono::Utc::now();
    let content = json!({
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotContent",
        "metadata": {"name": content_name},
        "spec": {
            "deletionPolicy": class["deletionPolicy"].as_str().unwrap_or("Delete"),
            "driver": class["driver"],
            "source": {"volumeHandle": handle},
            "sourceVolumeMode": "Filesystem",
            "volumeSnapshotClassName": meta_str(class, "name"),
            "volumeSnapshotRef": {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                "name": key.name, "namespace": key.namespace, "uid": uid, "resourceVersion": meta_str(vs, "resourceVersion")},
        },
    });
    let created_content = match store.create(content) {
        Ok(c) => c,
        Err(e) if e.code == 409 => {
            match store.get("snapshot.storage.k8s.io/v1", "VolumeSnapshotContent", "", &content_name) {
                Ok(c) => c,
                Err(_) => return,
            }
        }
        Err(e) => return set_error(store, key, format!("Failed to create snapshot content with error {}", e.message)),
    };
    let mut content = created_content;
    let snapshot_handle = format!(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/mc_rg/providers/Microsoft.Compute/snapshots/snapshot-{uid}"
    );
    let restore_size = quantity_bytes(size).unwrap_or_default();
    snapshot_registry::record(&snapshot_handle, restore_size);
    content["status"] = json!({
        "creationTime": created.timestamp_nanos_opt().unwrap_or_default(),
        "readyToUse": true,
        "restoreSize": restore_size,
        "snapshotHandle": snapshot_handle,
    });
    let _ = store.update_status(content);
    let class_name = meta_str(class, "name").to_string();
    store.mutate(&vs_gr(), key, |o| {
        if o["spec"]["volumeSnapshotClassName"].is_null() {
            o["spec"]["volumeSnapshotClassName"] = json!(class_name);
        }
        let fs = o["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
        let mut fs: Vec<Value> = fs;
        for f in VS_FINALIZERS {
            if !fs.iter().any(|x| x == f) {
                fs.push(json!(f));
            }
        }
        o["metadata"]["finalizers"] = Value::Array(fs);
        o["status"] = json!({
            "boundVolumeSnapshotContentName": content_name,
            "creationTime": created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "readyToUse": true,
            "restoreSize": size,
        });
    });
}

impl Store {
    /// Removes one object outright.
    pub(crate) fn purge_one(&self, gr: &GroupResource, key: &ObjectKey) {
        self.storage.write(|tx| tx.remove(gr, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_to_bytes() {
        assert_eq!(quantity_bytes("10Gi"), Some(10 * 1024 * 1024 * 1024));
        assert_eq!(quantity_bytes("500M"), Some(500_000_000));
        assert_eq!(quantity_bytes("1024"), Some(1024));
        assert_eq!(quantity_bytes("1Xi"), None);
    }

    #[test]
    fn bytes_render_as_quantities() {
        assert_eq!(format_quantity(10 * 1024 * 1024 * 1024), "10Gi");
        assert_eq!(format_quantity(512 * 1024 * 1024), "512Mi");
        assert_eq!(format_quantity(1000), "1000");
        assert_eq!(quantity_bytes(&format_quantity(3 << 30)), Some(3 << 30));
    }
}

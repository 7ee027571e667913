//! The PersistentVolume controller and a simulated CSI external-provisioner.
//!
//! - A claim naming a volume (`spec.volumeName`), or pre-bound by a volume's `spec.claimRef`
//!   (name and namespace, `uid` empty or the claim's), is bound to it once both exist.
//! - A claim with `spec.dataSource`/`dataSourceRef` of kind `VolumeSnapshot` gets a new volume
//!   restored from the snapshot once it is bound and ready, after the provisioning delay. Until
//!   then it stays `Pending` with a `ProvisioningFailed` event carrying external-provisioner's
//!   message (`snapshot x is not Ready`, `requested volume size … is less than the size …`).
//! - Any other claim with a storage class (named, or the default one) gets an empty volume.
//!   `volumeBindingMode: WaitForFirstConsumer` is treated as `Immediate` (there is no scheduler).
//!   Other data sources (PVC clones, populators) are not provisioned.
//!
//! A provisioned volume is named `pvc-<claim uid>`; for Azure Disk its `spec.csi.volumeHandle`
//! is an ARM disk id ending in that name. A volume restored from a snapshot carries the
//! snapshot's handle in the annotation [`RESTORED_FROM_ANNOTATION`], so tests can tell which
//! snapshot a claim came from. Bound claims and volumes get the annotations the real controller
//! writes (`pv.kubernetes.io/bind-completed`, `pv.kubernetes.io/bound-by-controller`,
//! `pv.kubernetes.io/provisioned-by`, `volume.kubernetes.io/storage-provisioner`).
//!
//! When a claim is deleted, its volume is deleted (reclaim policy `Delete`) or `Released`.

use serde_json::{Value, json};

use crate::events;
use crate::meta::meta_str;
use crate::seed::AZURE_DISK_DRIVER;
use crate::server::Options;
use crate::snapshots::quantity_bytes;
use crate::storage::{GroupResource, ObjectKey};
use crate::store::Store;

/// The annotation on a volume provisioned from a snapshot: the snapshot's handle
/// (`status.snapshotHandle` of its content).
pub const RESTORED_FROM_ANNOTATION: &str = "lifeboat.test/restored-from-snapshot-handle";
const DEFAULT_SC_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

fn pvc_gr() -> GroupResource {
    GroupResource::new("", "persistentvolumeclaims")
}

fn pv_gr() -> GroupResource {
    GroupResource::new("", "persistentvolumes")
}

fn key_of(obj: &Value) -> ObjectKey {
    ObjectKey::new(meta_str(obj, "namespace"), meta_str(obj, "name"))
}

/// What to provision for a claim.
struct Plan {
    driver: String,
    class: Value,
    snapshot_handle: Option<String>,
}

/// Reacts to a claim being added or changed.
pub(crate) fn claim_changed(store: &Store, opts: &Options, key: &ObjectKey) {
    let Some(pvc) = store.raw_get(&pvc_gr(), key) else { return };
    if pvc["status"]["phase"] == "Bound" || !meta_str(&pvc, "deletionTimestamp").is_empty() {
        return;
    }
    if let Some(pv) = matching_volume(store, &pvc) {
        bind(store, &pv, &pvc);
        return;
    }
    if pvc["spec"]["volumeName"].as_str().is_some_and(|v| !v.is_empty()) {
        return;
    }
    match plan(store, &pvc) {
        Ok(Some(plan)) => {
            let (store, key, delay) = (store.clone(), key.clone(), opts.volume_provision_delay);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                provision(&store, &key, &plan);
            });
        }
        Ok(None) => {}
        Err(message) => events::record(store, &pvc, "PersistentVolumeClaim", true, "ProvisioningFailed", &message),
    }
}

/// Reacts to a volume being added: it becomes `Available`, and the claims waiting for it bind.
pub(crate) fn volume_added(store: &Store, opts: &Options, key: &ObjectKey) {
    store.mutate(&pv_gr(), key, |o| {
        if o["status"]["phase"] == "Pending" && o["spec"]["claimRef"]["uid"].is_null() {
            o["status"] = json!({"phase": "Available"});
        }
    });
    for pvc in store.raw_list(&pvc_gr()) {
        if pvc["status"]["phase"] != "Bound" {
            claim_changed(store, opts, &key_of(&pvc));
        }
    }
}

/// Reacts to a snapshot change: claims restoring from it retry.
pub(crate) fn snapshot_changed(store: &Store, opts: &Options, key: &ObjectKey) {
    for pvc in store.raw_list(&pvc_gr()) {
        let source = snapshot_source(&pvc);
        if meta_str(&pvc, "namespace") == key.namespace
            && source.is_some_and(|s| s == key.name)
            && pvc["status"]["phase"] != "Bound"
        {
            claim_changed(store, opts, &key_of(&pvc));
        }
    }
}

/// Reacts to a claim's deletion: its volume is deleted or released, per its reclaim policy.
pub(crate) fn claim_deleted(store: &Store, pvc: &Value) {
    let uid = meta_str(pvc, "uid");
    for pv in store.raw_list(&pv_gr()) {
        if uid.is_empty() || pv["spec"]["claimRef"]["uid"] != uid {
            continue;
        }
        let key = key_of(&pv);
        if pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete" {
            store.purge_one(&pv_gr(), &key);
        } else {
            store.mutate(&pv_gr(), &key, |o| o["status"] = json!({"phase": "Released"}));
        }
    }
}

/// The name of the VolumeSnapshot a claim restores from, if any.
fn snapshot_source(pvc: &Value) -> Option<&str> {
    let spec = &pvc["spec"];
    let ds = if spec["dataSourceRef"].is_object() { &spec["dataSourceRef"] } else { &spec["dataSource"] };
    (ds["kind"] == "VolumeSnapshot" && ds["apiGroup"] == "snapshot.storage.k8s.io").then(|| ds["name"].as_str())?
}

/// A volume this claim may bind to: the one it names, or one pre-bound to it.
fn matching_volume(store: &Store, pvc: &Value) -> Option<Value> {
    let (ns, name, uid) = (meta_str(pvc, "namespace"), meta_str(pvc, "name"), meta_str(pvc, "uid"));
    let fits = |pv: &Value| {
        let r = &pv["spec"]["claimRef"];
        let ref_uid = r["uid"].as_str().unwrap_or_default();
        if r.is_null() {
            return true;
        }
        r["name"] == name && r["namespace"] == ns && (ref_uid.is_empty() || ref_uid == uid)
    };
    match pvc["spec"]["volumeName"].as_str().filter(|v| !v.is_empty()) {
        Some(v) => store.raw_get(&pv_gr(), &ObjectKey::new("", v)).filter(|pv| fits(pv)),
        None => store.raw_list(&pv_gr()).into_iter().find(|pv| !pv["spec"]["claimRef"].is_null() && fits(pv)),
    }
}

/// The storage class a claim asks for (named, or the default when unset); `None` for `""`.
fn storage_class(store: &Store, pvc: &Value) -> Result<Option<Value>, String> {
    let classes = store.raw_list(&GroupResource::new("storage.k8s.io", "storageclasses"));
    match pvc["spec"]["storageClassName"].as_str() {
        Some("") => Ok(None),
        Some(name) => classes
            .into_iter()
            .find(|c| meta_str(c, "name") == name)
            .map(Some)
            .ok_or_else(|| format!("storageclass.storage.k8s.io \"{name}\" not found")),
        None => Ok(classes.into_iter().find(|c| c["metadata"]["annotations"][DEFAULT_SC_ANNOTATION] == "true")),
    }
}

/// Decides what to provision, or why not yet (external-provisioner's message).
fn plan(store: &Store, pvc: &Value) -> Result<Option<Plan>, String> {
    let Some(class) = storage_class(store, pvc)? else { return Ok(None) };
    let driver = class["provisioner"].as_str().unwrap_or_default().to_string();
    let class_name = meta_str(&class, "name").to_string();
    let spec = &pvc["spec"];
    let has_source = spec["dataSource"].is_object() || spec["dataSourceRef"].is_object();
    let Some(snapshot) = snapshot_source(pvc) else {
        return Ok((!has_source).then_some(Plan { driver, class, snapshot_handle: None }));
    };
    let fail = |why: String| {
        format!(
            "failed to provision volume with StorageClass \"{class_name}\": error getting handle for DataSource Type VolumeSnapshot by Name {snapshot}: {why}"
        )
    };
    let ns = meta_str(pvc, "namespace");
    let handle = snapshot_handle(store, ns, snapshot, &driver, pvc).map_err(fail)?;
    Ok(Some(Plan { driver, class, snapshot_handle: Some(handle) }))
}

/// external-provisioner's `getSnapshotSource`: the snapshot must be bound, ready, of the class's
/// driver, and no larger than the claim.
fn snapshot_handle(store: &Store, ns: &str, name: &str, driver: &str, pvc: &Value) -> Result<String, String> {
    let gr = GroupResource::new("snapshot.storage.k8s.io", "volumesnapshots");
    let vs = store.raw_get(&gr, &ObjectKey::new(ns, name)).ok_or_else(|| {
        format!(
            "error getting snapshot {name} from api server: volumesnapshots.snapshot.storage.k8s.io \"{name}\" not found"
        )
    })?;
    if !meta_str(&vs, "deletionTimestamp").is_empty() {
        return Err(format!("snapshot {name} is being deleted"));
    }
    let not_bound = || format!("snapshot {name} not bound");
    let content_name = vs["status"]["boundVolumeSnapshotContentName"].as_str().ok_or_else(not_bound)?;
    let cgr = GroupResource::new("snapshot.storage.k8s.io", "volumesnapshotcontents");
    let content = store.raw_get(&cgr, &ObjectKey::new("", content_name)).ok_or_else(not_bound)?;
    let r = &content["spec"]["volumeSnapshotRef"];
    if r["uid"] != meta_str(&vs, "uid") || r["namespace"] != ns || r["name"] != name {
        return Err(not_bound());
    }
    if content["spec"]["driver"] != driver {
        return Err(not_bound());
    }
    if vs["status"]["readyToUse"] != true {
        return Err(format!("snapshot {name} is not Ready"));
    }
    let handle = content["status"]["snapshotHandle"]
        .as_str()
        .ok_or_else(|| format!("snapshot handle {name} is not available"))?;
    if let Some(size) = vs["status"]["restoreSize"].as_str().and_then(quantity_bytes) {
        let requested = pvc["spec"]["resources"]["requests"]["storage"].as_str().and_then(quantity_bytes);
        let requested = requested.ok_or_else(|| {
            format!("error getting capacity for PVC {} when creating snapshot {name}", meta_str(pvc, "name"))
        })?;
        if requested < size {
            return Err(format!(
                "requested volume size {requested} is less than the size {size} for the source snapshot {name}"
            ));
        }
    }
    Ok(handle.to_string())
}

fn volume_handle(driver: &str, pv_name: &str, ns: &str) -> String {
    match driver {
        AZURE_DISK_DRIVER => format!(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/mc_rg/providers/Microsoft.Compute/disks/{pv_name}"
        ),
        "file.csi.azure.com" => format!("mc_rg#fsaccount#{pv_name}###{ns}"),
        _ => pv_name.to_string(),
    }
}

/// Creates the volume for a claim (idempotent: its name derives from the claim's uid) and binds it.
fn provision(store: &Store, key: &ObjectKey, plan: &Plan) {
    let Some(pvc) = store.raw_get(&pvc_gr(), key) else { return };
    if pvc["status"]["phase"] == "Bound" || !meta_str(&pvc, "deletionTimestamp").is_empty() {
        return;
    }
    let pv_name = format!("pvc-{}", meta_str(&pvc, "uid"));
    let spec = &pvc["spec"];
    let mut annotations = json!({
        "pv.kubernetes.io/provisioned-by": plan.driver,
        "volume.kubernetes.io/provisioner-deletion-secret-name": "",
        "volume.kubernetes.io/provisioner-deletion-secret-namespace": "",
    });
    if let Some(h) = &plan.snapshot_handle {
        annotations[RESTORED_FROM_ANNOTATION] = json!(h);
    }
    let pv = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "annotations": annotations},
        "spec": {
            "accessModes": spec["accessModes"],
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": key.name, "namespace": key.namespace,
                "uid": meta_str(&pvc, "uid"), "resourceVersion": meta_str(&pvc, "resourceVersion")},
            "csi": {"driver": plan.driver, "volumeHandle": volume_handle(&plan.driver, &pv_name, &key.namespace), "fsType": "ext4",
                "volumeAttributes": {"csi.storage.k8s.io/pv/name": pv_name, "csi.storage.k8s.io/pvc/name": key.name,
                    "csi.storage.k8s.io/pvc/namespace": key.namespace}},
            "persistentVolumeReclaimPolicy": plan.class["reclaimPolicy"].as_str().unwrap_or("Delete"),
            "storageClassName": meta_str(&plan.class, "name"),
            "volumeMode": spec["volumeMode"].as_str().unwrap_or("Filesystem"),
        },
    });
    let driver = plan.driver.clone();
    store.mutate(&pvc_gr(), key, |o| {
        o["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] = json!(driver);
        o["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-provisioner"] = json!(driver);
    });
    let pv = match store.create(pv) {
        Ok(pv) => pv,
        Err(e) if e.code == 409 => match store.raw_get(&pv_gr(), &ObjectKey::new("", &pv_name)) {
            Some(pv) => pv,
            None => return,
        },
        Err(_) => return,
    };
    if let Some(pvc) = store.raw_get(&pvc_gr(), key) {
        bind(store, &pv, &pvc);
    }
}

/// Binds a volume and a claim both ways, as the PV controller does.
fn bind(store: &Store, pv: &Value, pvc: &Value) {
    let (pv_name, uid) = (meta_str(pv, "name").to_string(), meta_str(pvc, "uid").to_string());
    let key = key_of(pvc);
    let claim_ref = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": key.name,
        "namespace": key.namespace, "uid": uid, "resourceVersion": meta_str(pvc, "resourceVersion")});
    let Some(pv) = store.mutate(&pv_gr(), &ObjectKey::new("", &pv_name), |o| {
        if o["spec"]["claimRef"].is_null() {
            o["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = json!("yes");
            o["spec"]["claimRef"] = claim_ref;
        } else if o["spec"]["claimRef"]["uid"].as_str().is_none_or(str::is_empty) {
            o["spec"]["claimRef"]["uid"] = json!(uid);
        }
        o["status"] = json!({"phase": "Bound"});
    }) else {
        return;
    };
    store.mutate(&pvc_gr(), &key, |o| {
        let annotations = &mut o["metadata"]["annotations"];
        annotations["pv.kubernetes.io/bind-completed"] = json!("yes");
        if o["spec"]["volumeName"].as_str().is_none_or(str::is_empty) {
            o["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = json!("yes");
            o["spec"]["volumeName"] = json!(pv_name);
        }
        o["status"] =
            json!({"phase": "Bound", "accessModes": pv["spec"]["accessModes"], "capacity": pv["spec"]["capacity"]});
    });
}

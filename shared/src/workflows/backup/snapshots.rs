//! Volume snapshots: one CSI VolumeSnapshot per selected bound PVC, with the VolumeSnapshotClass
//! of its driver, labelled with the backup id; then polls until each is ready or failed.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::export::PvcRef;
use crate::domain::ids::{BackupId, short_hash};
use crate::domain::manifest::SnapshotRecord;
use crate::domain::resources::ApiResourceInfo;
use crate::domain::selection::BACKUP_ID_LABEL;
use crate::ports::cluster::{Cluster, ClusterError};
use crate::workflows::retry::{RetryPolicy, with_retry};

/// The API types snapshots need, from discovery.
pub(crate) struct SnapshotApis {
    pub volume_snapshots: ApiResourceInfo,
    pub contents: ApiResourceInfo,
    pub classes: ApiResourceInfo,
    pub persistent_volumes: ApiResourceInfo,
}

impl SnapshotApis {
    /// Finds them; `None` when the cluster serves no VolumeSnapshot API.
    pub(crate) fn find(discovered: &[ApiResourceInfo]) -> Option<Self> {
        let get = |gr: &str| discovered.iter().find(|r| r.group_resource() == gr).cloned();
        Some(Self {
            volume_snapshots: get("volumesnapshots.snapshot.storage.k8s.io")?,
            contents: get("volumesnapshotcontents.snapshot.storage.k8s.io")?,
            classes: get("volumesnapshotclasses.snapshot.storage.k8s.io")?,
            persistent_volumes: get("persistentvolumes")?,
        })
    }
}

/// The deterministic VolumeSnapshot name for a PVC in a backup.
pub(crate) fn snapshot_name(backup: &BackupId, pvc: &PvcRef) -> String {
    format!("lifeboat-{backup}-{}", short_hash(&format!("{}/{}", pvc.namespace, pvc.name)))
}

fn str_at<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

/// The class for each driver: the one annotated default (the operator's choice), then one with
/// `deletionPolicy: Retain`, then the first by name. Whatever the class says, a ready
/// snapshot's content is switched to `Retain` (see [`retain`]).
async fn classes_by_driver(
    cluster: &dyn Cluster,
    apis: &SnapshotApis,
    retry: RetryPolicy,
) -> Result<BTreeMap<String, String>, ClusterError> {
    let page = with_retry(retry, || cluster.list(&apis.classes, None, None, 500, None)).await?;
    Ok(pick_classes(&page.items))
}

/// [`classes_by_driver`]'s choice among listed VolumeSnapshotClasses.
fn pick_classes(classes: &[Value]) -> BTreeMap<String, String> {
    let mut by_driver: BTreeMap<String, ((bool, bool), String)> = BTreeMap::new();
    for class in classes {
        let (Some(driver), Some(name)) = (str_at(class, "/driver"), str_at(class, "/metadata/name")) else { continue };
        let retains = str_at(class, "/deletionPolicy") == Some("Retain");
        let is_default =
            str_at(class, "/metadata/annotations/snapshot.storage.kubernetes.io~1is-default-class") == Some("true");
        let rank = (is_default, retains);
        let better = by_driver.get(driver).is_none_or(|(r, n)| rank > *r || (rank == *r && name < n.as_str()));
        if better {
            by_driver.insert(driver.to_owned(), (rank, name.to_owned()));
        }
    }
    by_driver.into_iter().map(|(driver, (_, name))| (driver, name)).collect()
}

/// Requests a snapshot of each PVC (creating it again is harmless: the name is deterministic).
///
/// # Errors
/// [`ClusterError`] when the cluster cannot be asked at all; a PVC that cannot be snapshotted
/// is recorded with its reason instead.
pub(crate) async fn request(
    cluster: &dyn Cluster,
    apis: &SnapshotApis,
    backup: &BackupId,
    pvcs: &[PvcRef],
    region: &str,
    retry: RetryPolicy,
) -> Result<Vec<SnapshotRecord>, ClusterError> {
    let classes = classes_by_driver(cluster, apis, retry).await?;
    let mut records = Vec::with_capacity(pvcs.len());
    for pvc in pvcs {
        let pv = with_retry(retry, || cluster.get(&apis.persistent_volumes, None, &pvc.volume_name)).await?;
        let driver = pv.as_ref().and_then(|pv| str_at(pv, "/spec/csi/driver")).unwrap_or_default().to_owned();
        let name = snapshot_name(backup, pvc);
        let mut record = SnapshotRecord {
            namespace: pvc.namespace.clone(),
            pvc: pvc.name.clone(),
            volume_snapshot: name.clone(),
            driver: driver.clone(),
            class: classes.get(&driver).cloned(),
            handle: None,
            restore_size: None,
            region: region.to_owned(),
            error: None,
        };
        if driver.is_empty() {
            record.error = Some(format!("volume {} is not a CSI volume: it cannot be snapshotted", pvc.volume_name));
        } else if let Some(class) = &record.class {
            let snapshot = json!({
                "apiVersion": apis.volume_snapshots.api_version(),
                "kind": "VolumeSnapshot",
                "metadata": { "name": name, "namespace": pvc.namespace, "labels": { BACKUP_ID_LABEL: backup.as_str() } },
                "spec": { "volumeSnapshotClassName": class, "source": { "persistentVolumeClaimName": pvc.name } }
            });
            match with_retry(retry, || cluster.create(&apis.volume_snapshots, Some(&pvc.namespace), &snapshot)).await {
                Ok(_) => {}
                Err(e) if e.is_already_exists() => {}
                Err(e) if !e.is_transient() => record.error = Some(e.to_string()),
                Err(e) => return Err(e),
            }
        } else {
            record.error = Some(format!("no VolumeSnapshotClass for CSI driver {driver}"));
        }
        records.push(record);
    }
    Ok(records)
}

/// Looks at each pending snapshot once; returns whether any is still pending.
///
/// # Errors
/// [`ClusterError`] when the cluster cannot be read.
pub(crate) async fn check(
    cluster: &dyn Cluster,
    apis: &SnapshotApis,
    records: &mut [SnapshotRecord],
    retry: RetryPolicy,
) -> Result<bool, ClusterError> {
    let mut pending = false;
    for record in records.iter_mut().filter(|r| r.handle.is_none() && r.error.is_none()) {
        let vs =
            with_retry(retry, || cluster.get(&apis.volume_snapshots, Some(&record.namespace), &record.volume_snapshot))
                .await?;
        let Some(vs) = vs else {
            record.error = Some(format!("VolumeSnapshot {}/{} disappeared", record.namespace, record.volume_snapshot));
            continue;
        };
        if let Some(message) = str_at(&vs, "/status/error/message") {
            record.error = Some(message.to_owned());
            continue;
        }
        let ready = vs.pointer("/status/readyToUse").and_then(Value::as_bool) == Some(true);
        let content_name = str_at(&vs, "/status/boundVolumeSnapshotContentName");
        match (ready, content_name) {
            (true, Some(content_name)) => {
                let content = retain(cluster, apis, content_name, retry).await?;
                record.handle = content.as_ref().and_then(|c| str_at(c, "/status/snapshotHandle")).map(str::to_owned);
                record.restore_size = str_at(&vs, "/status/restoreSize")
                    .map(str::to_owned)
                    .or_else(|| content.as_ref().and_then(|c| c.pointer("/status/restoreSize")).map(|v| v.to_string()));
                if record.handle.is_none() {
                    pending = true;
                }
            }
            _ => pending = true,
        }
    }
    Ok(pending)
}

/// Makes the snapshot outlive its VolumeSnapshot: sets the content's `deletionPolicy` to
/// `Retain` (the class usually says `Delete`), so deleting the namespace, or the
/// VolumeSnapshot in it, does not delete the backup's volume data with it (Velero's CSI plugin
/// does the same). Returns the content as stored; `prune` deletes it when the backup goes.
async fn retain(
    cluster: &dyn Cluster,
    apis: &SnapshotApis,
    content_name: &str,
    retry: RetryPolicy,
) -> Result<Option<Value>, ClusterError> {
    for _ in 0..3 {
        let Some(mut content) = with_retry(retry, || cluster.get(&apis.contents, None, content_name)).await? else {
            return Ok(None);
        };
        if str_at(&content, "/spec/deletionPolicy") == Some("Retain") {
            return Ok(Some(content));
        }
        if let Some(spec) = content.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("deletionPolicy".into(), json!("Retain"));
        }
        match with_retry(retry, || cluster.replace(&apis.contents, None, &content)).await {
            Ok(stored) => return Ok(Some(stored)),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ClusterError::Unavailable {
        what: format!("retaining VolumeSnapshotContent {content_name}"),
        message: "it kept changing (three conflicts in a row)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_class_is_preferred_then_a_retaining_one_then_the_first_by_name() {
        let class = |name: &str, driver: &str, policy: &str, default: bool| {
            let mut c = json!({"metadata": {"name": name}, "driver": driver, "deletionPolicy": policy});
            if default {
                c["metadata"]["annotations"] = json!({"snapshot.storage.kubernetes.io/is-default-class": "true"});
            }
            c
        };
        let picked = pick_classes(&[
            class("disk-default", "disk", "Delete", true),
            class("disk-retain", "disk", "Retain", false),
            class("file-b", "file", "Delete", false),
            class("file-a", "file", "Delete", false),
            class("blob-plain", "blob", "Delete", false),
            class("blob-default", "blob", "Delete", true),
            class("nfs-b", "nfs", "Retain", false),
            class("nfs-a", "nfs", "Delete", false),
        ]);
        assert_eq!(picked["disk"], "disk-default");
        assert_eq!(picked["file"], "file-a");
        assert_eq!(picked["blob"], "blob-default");
        assert_eq!(picked["nfs"], "nfs-b", "with no default, a retaining class");
    }

    #[test]
    fn snapshot_names_are_deterministic_valid_and_distinct() {
        let backup = BackupId::parse("nightly-20261122t020000z").unwrap();
        let a = PvcRef { namespace: "shop".into(), name: "data-db-0".into(), volume_name: "pv-1".into() };
        let b = PvcRef { name: "data-db-1".into(), ..a.clone() };
        assert_eq!(snapshot_name(&backup, &a), snapshot_name(&backup, &a));
        assert_ne!(snapshot_name(&backup, &a), snapshot_name(&backup, &b));
        let name = snapshot_name(&backup, &a);
        assert!(
            name.len() <= 253 && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
    }
}

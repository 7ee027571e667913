//! Deletes a pruned backup's volume snapshots from its cluster, the way Velero's CSI plugin
//! does: each VolumeSnapshot Lifeboat made for the backup (found by its
//! `lifeboat.io/backup-id` label, and by the names the catalog recorded), then each of their
//! VolumeSnapshotContents, switched back to `deletionPolicy: Delete` first so that the CSI
//! driver deletes the disk snapshot with it (the backup had switched them to `Retain`).
//! Contents are found by the VolumeSnapshot's binding, by a reference to one of the backup's
//! VolumeSnapshots, or by a recorded snapshot handle, so that a content whose VolumeSnapshot
//! is already gone (its namespace was deleted) is deleted too. Every step is idempotent.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::domain::manifest::SnapshotRecord;
use crate::domain::selection::BACKUP_ID_LABEL;
use crate::ports::cluster::{ApiResourceInfo, Cluster, ClusterError};
use crate::workflows::backup::SnapshotApis;
use crate::workflows::retry::{RetryPolicy, with_retry};

const PAGE: u32 = 500;

/// What was deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotsDeleted {
    /// VolumeSnapshots deleted.
    pub volume_snapshots: usize,
    /// VolumeSnapshotContents deleted (with their disk snapshots).
    pub contents: usize,
}

/// What a cluster holds of Lifeboat's snapshots, read once per prune run: every VolumeSnapshot
/// carrying the backup-id label and every VolumeSnapshotContent (three API requests, however
/// many backups go).
pub struct ClusterSnapshots {
    apis: Option<SnapshotApis>,
    labelled: Vec<Value>,
    contents: Vec<Value>,
}

impl ClusterSnapshots {
    /// Reads them.
    ///
    /// # Errors
    /// [`ClusterError`] when the cluster cannot be read.
    pub async fn read(cluster: &dyn Cluster, retry: RetryPolicy) -> Result<Self, ClusterError> {
        let discovered = with_retry(retry, || cluster.discover()).await?;
        let Some(apis) = SnapshotApis::find(&discovered) else {
            // No snapshot API: nothing of ours can exist in this cluster.
            return Ok(Self { apis: None, labelled: Vec::new(), contents: Vec::new() });
        };
        let labelled = list_all(cluster, &apis.volume_snapshots, Some(BACKUP_ID_LABEL), retry).await?;
        let contents = list_all(cluster, &apis.contents, None, retry).await?;
        Ok(Self { apis: Some(apis), labelled, contents })
    }

    /// Deletes the snapshots of backup `backup_id` (`recorded`: what the catalog holds of
    /// them): its VolumeSnapshots, then their contents with the disk snapshots.
    ///
    /// # Errors
    /// [`ClusterError`] when the cluster cannot be written (the caller leaves the backup for
    /// the next run).
    pub async fn delete_backup(
        &self,
        cluster: &dyn Cluster,
        backup_id: &str,
        recorded: &[SnapshotRecord],
        retry: RetryPolicy,
    ) -> Result<SnapshotsDeleted, ClusterError> {
        let Some(apis) = &self.apis else { return Ok(SnapshotsDeleted::default()) };
        let mut snapshots: BTreeSet<(String, String)> =
            recorded.iter().map(|s| (s.namespace.clone(), s.volume_snapshot.clone())).collect();
        let mut contents: BTreeSet<String> = BTreeSet::new();
        let ours = self.labelled.iter().filter(|vs| {
            vs.pointer("/metadata/labels").and_then(|l| l.get(BACKUP_ID_LABEL)).and_then(Value::as_str)
                == Some(backup_id)
        });
        for vs in ours {
            if let (Some(ns), Some(name)) = (str_at(vs, "/metadata/namespace"), str_at(vs, "/metadata/name")) {
                snapshots.insert((ns.to_owned(), name.to_owned()));
            }
            if let Some(content) = str_at(vs, "/status/boundVolumeSnapshotContentName") {
                contents.insert(content.to_owned());
            }
        }
        let handles: BTreeSet<&str> = recorded.iter().filter_map(|s| s.handle.as_deref()).collect();
        for content in &self.contents {
            let Some(name) = str_at(content, "/metadata/name") else { continue };
            let refers = match (
                str_at(content, "/spec/volumeSnapshotRef/namespace"),
                str_at(content, "/spec/volumeSnapshotRef/name"),
            ) {
                (Some(ns), Some(vs)) => snapshots.contains(&(ns.to_owned(), vs.to_owned())),
                _ => false,
            };
            let holds = str_at(content, "/status/snapshotHandle").is_some_and(|h| handles.contains(h));
            if refers || holds {
                contents.insert(name.to_owned());
            }
        }
        let mut deleted = SnapshotsDeleted::default();
        for (namespace, name) in &snapshots {
            if with_retry(retry, || cluster.delete(&apis.volume_snapshots, Some(namespace), name)).await? {
                deleted.volume_snapshots += 1;
            }
        }
        for name in &contents {
            if release(cluster, &apis.contents, name, retry).await? {
                deleted.contents += 1;
            }
        }
        Ok(deleted)
    }
}

/// Sets the content's `deletionPolicy` to `Delete`, then deletes it; whether it existed.
async fn release(
    cluster: &dyn Cluster,
    contents: &ApiResourceInfo,
    name: &str,
    retry: RetryPolicy,
) -> Result<bool, ClusterError> {
    for _ in 0..3 {
        let Some(mut content) = with_retry(retry, || cluster.get(contents, None, name)).await? else {
            return Ok(false);
        };
        if str_at(&content, "/spec/deletionPolicy") != Some("Delete") {
            if let Some(spec) = content.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("deletionPolicy".into(), json!("Delete"));
            }
            match with_retry(retry, || cluster.replace(contents, None, &content)).await {
                Ok(_) => {}
                Err(e) if e.is_conflict() => continue,
                Err(e) if e.is_not_found() => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        return with_retry(retry, || cluster.delete(contents, None, name)).await;
    }
    Err(ClusterError::Unavailable {
        what: format!("releasing VolumeSnapshotContent {name}"),
        message: "it kept changing while its deletion policy was set".into(),
    })
}

/// Every object of `resource` (in every namespace) matching `label_selector`, page by page.
///
/// # Errors
/// [`ClusterError`] past retries.
pub(crate) async fn list_all(
    cluster: &dyn Cluster,
    resource: &ApiResourceInfo,
    label_selector: Option<&str>,
    retry: RetryPolicy,
) -> Result<Vec<Value>, ClusterError> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = with_retry(retry, || cluster.list(resource, None, label_selector, PAGE, token.as_deref())).await?;
        all.extend(page.items);
        match page.continue_token {
            Some(t) => token = Some(t),
            None => return Ok(all),
        }
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

//! Finds the VolumeSnapshots Lifeboat made (labelled `lifeboat.io/backup-id`) in one cluster.

use serde_json::Value;

use crate::domain::policy::Cluster;
use crate::domain::selection::BACKUP_ID_LABEL;
use crate::ports::cluster::{ClusterConnector, ClusterError};
use crate::workflows::retry::{RetryPolicy, with_retry};

const PAGE: u32 = 500;

/// Every labelled VolumeSnapshot of `cluster`, as (`namespace/name`, backup id). Empty when the
/// cluster serves no VolumeSnapshot API.
///
/// # Errors
/// [`ClusterError`] when the cluster cannot be reached or listed.
pub async fn labelled_snapshots(
    connector: &dyn ClusterConnector,
    cluster: &Cluster,
) -> Result<Vec<(String, String)>, ClusterError> {
    let client = connector.connect(cluster).await?;
    let discovered = with_retry(RetryPolicy::default(), || client.discover()).await?;
    let Some(api) = discovered.into_iter().find(|r| r.group_resource() == "volumesnapshots.snapshot.storage.k8s.io")
    else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = with_retry(RetryPolicy::default(), || {
            client.list(&api, None, Some(BACKUP_ID_LABEL), PAGE, token.as_deref())
        })
        .await?;
        for item in &page.items {
            let s = |p: &str| item.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
            let labels = item.pointer("/metadata/labels").and_then(Value::as_object);
            let Some(id) = labels.and_then(|l| l.get(BACKUP_ID_LABEL)).and_then(Value::as_str) else { continue };
            found.push((format!("{}/{}", s("/metadata/namespace"), s("/metadata/name")), id.to_owned()));
        }
        match page.continue_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(found),
        }
    }
}

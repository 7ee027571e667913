//! Following one backup in the catalog until it ends (`lifeboat backup now --wait`).

use std::time::Duration;

use lifeboat_shared::catalog;
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::names::ClusterName;
use lifeboat_shared::domain::records::{BackupRecord, BackupState};
use lifeboat_shared::ports::StateStore;

/// How often the catalog is read.
pub(crate) const POLL: Duration = Duration::from_millis(500);

/// How a followed backup ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Committed (or already replicated): restorable.
    Committed(Box<BackupRecord>),
    /// Failed, with the reason in the record.
    Failed(Box<BackupRecord>),
    /// Still going when the time was up; its state then (`None`: not claimed from the queue yet).
    TimedOut(Option<BackupState>),
}

/// What the backup is doing now, for people: its state, or `queued` before it is claimed.
pub(crate) fn describe(state: Option<BackupState>) -> String {
    state.map_or_else(|| "queued".to_owned(), super::backups::state_name)
}

/// Reads the backup every `poll` until it is committed or failed, or `timeout` passes, telling
/// `progress` its state after each read. A transient catalog error is retried at the next poll.
///
/// # Errors
/// A catalog error that a retry cannot fix.
pub(crate) async fn follow(
    state: &dyn StateStore,
    cluster: &ClusterName,
    backup_id: &BackupId,
    timeout: Duration,
    poll: Duration,
    mut progress: impl FnMut(Option<BackupState>),
) -> anyhow::Result<Ended> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        match catalog::get(state, cluster, backup_id).await {
            Ok(Some((record, _))) if record.state.is_restorable() => return Ok(Ended::Committed(Box::new(record))),
            Ok(Some((record, _))) if record.state == BackupState::Failed => {
                return Ok(Ended::Failed(Box::new(record)));
            }
            Ok(found) => last = found.map(|(r, _)| r.state),
            Err(e) if e.is_transient() => tracing::debug!(backup.id = %backup_id, "catalog read failed, retrying: {e}"),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("following backup {backup_id}"))),
        }
        progress(last);
        if tokio::time::Instant::now() + poll > deadline {
            return Ok(Ended::TimedOut(last));
        }
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lifeboat_shared::adapters::sqlite::SqliteStateStore;
    use lifeboat_shared::domain::messages::BackupReason;
    use lifeboat_shared::domain::names::PolicyName;

    use super::*;

    fn record() -> BackupRecord {
        BackupRecord::requested(
            BackupId::parse("demo-od-1").unwrap(),
            ClusterName::new("demo").unwrap(),
            PolicyName::new("demo").unwrap(),
            BackupReason::OnDemand { request_id: "1".into(), requested_by: None },
            chrono::Utc::now(),
        )
    }

    async fn store() -> (tempfile::TempDir, Arc<SqliteStateStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStateStore::open(&dir.path().join("s.sqlite")).unwrap());
        (dir, store)
    }

    #[tokio::test]
    async fn a_backup_that_never_appears_times_out_as_queued() {
        let (_dir, store) = store().await;
        let r = record();
        let mut seen = Vec::new();
        let ended = follow(
            store.as_ref(),
            &r.cluster,
            &r.backup_id,
            Duration::from_millis(120),
            Duration::from_millis(20),
            |s| seen.push(describe(s)),
        )
        .await
        .unwrap();
        assert!(matches!(ended, Ended::TimedOut(None)), "{ended:?}");
        assert!(!seen.is_empty() && seen.iter().all(|s| s == "queued"), "{seen:?}");
    }

    #[tokio::test]
    async fn committed_and_failed_end_the_wait() {
        let (_dir, store) = store().await;
        let mut r = record();
        catalog::claim(store.as_ref(), &r).await.unwrap();
        let ended = follow(
            store.as_ref(),
            &r.cluster,
            &r.backup_id,
            Duration::from_millis(60),
            Duration::from_millis(20),
            |_| {},
        )
        .await
        .unwrap();
        assert!(matches!(ended, Ended::TimedOut(Some(BackupState::Requested))), "{ended:?}");

        let (_, etag) = catalog::get(store.as_ref(), &r.cluster, &r.backup_id).await.unwrap().unwrap();
        r.state = BackupState::Failed;
        r.failure = Some("cluster unreachable".into());
        catalog::save(store.as_ref(), &r, &etag).await.unwrap();
        let ended =
            follow(store.as_ref(), &r.cluster, &r.backup_id, Duration::from_secs(5), Duration::from_millis(20), |_| {})
                .await
                .unwrap();
        assert!(matches!(&ended, Ended::Failed(rec) if rec.failure.as_deref() == Some("cluster unreachable")));

        let (_, etag) = catalog::get(store.as_ref(), &r.cluster, &r.backup_id).await.unwrap().unwrap();
        r.state = BackupState::Committed;
        catalog::save(store.as_ref(), &r, &etag).await.unwrap();
        let ended =
            follow(store.as_ref(), &r.cluster, &r.backup_id, Duration::from_secs(5), Duration::from_millis(20), |_| {})
                .await
                .unwrap();
        assert!(matches!(ended, Ended::Committed(_)));
    }
}

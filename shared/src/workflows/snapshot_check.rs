//! `snapshot_check`: looks at a backup's volume snapshots; records handles as they become
//! ready; commits when none is pending, or when the deadline passes (the late ones recorded as
//! failed); otherwise schedules the next look.

use super::backup::{self, BackupError, BackupSettings, Deps, Outcome, SnapshotApis, target};
use super::retry::with_retry;
use crate::catalog;
use crate::domain::messages::SnapshotCheck;
use crate::domain::policy::Config;
use crate::domain::records::BackupState;

/// Handles one `snapshot-checks` message.
///
/// # Errors
/// [`BackupError`]; see [`BackupError::is_transient`].
pub async fn run(
    deps: &Deps<'_>,
    settings: &BackupSettings,
    config: &Config,
    check: &SnapshotCheck,
) -> Result<Outcome, BackupError> {
    let Some((mut record, etag)) = catalog::get(deps.state, &check.cluster, &check.backup_id).await? else {
        return Err(BackupError::UnknownBackup(check.backup_id.to_string()));
    };
    match record.state {
        BackupState::WaitingForSnapshots => {}
        BackupState::Requested | BackupState::Running => return Err(BackupError::NotYet(check.backup_id.to_string())),
        done => return Ok(Outcome::AlreadyDone(done)),
    }
    let (policy, _) = target(config, record.policy.as_str(), record.cluster.as_str())?;
    let discovered = with_retry(settings.export.retry, || deps.cluster.discover()).await?;
    let Some(apis) = SnapshotApis::find(&discovered) else {
        for s in record.snapshots.iter_mut().filter(|s| s.handle.is_none() && s.error.is_none()) {
            s.error = Some("the cluster no longer serves the VolumeSnapshot API".into());
        }
        return backup::commit(deps, policy, &mut record, etag).await;
    };
    let pending = super::backup::snapshots_check(deps, &apis, &mut record.snapshots, settings).await?;
    let overdue = record.snapshot_deadline.is_none_or(|deadline| deps.now >= deadline);
    if pending && !overdue {
        catalog::save(deps.state, &record, &etag).await?;
        backup::send_check(deps, &record, check.attempt + 1, settings).await?;
        return Ok(Outcome::WaitingForSnapshots { snapshots: record.snapshots.len() });
    }
    if pending {
        for s in record.snapshots.iter_mut().filter(|s| s.handle.is_none() && s.error.is_none()) {
            s.error = Some(format!(
                "not ready by the deadline ({})",
                record.snapshot_deadline.map(|d| d.to_rfc3339()).unwrap_or_default()
            ));
        }
    }
    backup::commit(deps, policy, &mut record, etag).await
}

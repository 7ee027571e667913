//! `snapshot_check` (Service Bus `snapshot-checks`): waits for a backup's volume snapshots, then
//! commits it.

use lifeboat_shared::domain::messages::SnapshotCheck;
use lifeboat_shared::workflows::backup::{BackupError, Outcome as BackupOutcome};
use lifeboat_shared::workflows::snapshot_check;

use super::message::decode_or_dead_letter;
use super::{HandlerError, MessageInput, Outcome, backup_deps, retryable};
use crate::app::AppState;

pub(crate) async fn handle(app: &AppState, input: &MessageInput) -> Result<Outcome, HandlerError> {
    let check: SnapshotCheck = match decode_or_dead_letter(input) {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    let Some(cluster_def) = app.config.clusters.get(&check.cluster) else {
        return Ok(Outcome::DeadLetter {
            reason: "UnknownCluster".to_owned(),
            description: format!("cluster {} is not declared", check.cluster),
        });
    };
    let cluster = app.clusters.connect(cluster_def).await.map_err(|e| {
        retryable(
            e.is_transient(),
            format!("snapshot check of {}: connecting to {}: {e}", check.backup_id, check.cluster),
        )
    })?;
    let deps = backup_deps(app, cluster.as_ref());
    match snapshot_check::run(&deps, &app.settings.backup, &app.config, &check).await {
        Ok(outcome) => Ok(Outcome::done(vec![describe(&check, &outcome)])),
        Err(e @ (BackupError::UnknownBackup(_) | BackupError::UnknownTarget(_))) => {
            Ok(Outcome::DeadLetter { reason: "UnknownBackup".to_owned(), description: e.to_string() })
        }
        Err(e) => Err(retryable(e.is_transient(), format!("snapshot check of {}: {e}", check.backup_id))),
    }
}

fn describe(check: &SnapshotCheck, outcome: &BackupOutcome) -> String {
    let id = &check.backup_id;
    match outcome {
        BackupOutcome::Committed { objects, partial } => {
            format!("backup {id} committed{}: {objects} objects", if *partial { " partially" } else { "" })
        }
        BackupOutcome::WaitingForSnapshots { snapshots } => {
            format!("backup {id}: {snapshots} snapshot(s) not all ready; check {} scheduled", check.attempt + 1)
        }
        BackupOutcome::AlreadyDone(state) => format!("backup {id} is already {state:?}"),
        BackupOutcome::Failed(reason) => format!("backup {id} failed: {reason}"),
        // Steps of the `backup` message, never the outcome of a check.
        BackupOutcome::Split { .. } | BackupOutcome::PartDone { .. } | BackupOutcome::WaitingForParts { .. } => {
            format!("backup {id}: still being written")
        }
    }
}

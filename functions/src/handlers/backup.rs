//! `backup` (Service Bus `backup-requests`): backs up one target.

use lifeboat_shared::domain::messages::BackupRequest;
use lifeboat_shared::errors;
use lifeboat_shared::workflows::backup::{self, BackupError, Outcome as BackupOutcome};

use super::message::decode_or_dead_letter;
use super::{HandlerError, MessageInput, Outcome, backup_deps, retryable};
use crate::app::AppState;

pub(crate) async fn handle(app: &AppState, input: &MessageInput) -> Result<Outcome, HandlerError> {
    let request: BackupRequest = match decode_or_dead_letter(input) {
        Ok(r) => r,
        Err(outcome) => return Ok(outcome),
    };
    let (_, cluster_def) = match backup::target(&app.config, request.policy.as_str(), request.cluster.as_str()) {
        Ok(t) => t,
        Err(e) => return Ok(Outcome::DeadLetter { reason: "UnknownTarget".to_owned(), description: e.to_string() }),
    };
    let attempt = async {
        let cluster = app.clusters.connect(cluster_def).await.map_err(|e| cluster_error(&request, e))?;
        let deps = backup_deps(app, cluster.as_ref());
        backup::run(&deps, &app.settings.backup, &app.config, &request).await.map_err(|e| failure(&request, e))
    };
    match attempt.await {
        Ok(outcome) => Ok(Outcome::done(vec![describe(&request, &outcome)])),
        Err(HandlerError::Transient(reason))
            if input.delivery_count >= app.settings.backup.give_up_after_deliveries =>
        {
            let reason = format!("{reason} (gave up after {} deliveries)", input.delivery_count);
            backup::give_up(app.state.as_ref(), &request, &reason, app.clock.now())
                .await
                .map_err(|e| failure(&request, e))?;
            Ok(Outcome::done(vec![describe(&request, &BackupOutcome::Failed(reason))]))
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn describe(request: &BackupRequest, outcome: &BackupOutcome) -> String {
    let id = &request.backup_id;
    match outcome {
        BackupOutcome::Committed { objects, partial: false } => format!("backup {id} committed: {objects} objects"),
        BackupOutcome::Committed { objects, partial: true } => {
            format!("backup {id} committed, partially: {objects} objects; see the manifest's warnings")
        }
        BackupOutcome::WaitingForSnapshots { snapshots } => {
            format!("backup {id}: waiting for {snapshots} volume snapshot(s)")
        }
        BackupOutcome::Split { parts } => format!("backup {id} split into {parts} parts"),
        BackupOutcome::PartDone { index } => format!("backup {id}: part {index} written"),
        BackupOutcome::WaitingForParts { done, of } => format!("backup {id}: {done} of {of} parts written"),
        BackupOutcome::AlreadyDone(state) => format!("backup {id} is already {state:?}: nothing to do"),
        BackupOutcome::Failed(reason) => format!("backup {id} failed: {reason}"),
    }
}

fn cluster_error(request: &BackupRequest, e: lifeboat_shared::ports::ClusterError) -> HandlerError {
    retryable(e.is_transient(), format!("backup {}: connecting to cluster {}: {e}", request.backup_id, request.cluster))
}

pub(crate) fn failure(request: &BackupRequest, e: BackupError) -> HandlerError {
    retryable(e.is_transient(), format!("backup {}: {}", request.backup_id, errors::chain(&e)))
}

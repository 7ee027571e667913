//! `copy` (Service Bus `copy-requests`): copies a committed backup to the second region.

use lifeboat_shared::domain::messages::CopyRequest;
use lifeboat_shared::errors;
use lifeboat_shared::workflows::copy::{self, CopyDeps, CopyError, CopyOutcome};

use super::message::decode_or_dead_letter;
use super::{HandlerError, MessageInput, Outcome, retryable};
use crate::app::AppState;

pub(crate) async fn handle(app: &AppState, input: &MessageInput) -> Result<Outcome, HandlerError> {
    let request: CopyRequest = match decode_or_dead_letter(input) {
        Ok(r) => r,
        Err(outcome) => return Ok(outcome),
    };
    let Some(replica) = app.replicas.iter().find(|r| r.region == request.target_region) else {
        return Ok(Outcome::DeadLetter {
            reason: "UnknownReplicaRegion".to_owned(),
            description: format!(
                "no storage is configured for region {} (LIFEBOAT_REPLICA_REGION, see docs/azure.md)",
                request.target_region
            ),
        });
    };
    let deps = CopyDeps {
        state: app.state.as_ref(),
        source: app.objects.as_ref(),
        copier: replica.copier.as_ref(),
        snapshots: replica.snapshots.as_deref(),
        bus: app.bus.as_ref(),
        now: app.clock.now(),
    };
    match copy::run(&deps, &app.settings.copy, &request).await {
        Ok(outcome) => Ok(Outcome::done(vec![describe(&request, &outcome)])),
        Err(e @ CopyError::UnknownBackup(_)) => {
            Ok(Outcome::DeadLetter { reason: "UnknownBackup".to_owned(), description: e.to_string() })
        }
        Err(e) => Err(retryable(
            e.is_transient(),
            format!("copy of {} to {}: {}", request.backup_id, request.target_region, errors::chain(&e)),
        )),
    }
}

fn describe(request: &CopyRequest, outcome: &CopyOutcome) -> String {
    let (id, region) = (&request.backup_id, &request.target_region);
    match outcome {
        CopyOutcome::Replicated { objects, snapshots } => {
            format!("backup {id} replicated to {region}: {objects} objects, {snapshots} snapshot(s)")
        }
        CopyOutcome::Waiting { pending, next_attempt } => {
            format!("backup {id}: {pending} copies to {region} running; poll {next_attempt} scheduled")
        }
        CopyOutcome::AlreadyReplicated => format!("backup {id} is already replicated"),
        CopyOutcome::NotCommitted(state) => format!("backup {id} is {state:?}, not committed: nothing to copy"),
        CopyOutcome::ReplicaFailed(reason) => format!("backup {id}: the replica in {region} failed: {reason}"),
        CopyOutcome::Superseded { round } => {
            format!("backup {id}: a message of an earlier copy round to {region}; round {round} is under way")
        }
    }
}

//! `restore` (Service Bus `restore-requests`): validates, plans and applies a restore.

use lifeboat_shared::domain::messages::{RestorePhase, RestoreRequest};
use lifeboat_shared::errors;
use lifeboat_shared::workflows::restore::{self, Deps, Outcome as RestoreOutcome, RestoreError};

use super::message::decode_or_dead_letter;
use super::{HandlerError, MessageInput, Outcome, retryable};
use crate::app::AppState;

pub(crate) async fn handle(app: &AppState, input: &MessageInput) -> Result<Outcome, HandlerError> {
    let request: RestoreRequest = match decode_or_dead_letter(input) {
        Ok(r) => r,
        Err(outcome) => return Ok(outcome),
    };
    let Some(target) = app.config.clusters.get(&request.target_cluster) else {
        return Ok(Outcome::DeadLetter {
            reason: "UnknownCluster".to_owned(),
            description: format!("cluster {} is not declared", request.target_cluster),
        });
    };
    let cluster = app.clusters.connect(target).await.map_err(|e| {
        retryable(
            e.is_transient(),
            format!("restore {}: connecting to cluster {}: {e}", request.restore_id(), request.target_cluster),
        )
    })?;
    let regions = app.replica_regions();
    let deps = Deps {
        state: app.state.as_ref(),
        objects: app.objects.as_ref(),
        replicas: &regions,
        bus: app.bus.as_ref(),
        cluster: cluster.as_ref(),
        clock: app.clock.as_ref(),
    };
    let id = request.restore_id();
    match restore::run(&deps, &app.settings.restore, &app.config, &request).await {
        Ok(RestoreOutcome::Refused { code, reason }) => Ok(Outcome::DeadLetter { reason: code, description: reason }),
        Ok(outcome) => Ok(Outcome::done(vec![describe(&id, &outcome)])),
        Err(e) => Err(failure(&id, &e)),
    }
}

fn describe(id: &str, outcome: &RestoreOutcome) -> String {
    match outcome {
        RestoreOutcome::Finished { phase, counts, rto_seconds, reason } => {
            let how = match phase {
                RestorePhase::Completed => "completed".to_owned(),
                RestorePhase::PartiallyFailed => "partially failed".to_owned(),
                other => format!("{other:?}").to_lowercase(),
            };
            let why = reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            format!(
                "restore {id} {how}{why}: {} created, {} updated, {} unchanged, {} failed, {} skipped; RTO {rto_seconds}s",
                counts.created, counts.updated, counts.unchanged, counts.failed, counts.skipped
            )
        }
        RestoreOutcome::Planned { counts, results_key } => format!(
            "restore {id} (dry run): {} object(s) would be sent, {} skipped; plan in {results_key}",
            counts.planned, counts.skipped
        ),
        RestoreOutcome::AlreadyDone(phase) => format!("restore {id} already ended ({phase:?}): nothing to do"),
        RestoreOutcome::Refused { code, reason } => format!("restore {id} refused: {code}: {reason}"),
    }
}

fn failure(id: &str, e: &RestoreError) -> HandlerError {
    retryable(e.is_transient(), format!("restore {id}: {}", errors::chain(e)))
}

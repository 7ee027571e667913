//! `status` (HTTP GET): the catalog and what the scheduler did, as JSON.

use chrono::Duration;
use lifeboat_shared::domain::messages::Queue;
use lifeboat_shared::domain::policy::format_duration;
use lifeboat_shared::layout::{TABLE_BACKUPS, TABLE_DEAD_LETTERS, TABLE_SCHEDULE_CURSORS, TABLE_SLOT_CLAIMS};
use lifeboat_shared::ports::state_store::{Query, query_all};
use serde_json::{Value, json};

use super::{HandlerError, Outcome};
use crate::app::AppState;

/// How far back the status looks for schedule claims.
const CLAIM_HISTORY: Duration = Duration::days(7);

fn store_err(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(format!("reading status: {e}"))
}

pub(crate) async fn handle(app: &AppState) -> Result<Outcome, HandlerError> {
    Ok(Outcome::Done { logs: Vec::new(), body: Some(report(app).await?) })
}

/// The status document.
///
/// # Errors
/// [`HandlerError::Transient`] when the state store cannot be read.
pub async fn report(app: &AppState) -> Result<Value, HandlerError> {
    let now = app.clock.now();
    let state = app.state.as_ref();
    let mut targets = Vec::new();
    for target in app.config.targets() {
        let key = target.key();
        let cursor = state
            .get(TABLE_SCHEDULE_CURSORS, target.policy.name.as_str(), target.cluster.name.as_str())
            .await
            .map_err(store_err)?;
        let since = (now - CLAIM_HISTORY).format("%Y%m%dT%H%M%SZ").to_string();
        let claims =
            query_all(state, TABLE_SLOT_CLAIMS, &Query { row_key_from: Some(since), ..Query::partition(&key) })
                .await
                .map_err(store_err)?;
        let last = claims.last();
        targets.push(json!({
            "target": key,
            "policy": target.policy.name,
            "cluster": target.cluster.name,
            "schedule": target.policy.spec.schedule.expression(),
            "rpo": format_duration(target.policy.spec.rpo),
            "lastEvaluated": cursor.as_ref().and_then(|c| c.str("lastEvaluated")),
            "lastRequestedBackup": last.and_then(|c| c.str("backupId")),
            "lastRequestedSlot": last.and_then(|c| c.str("slot")),
            "requestedLast7Days": claims.len(),
        }));
    }
    let backups = query_all(state, TABLE_BACKUPS, &Query::all()).await.map_err(store_err)?;
    let dead_letters = query_all(state, TABLE_DEAD_LETTERS, &Query::all()).await.map_err(store_err)?;
    let mut queues = serde_json::Map::new();
    if let Some(receiver) = &app.queues {
        for queue in Queue::ALL {
            let stats = receiver.stats(queue.name()).await.map_err(store_err)?;
            queues.insert(queue.name().to_owned(), serde_json::to_value(stats).unwrap_or(Value::Null));
        }
    }
    Ok(json!({
        "generatedAt": now.to_rfc3339(),
        "clusters": app.config.clusters.len(),
        "policies": app.config.policies.len(),
        "targets": targets,
        "backups": backups.len(),
        "deadLetters": dead_letters.iter().map(|d| json!({
            "queue": d.partition_key,
            "messageId": d.str("messageId"),
            "reason": d.str("reason"),
            "description": d.str("description"),
            "at": d.str("at"),
        })).collect::<Vec<_>>(),
        "queues": queues,
    }))
}

//! An SQS batch: each message to its queue's handler, answered with the partial batch
//! failure response (`{"batchItemFailures": [{"itemIdentifier": messageId}]}`) that names the
//! messages SQS should deliver again. Needs `ReportBatchItemFailures` on the event source
//! mapping.
//!
//! A message that can never succeed (malformed, unknown target, no function for its queue)
//! must not hold up the batch: SQS has no dead-lettering by the consumer, so it is recorded in
//! the `deadletters` table and sent to the app's `dead-letters` queue with its reason (as the
//! Azure custom handler does, see [`handlers::record_dead_letter`]) and then reported as a
//! success. Failures a retry may fix are reported, and SQS's redrive policy takes them to the
//! queue's DLQ after `maxReceiveCount`.

use std::time::Duration;

use serde_json::{Value, json};

use super::events::{SqsRecord, app_name};
use crate::app::AppState;
use crate::function_defs::{FunctionDef, TriggerKind};
use crate::handlers::{self, MessageInput, Outcome, TriggerInput};

/// Messages are not started with less time than this left: they are reported for retry.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// Handles `records` in order; `remaining` says how long the invocation has left.
pub async fn handle(app: &AppState, records: &[SqsRecord], remaining: impl Fn() -> Option<Duration>) -> Value {
    let mut failures = Vec::new();
    for record in records {
        if remaining().is_some_and(|left| left < DEADLINE_MARGIN) {
            tracing::warn!(message.id = %record.message_id, "too close to the deadline: left for redelivery");
            failures.push(record.message_id.clone());
        } else if !handle_one(app, record).await {
            failures.push(record.message_id.clone());
        }
    }
    let failures: Vec<Value> = failures.into_iter().map(|id| json!({ "itemIdentifier": id })).collect();
    json!({ "batchItemFailures": failures })
}

/// Handles one message; `false` when SQS should deliver it again.
async fn handle_one(app: &AppState, record: &SqsRecord) -> bool {
    let queue = app_name(&record.queue);
    let input = MessageInput {
        queue: queue.to_owned(),
        message_id: record.message_id.clone(),
        body: record.body.clone().into_bytes(),
        delivery_count: record.receive_count,
        enqueued_time: record.sent,
    };
    let Some(function) = queue_function(app, queue) else {
        let description = format!("no function is triggered by queue {queue:?} (from {:?})", record.queue);
        return dead_letter(app, &input, "UnknownQueue", &description).await;
    };
    match handlers::dispatch(app, &function, TriggerInput::Message(input.clone())).await {
        Ok(Outcome::Done { logs, .. }) => {
            for line in logs {
                tracing::info!(message.id = %record.message_id, "{line}");
            }
            true
        }
        Ok(Outcome::DeadLetter { reason, description }) => dead_letter(app, &input, &reason, &description).await,
        Err(e) if e.status() < 500 => dead_letter(app, &input, "BadInvocation", &e.to_string()).await,
        Err(e) => {
            tracing::error!(message.id = %record.message_id, queue, status = e.status(), "{e}");
            false
        }
    }
}

async fn dead_letter(app: &AppState, input: &MessageInput, reason: &str, description: &str) -> bool {
    match handlers::record_dead_letter(app, input, reason, description, true).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(message.id = %input.message_id, "{e}");
            false
        }
    }
}

fn queue_function(app: &AppState, queue: &str) -> Option<FunctionDef> {
    app.functions.iter().find(|f| matches!(&f.trigger, TriggerKind::ServiceBus { queue: q } if q == queue)).cloned()
}

//! Recording a refused message: in the `deadletters` table always, and on the `dead-letters`
//! queue where the host cannot dead-letter natively (a Functions custom handler).

use lifeboat_shared::domain::ids::short_hash;
use lifeboat_shared::domain::messages::{DeadLetter, Message, encode};
use lifeboat_shared::layout::TABLE_DEAD_LETTERS;
use lifeboat_shared::ports::OutgoingMessage;
use lifeboat_shared::ports::state_store::{Entity, MAX_STRING_BYTES};

use super::{HandlerError, MessageInput};
use crate::app::AppState;

/// A Table-safe row key for a message id: readable, unique, within key rules.
fn row_key(message_id: &str) -> String {
    let readable: String =
        message_id.chars().filter(|c| !matches!(c, '/' | '\\' | '#' | '?') && !c.is_control()).take(200).collect();
    format!("{readable}.{}", short_hash(message_id))
}

/// Keeps `input` with the reason it was refused. Idempotent: a redelivered refusal finds its
/// record and its dead-letter message already there.
///
/// # Errors
/// [`HandlerError::Transient`] when the record cannot be written (the host retries).
pub async fn record_dead_letter(
    app: &AppState,
    input: &MessageInput,
    reason: &str,
    description: &str,
    send_to_queue: bool,
) -> Result<(), HandlerError> {
    let now = app.clock.now();
    let mut body = String::from_utf8_lossy(&input.body).into_owned();
    if body.len() > MAX_STRING_BYTES / 2 {
        let mut cut = MAX_STRING_BYTES / 2;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    let record = DeadLetter {
        schema_version: DeadLetter::SCHEMA_VERSION,
        queue: input.queue.clone(),
        message_id: input.message_id.clone(),
        reason: reason.to_owned(),
        description: description.to_owned(),
        body,
        at: now,
    };
    let entity = Entity::new(&input.queue, row_key(&input.message_id))
        .with("messageId", input.message_id.as_str())
        .with("reason", reason)
        .with("description", description)
        .with("deliveryCount", i64::from(input.delivery_count))
        .with("body", record.body.as_str())
        .with("at", now.to_rfc3339());
    match app.state.insert(TABLE_DEAD_LETTERS, &entity).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(HandlerError::Transient(format!("recording dead letter {}: {e}", input.message_id))),
    }
    if send_to_queue {
        let message = OutgoingMessage::json(DeadLetter::QUEUE.name(), record.message_id(), encode(&record));
        app.bus
            .send(message)
            .await
            .map_err(|e| HandlerError::Transient(format!("parking dead letter {}: {e}", input.message_id)))?;
    }
    tracing::warn!(queue = %input.queue, message.id = %input.message_id, reason, "message dead-lettered: {description}");
    Ok(())
}

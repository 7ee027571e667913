//! Decoding queue messages against their contracts.

use lifeboat_shared::domain::messages::{ContractError, Message, decode};

use super::{MessageInput, Outcome};

/// Decodes `input` as `M`, or says how to dead-letter it.
pub(crate) fn decode_or_dead_letter<M: Message>(input: &MessageInput) -> Result<M, Outcome> {
    decode::<M>(&input.body).map_err(|e: ContractError| {
        tracing::warn!(queue = %input.queue, message.id = %input.message_id, reason = e.reason_code(), "refusing message: {e}");
        Outcome::DeadLetter { reason: e.reason_code().to_owned(), description: e.to_string() }
    })
}

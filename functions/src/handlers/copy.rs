//! `copy` (Service Bus `copy-requests`).

use lifeboat_shared::domain::messages::CopyRequest;

use super::message::decode_or_dead_letter;
use super::not_implemented::not_implemented;
use super::{HandlerError, MessageInput, Outcome};

pub(crate) fn handle(input: &MessageInput) -> Result<Outcome, HandlerError> {
    if let Err(outcome) = decode_or_dead_letter::<CopyRequest>(input) {
        return Ok(outcome);
    }
    Err(not_implemented("copy", "cross-region copy arrives with issue 5 (Azure)"))
}

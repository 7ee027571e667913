//! `snapshot_check` (Service Bus `snapshot-checks`).

use lifeboat_shared::domain::messages::SnapshotCheck;

use super::message::decode_or_dead_letter;
use super::not_implemented::not_implemented;
use super::{HandlerError, MessageInput, Outcome};

pub(crate) fn handle(input: &MessageInput) -> Result<Outcome, HandlerError> {
    if let Err(outcome) = decode_or_dead_letter::<SnapshotCheck>(input) {
        return Ok(outcome);
    }
    Err(not_implemented("snapshot_check", "the snapshot checks arrive with issue 3 (backups)"))
}

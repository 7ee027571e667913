//! `backup` (Service Bus `backup-requests`): backs up one target.

use lifeboat_shared::domain::messages::BackupRequest;

use super::message::decode_or_dead_letter;
use super::not_implemented::not_implemented;
use super::{HandlerError, MessageInput, Outcome};
use crate::app::AppState;

pub(crate) fn handle(app: &AppState, input: &MessageInput) -> Result<Outcome, HandlerError> {
    let request: BackupRequest = match decode_or_dead_letter(input) {
        Ok(r) => r,
        Err(outcome) => return Ok(outcome),
    };
    if !app.config.policies.get(&request.policy).is_some_and(|p| p.spec.clusters.contains(&request.cluster)) {
        return Ok(Outcome::DeadLetter {
            reason: "UnknownTarget".to_owned(),
            description: format!("policy {} does not protect cluster {}", request.policy, request.cluster),
        });
    }
    Err(not_implemented("backup", "the backup engine arrives with issue 3 (backups)"))
}

//! `restore` (Service Bus `restore-requests`): validates, plans and applies a restore.

use lifeboat_shared::domain::messages::RestoreRequest;

use super::message::decode_or_dead_letter;
use super::not_implemented::not_implemented;
use super::{HandlerError, MessageInput, Outcome};
use crate::app::AppState;

pub(crate) fn handle(app: &AppState, input: &MessageInput) -> Result<Outcome, HandlerError> {
    let request: RestoreRequest = match decode_or_dead_letter(input) {
        Ok(r) => r,
        Err(outcome) => return Ok(outcome),
    };
    for cluster in [&request.source_cluster, &request.target_cluster] {
        if !app.config.clusters.contains_key(cluster) {
            return Ok(Outcome::DeadLetter {
                reason: "UnknownCluster".to_owned(),
                description: format!("cluster {cluster} is not declared"),
            });
        }
    }
    Err(not_implemented("restore", "restores arrive with issue 4"))
}

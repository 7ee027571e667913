//! `upgrade_event` (Event Grid): a backup before every AKS upgrade.

use serde_json::Value;

use super::not_implemented::not_implemented;
use super::{HandlerError, Outcome};

pub(crate) fn handle(event: &Value) -> Result<Outcome, HandlerError> {
    if !event.is_object() {
        return Err(HandlerError::BadInvocation("an Event Grid event must be a JSON object".to_owned()));
    }
    Err(not_implemented("upgrade_event", "pre-upgrade backups arrive with issue 7"))
}

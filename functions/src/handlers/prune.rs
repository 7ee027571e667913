//! `prune` (timer).

use super::not_implemented::not_implemented;
use super::{HandlerError, Outcome};

pub(crate) fn handle() -> Result<Outcome, HandlerError> {
    Err(not_implemented("prune", "retention pruning arrives with issue 6"))
}

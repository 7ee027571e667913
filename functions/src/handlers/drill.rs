//! `drill` (timer).

use super::not_implemented::not_implemented;
use super::{HandlerError, Outcome};

pub(crate) fn handle() -> Result<Outcome, HandlerError> {
    Err(not_implemented("drill", "restore drills arrive after restores (issue 4)"))
}

//! The answer of a function whose body comes in a later issue.

use super::HandlerError;

/// `function` is not implemented yet; `planned` says where it comes from.
pub(crate) fn not_implemented(function: &'static str, planned: &'static str) -> HandlerError {
    HandlerError::NotImplemented { function, planned }
}

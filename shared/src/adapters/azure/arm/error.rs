//! What an ARM call can fail with. Every error names the operation (`reading snapshot`) and
//! the resource id, so that a user reading it knows what Lifeboat was doing to what.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// ARM's own account of a refusal: the HTTP status and the `error.code` / `error.message` of
/// its error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmFault {
    /// HTTP status.
    pub status: u16,
    /// ARM's error code (`AuthorizationFailed`, `ResourceNotFound`, …), or `(no code)`.
    pub code: String,
    /// ARM's message (first line, control characters removed).
    pub message: String,
}

impl ArmFault {
    /// The fault in an answer with `status` and `body`: `{"error":{"code","message"}}`, or the
    /// older top-level `{"code","message"}`.
    pub fn from_answer(status: u16, body: &[u8]) -> Self {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let error = json.as_ref().map(|j| j.get("error").unwrap_or(j));
        let (code, message) = error.map_or((None, None), fault_fields);
        let message = message.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        Self { status, code: code.unwrap_or_else(|| "(no code)".to_owned()), message: clean(&message) }
    }
}

/// `code` and `message` of an ARM error object.
pub(super) fn fault_fields(error: &Value) -> (Option<String>, Option<String>) {
    let field = |name| error.get(name).and_then(Value::as_str).map(str::to_owned);
    (field("code"), field("message"))
}

/// The first line of `text`, printable and short.
fn clean(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.chars().filter(|c| !c.is_control()).take(400).collect::<String>().trim().to_owned()
}

impl fmt::Display for ArmFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ARM answered {} {}: {}", self.status, self.code, self.message)
    }
}

/// Why an ARM call failed.
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// The resource does not exist (404).
    #[error("{operation} {resource}: not found")]
    NotFound {
        /// What Lifeboat was doing (`reading snapshot`).
        operation: &'static str,
        /// The ARM resource id.
        resource: String,
    },
    /// ARM kept throttling (429, or 503 with `Retry-After`) past the retries allowed, or asked
    /// for a longer wait than a call may spend.
    #[error("{operation} {resource}: throttled; retry after {retry_after:?}")]
    Throttled {
        /// What Lifeboat was doing.
        operation: &'static str,
        /// The ARM resource id.
        resource: String,
        /// How long ARM asked to wait.
        retry_after: Duration,
    },
    /// The identity may not do this (401, 403).
    #[error("{operation} {resource}: access denied: {fault}")]
    Denied {
        /// What Lifeboat was doing.
        operation: &'static str,
        /// The ARM resource id.
        resource: String,
        /// ARM's answer.
        fault: ArmFault,
    },
    /// The resource is in a state that conflicts with the request (409).
    #[error("{operation} {resource}: conflict: {fault}")]
    Conflict {
        /// What Lifeboat was doing.
        operation: &'static str,
        /// The ARM resource id.
        resource: String,
        /// ARM's answer.
        fault: ArmFault,
    },
    /// ARM refused the request as made (other 4xx: bad request, quota, unsupported region).
    #[error("{operation} {resource}: refused: {fault}")]
    Rejected {
        /// What Lifeboat was doing.
        operation: &'static str,
        /// The ARM resource id.
        resource: String,
        /// ARM's answer.
        fault: ArmFault,
    },
    /// A long-running operation ended `Failed` or `Canceled`.
    #[error("{operation} {resource}: the operation ended {status}: {code}: {message}")]
    OperationFailed {
        /// What Lifeboat was doing.
        operation: &'static str,
        /// The ARM resource id.
        resource: String,
        /// The terminal status (`Failed`, `Canceled`).
        status: String,
        /// ARM's error code.
        code: String,
        /// ARM's message.
        message: String,
    },
    /// ARM could not be reached, failed (5xx) past the retries, or took too long.
    #[error("{operation} {resource}: ARM unavailable: {reason}")]
    Unavailable {
        /// What Lifeboat was doing.
        operation: &'static str,
        /// The ARM resource id.
        resource: String,
        /// What went wrong (connection error, status, timeout).
        reason: String,
    },
}

impl ArmError {
    /// The error for a refused answer (`fault`), by status: 404 not found, 401/403 denied,
    /// 409 conflict, other 4xx rejected, the rest unavailable.
    pub(super) fn from_fault(operation: &'static str, resource: &str, fault: ArmFault) -> Self {
        let resource = resource.to_owned();
        match fault.status {
            404 => Self::NotFound { operation, resource },
            401 | 403 => Self::Denied { operation, resource, fault },
            409 => Self::Conflict { operation, resource, fault },
            400..=499 if fault.status != 408 && fault.status != 429 => Self::Rejected { operation, resource, fault },
            _ => Self::Unavailable { operation, resource, reason: fault.to_string() },
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Unavailable { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/snapshots/a";

    #[test]
    fn an_arm_error_body_names_code_message_operation_and_resource() {
        let body = br#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' does not have authorization\nsecond line"}}"#;
        let err = ArmError::from_fault("creating snapshot copy", ID, ArmFault::from_answer(403, body));
        assert!(matches!(err, ArmError::Denied { .. }));
        assert_eq!(
            err.to_string(),
            format!(
                "creating snapshot copy {ID}: access denied: ARM answered 403 AuthorizationFailed: The client 'x' does not have authorization"
            )
        );
        assert!(!err.is_transient());
    }

    #[test]
    fn statuses_map_to_kinds() {
        let kind = |status: u16| {
            let fault = ArmFault::from_answer(status, br#"{"code":"Top","message":"top-level shape"}"#);
            assert_eq!(fault.code, "Top");
            match ArmError::from_fault("reading snapshot", ID, fault) {
                ArmError::NotFound { .. } => "not found",
                ArmError::Denied { .. } => "denied",
                ArmError::Conflict { .. } => "conflict",
                ArmError::Rejected { .. } => "rejected",
                ArmError::Unavailable { .. } => "unavailable",
                other => panic!("unexpected {other}"),
            }
        };
        assert_eq!(
            [400, 401, 403, 404, 409, 429, 500, 503].map(kind),
            ["rejected", "denied", "denied", "not found", "conflict", "unavailable", "unavailable", "unavailable"]
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_kept_as_the_message() {
        let fault = ArmFault::from_answer(502, b"<html>Bad Gateway</html>");
        assert_eq!(fault.code, "(no code)");
        assert_eq!(fault.message, "<html>Bad Gateway</html>");
    }
}

//! ARM's long-running operations, as a small state machine: where to poll, and what each poll
//! answer means.
//!
//! ARM documents two ways a 201/202 tells the client to wait
//! (<https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations>):
//! - `Azure-AsyncOperation: <url>`: GET it until its body's `status` is terminal
//!   (`Succeeded`, `Failed`, `Canceled`; anything else, e.g. `InProgress`, means wait), a
//!   failure carrying `error.code` / `error.message`;
//! - `Location: <url>`: GET it; 202 means wait, any other 2xx means done (a 4xx/5xx is the
//!   operation's failure, mapped like any ARM error).
//!
//! Both may carry `Retry-After` (seconds) to say how long to wait before the next poll.

use std::time::Duration;

use serde_json::Value;

use super::error::fault_fields;

/// Where an operation's outcome is to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Monitor {
    /// An `Azure-AsyncOperation` status resource.
    AsyncOperation(String),
    /// A `Location` URL answering 202 until done.
    Location(String),
}

impl Monitor {
    /// The monitor an initial answer names, from its `Azure-AsyncOperation` and `Location`
    /// headers (the first wins, as ARM's guidelines say); `None` when the answer is final.
    pub(super) fn from_headers(async_operation: Option<String>, location: Option<String>) -> Option<Self> {
        async_operation.map(Self::AsyncOperation).or_else(|| location.map(Self::Location))
    }

    /// The URL to poll.
    pub(super) fn url(&self) -> &str {
        match self {
            Self::AsyncOperation(url) | Self::Location(url) => url,
        }
    }

    /// What a poll answer (`status`, `body`; an error status never reaches here) says.
    pub(super) fn read(&self, status: u16, body: &[u8]) -> Poll {
        match self {
            Self::Location(_) if status == 202 => Poll::Running,
            Self::Location(_) => Poll::Succeeded,
            Self::AsyncOperation(_) => {
                let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                match json.get("status").and_then(Value::as_str) {
                    Some(s) if s.eq_ignore_ascii_case("Succeeded") => Poll::Succeeded,
                    Some(s) if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") => {
                        let (code, message) = json.get("error").map_or((None, None), fault_fields);
                        Poll::Failed {
                            status: s.to_owned(),
                            code: code.unwrap_or_else(|| "(no code)".to_owned()),
                            message: message.unwrap_or_default(),
                        }
                    }
                    _ => Poll::Running,
                }
            }
        }
    }
}

/// What one poll said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Poll {
    /// Not finished: poll again after the wait.
    Running,
    /// Finished well.
    Succeeded,
    /// Finished badly.
    Failed {
        /// `Failed` or `Canceled`.
        status: String,
        /// ARM's error code.
        code: String,
        /// ARM's message.
        message: String,
    },
}

/// How long to wait before the next request: the server's `Retry-After` (delta seconds), or
/// `fallback`, never more than `cap`.
pub(super) fn wait_before_next(retry_after: Option<&str>, fallback: Duration, cap: Duration) -> Duration {
    parse_retry_after(retry_after).unwrap_or(fallback).min(cap)
}

/// `Retry-After` as delta seconds (ARM sends seconds; an HTTP date is read as absent).
pub(super) fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value.and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_async_operation_wins_over_location() {
        let both = Monitor::from_headers(Some("https://a/op".into()), Some("https://a/loc".into()));
        assert_eq!(both, Some(Monitor::AsyncOperation("https://a/op".into())));
        assert_eq!(
            Monitor::from_headers(None, Some("https://a/loc".into())),
            Some(Monitor::Location("https://a/loc".into()))
        );
        assert_eq!(Monitor::from_headers(None, None), None);
    }

    #[test]
    fn async_operation_bodies_step_the_state_machine() {
        let op = Monitor::AsyncOperation("https://a/op".into());
        assert_eq!(op.read(200, br#"{"status":"InProgress"}"#), Poll::Running);
        assert_eq!(op.read(200, br#"{"status":"Accepted"}"#), Poll::Running);
        assert_eq!(op.read(200, br#"{"status":"succeeded"}"#), Poll::Succeeded);
        assert_eq!(
            op.read(200, br#"{"status":"Failed","error":{"code":"DiskNotFound","message":"gone"}}"#),
            Poll::Failed { status: "Failed".into(), code: "DiskNotFound".into(), message: "gone".into() }
        );
        assert!(
            matches!(op.read(200, br#"{"status":"Canceled"}"#), Poll::Failed { status, .. } if status == "Canceled")
        );
        assert_eq!(op.read(200, b"not json"), Poll::Running);
    }

    #[test]
    fn location_polls_end_on_anything_but_202() {
        let loc = Monitor::Location("https://a/loc".into());
        assert_eq!(loc.read(202, b""), Poll::Running);
        assert_eq!(loc.read(200, b"{}"), Poll::Succeeded);
        assert_eq!(loc.read(204, b""), Poll::Succeeded);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let (fallback, cap) = (Duration::from_secs(2), Duration::from_secs(30));
        assert_eq!(wait_before_next(Some("7"), fallback, cap), Duration::from_secs(7));
        assert_eq!(wait_before_next(Some("600"), fallback, cap), cap);
        assert_eq!(wait_before_next(None, fallback, cap), fallback);
        assert_eq!(wait_before_next(Some("Wed, 21 Oct 2015 07:28:00 GMT"), fallback, cap), fallback);
    }
}

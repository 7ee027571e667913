//! The words of a notification, shared by the chat sinks.

use crate::domain::messages::{Alert, AlertState, Severity};

/// `[CRITICAL] Lifeboat: prod-weu-1` / `[RESOLVED] Lifeboat: prod-weu-1`.
pub(crate) fn headline(alert: &Alert) -> String {
    let tag = match (alert.state, alert.severity) {
        (AlertState::Resolved, _) => "RESOLVED",
        (_, Severity::Critical) => "CRITICAL",
        (_, Severity::Warning) => "WARNING",
    };
    format!("[{tag}] Lifeboat: {}", alert.cluster)
}

/// The summary split into its findings (a grouped summary joins them with `; `).
pub(crate) fn lines(alert: &Alert) -> Vec<String> {
    let summary = alert.summary.split_once(": ").map_or(alert.summary.as_str(), |(_, rest)| rest);
    summary.split("; ").map(str::to_owned).collect()
}

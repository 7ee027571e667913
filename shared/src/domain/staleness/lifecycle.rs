//! The lifecycle of one cluster's alert: fire once, repeat at an interval (or when it gets
//! worse) while firing, resolve once.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::conditions::Finding;
use crate::domain::messages::{Alert, AlertState, Severity};
use crate::domain::names::ClusterName;

/// What the state store remembers of one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertStatus {
    /// Firing or resolved.
    pub state: AlertState,
    /// Severity when last notified.
    pub severity: Severity,
    /// Notifications sent so far (the last one's number).
    pub notification: u32,
    /// When it last started firing.
    pub fired_at: DateTime<Utc>,
    /// When it was last notified.
    pub notified_at: DateTime<Utc>,
    /// The summary last notified.
    pub summary: String,
}

/// What to do now: store `status`, then send `alert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The alert's new status.
    pub status: AlertStatus,
    /// The notification to send.
    pub alert: Alert,
}

/// The id of `cluster`'s health alert.
pub fn cluster_alert_id(cluster: &ClusterName) -> String {
    format!("health.{cluster}")
}

/// The worse of two severities.
pub fn worst(a: Severity, b: Severity) -> Severity {
    if a == Severity::Critical || b == Severity::Critical { Severity::Critical } else { Severity::Warning }
}

fn grouped_summary(cluster: &ClusterName, findings: &[Finding]) -> String {
    let lines: Vec<&str> = findings.iter().map(|f| f.summary.as_str()).collect();
    format!("{} problem(s) on {cluster}: {}", findings.len(), lines.join("; "))
}

/// Decides what `cluster`'s alert does given its stored status and the current findings:
/// `None` when nothing is to be sent (and nothing stored).
///
/// - no findings: a firing alert resolves (once); otherwise nothing;
/// - findings, not firing: it fires;
/// - findings, firing: it repeats once `renotify_every` has passed since the last
///   notification, or at once when the severity rose from warning to critical.
pub fn decide(
    cluster: &ClusterName,
    previous: Option<&AlertStatus>,
    findings: &[Finding],
    now: DateTime<Utc>,
    renotify_every: Duration,
) -> Option<Decision> {
    let firing = previous.filter(|p| p.state == AlertState::Firing);
    let next_number = previous.map_or(1, |p| p.notification.saturating_add(1));
    let status = if findings.is_empty() {
        let p = firing?;
        AlertStatus {
            state: AlertState::Resolved,
            notification: next_number,
            notified_at: now,
            summary: format!("resolved on {cluster}: {}", p.summary),
            ..p.clone()
        }
    } else {
        let severity = findings.iter().map(|f| f.severity).fold(Severity::Warning, worst);
        let summary = grouped_summary(cluster, findings);
        let fired_at = match firing {
            None => now,
            Some(p) => {
                let due = (now - p.notified_at).to_std().unwrap_or_default() >= renotify_every;
                let rose = p.severity == Severity::Warning && severity == Severity::Critical;
                if !due && !rose {
                    return None;
                }
                p.fired_at
            }
        };
        AlertStatus {
            state: AlertState::Firing,
            severity,
            notification: next_number,
            fired_at,
            notified_at: now,
            summary,
        }
    };
    let alert = Alert {
        schema_version: 1,
        alert_id: cluster_alert_id(cluster),
        cluster: cluster.clone(),
        state: status.state,
        severity: status.severity,
        summary: status.summary.clone(),
        notification: status.notification,
        at: now,
    };
    Some(Decision { status, alert })
}

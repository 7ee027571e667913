//! An alert sink that writes alerts to the log: the embedded default.

use async_trait::async_trait;

use crate::domain::messages::{Alert, AlertState};
use crate::ports::{AlertSink, AlertSinkError};

/// Logs every notification at warn (firing) or info (resolved) level.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogAlertSink;

#[async_trait]
impl AlertSink for LogAlertSink {
    async fn notify(&self, alert: &Alert) -> Result<(), AlertSinkError> {
        match alert.state {
            AlertState::Firing => tracing::warn!(
                alert.id = %alert.alert_id, cluster = %alert.cluster, severity = ?alert.severity,
                "ALERT firing: {}", alert.summary
            ),
            AlertState::Resolved => {
                tracing::info!(alert.id = %alert.alert_id, cluster = %alert.cluster, "ALERT resolved: {}", alert.summary)
            }
        }
        Ok(())
    }
}

//! Alert sink port: where fired and resolved alerts go (webhooks, a topic, the log).
//!
//! Contract: `notify` delivers one alert notification or fails; it does not deduplicate (the
//! alert lifecycle in the state store decides when to notify). A failure says whether a retry
//! may succeed ([`AlertSinkError::is_transient`]).

use async_trait::async_trait;

use crate::domain::messages::Alert;

/// Errors of an alert sink.
#[derive(Debug, thiserror::Error)]
pub enum AlertSinkError {
    /// The sink could not be reached or answered with a retryable failure.
    #[error("alert sink {sink} is unavailable")]
    Unavailable {
        /// The sink's name.
        sink: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The sink refused the notification; retrying will not help.
    #[error("alert sink {sink} rejected the notification: {reason}")]
    Rejected {
        /// The sink's name.
        sink: String,
        /// What the sink said.
        reason: String,
    },
}

impl AlertSinkError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// Delivers alert notifications.
#[async_trait]
pub trait AlertSink: Send + Sync {
    /// Delivers one notification of `alert` (firing, re-notification or resolution).
    ///
    /// # Errors
    /// [`AlertSinkError`] when the sink is unreachable or refuses it.
    async fn notify(&self, alert: &Alert) -> Result<(), AlertSinkError>;
}

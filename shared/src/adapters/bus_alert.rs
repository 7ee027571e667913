//! An alert sink that publishes to the `alerts` topic through the bus, with the alert's
//! deterministic message id (a resend is dropped by duplicate detection).

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::messages::{Alert, Message};
use crate::ports::{AlertSink, AlertSinkError, Bus, OutgoingMessage};

/// Sends each notification as an [`Alert`] message on `alerts`.
#[derive(Clone)]
pub struct BusAlertSink {
    bus: Arc<dyn Bus>,
}

impl BusAlertSink {
    /// A sink on `bus`.
    pub fn new(bus: Arc<dyn Bus>) -> Self {
        Self { bus }
    }
}

#[async_trait]
impl AlertSink for BusAlertSink {
    async fn notify(&self, alert: &Alert) -> Result<(), AlertSinkError> {
        let body = serde_json::to_vec(alert).unwrap_or_default();
        let mut message = OutgoingMessage::json(Alert::QUEUE.name(), alert.message_id(), body);
        message.subject = Some("Alert".to_owned());
        message.correlation_id = Some(alert.alert_id.clone());
        self.bus.send(message).await.map_err(|e| {
            if e.is_transient() {
                AlertSinkError::Unavailable { sink: "alerts-topic".into(), source: Box::new(e) }
            } else {
                AlertSinkError::Rejected { sink: "alerts-topic".into(), reason: e.to_string() }
            }
        })
    }
}

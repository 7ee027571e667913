//! Microsoft Teams: an Adaptive Card posted to a Workflows ("When a Teams webhook request is
//! received") URL, in the message-with-attachments shape that template expects.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::http::{BadUrl, Poster};
use super::text::{headline, lines};
use crate::domain::messages::{Alert, AlertState, Severity};
use crate::ports::{AlertSink, AlertSinkError};

/// Posts each notification as an Adaptive Card to a Teams Workflows webhook.
#[derive(Debug, Clone)]
pub struct TeamsAlertSink {
    poster: Poster,
}

impl TeamsAlertSink {
    /// A sink named `name` posting to `url` (the Workflows URL: a secret).
    ///
    /// # Errors
    /// [`BadUrl`] when `url` is not an http(s) URL.
    pub fn new(name: &str, url: &str) -> Result<Self, BadUrl> {
        Ok(Self { poster: Poster::new(name, url)? })
    }
}

/// The message body for `alert`.
pub fn teams_payload(alert: &Alert) -> Value {
    let color = match (alert.state, alert.severity) {
        (AlertState::Resolved, _) => "Good",
        (_, Severity::Critical) => "Attention",
        (_, Severity::Warning) => "Warning",
    };
    let mut body = vec![json!({
        "type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
        "color": color, "text": headline(alert),
    })];
    body.extend(lines(alert).into_iter().map(|l| json!({"type": "TextBlock", "wrap": true, "text": format!("- {l}")})));
    body.push(json!({"type": "FactSet", "facts": [
        {"title": "Cluster", "value": alert.cluster.as_str()},
        {"title": "Alert", "value": alert.alert_id},
        {"title": "Notification", "value": alert.notification.to_string()},
        {"title": "At", "value": alert.at.to_rfc3339()},
    ]}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            },
        }],
    })
}

#[async_trait]
impl AlertSink for TeamsAlertSink {
    async fn notify(&self, alert: &Alert) -> Result<(), AlertSinkError> {
        self.poster.post(teams_payload(alert).to_string().into_bytes(), &[]).await
    }
}

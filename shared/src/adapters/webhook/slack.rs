//! Slack: an incoming webhook, with a `text` fallback and Block Kit blocks.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::http::{BadUrl, Poster};
use super::text::{headline, lines};
use crate::domain::messages::Alert;
use crate::ports::{AlertSink, AlertSinkError};

/// Posts each notification to a Slack incoming webhook.
#[derive(Debug, Clone)]
pub struct SlackAlertSink {
    poster: Poster,
}

impl SlackAlertSink {
    /// A sink named `name` posting to `url` (the incoming webhook URL: a secret).
    ///
    /// # Errors
    /// [`BadUrl`] when `url` is not an http(s) URL.
    pub fn new(name: &str, url: &str) -> Result<Self, BadUrl> {
        Ok(Self { poster: Poster::new(name, url)? })
    }
}

/// The message body for `alert`.
pub fn slack_payload(alert: &Alert) -> Value {
    let details: Vec<String> = lines(alert).into_iter().map(|l| format!("• {l}")).collect();
    let context = format!("`{}` · notification {} · {}", alert.alert_id, alert.notification, alert.at.to_rfc3339());
    json!({
        "text": headline(alert),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline(alert)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": details.join("\n")}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    })
}

#[async_trait]
impl AlertSink for SlackAlertSink {
    async fn notify(&self, alert: &Alert) -> Result<(), AlertSinkError> {
        self.poster.post(slack_payload(alert).to_string().into_bytes(), &[]).await
    }
}

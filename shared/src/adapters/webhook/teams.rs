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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::names::ClusterName;

    #[test]
    fn the_card_lists_each_finding_and_is_wrapped_for_workflows() {
        let alert = Alert {
            schema_version: 1,
            alert_id: "health.prod".into(),
            cluster: ClusterName::new("prod").unwrap(),
            state: AlertState::Firing,
            severity: Severity::Critical,
            summary: "2 problem(s) on prod: a: old; b: older".into(),
            notification: 3,
            at: chrono::Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        };
        let p = teams_payload(&alert);
        assert_eq!(p["type"], "message");
        let card = &p["attachments"][0];
        assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        let body = card["content"]["body"].as_array().unwrap();
        assert_eq!(body[0]["text"], "[CRITICAL] Lifeboat: prod");
        assert_eq!(body[0]["color"], "Attention");
        assert_eq!(body[1]["text"], "- a: old");
        assert_eq!(body[2]["text"], "- b: older");
        let slack = crate::adapters::webhook::slack_payload(&alert);
        assert_eq!(slack["text"], "[CRITICAL] Lifeboat: prod");
        assert_eq!(slack["blocks"][1]["text"]["text"], "• a: old\n• b: older");
    }

    #[test]
    fn a_non_http_url_is_refused_without_echoing_it() {
        let err = TeamsAlertSink::new("oncall", "ftp://secret-token@host/x").unwrap_err();
        assert_eq!(err.to_string(), "the webhook URL of sink oncall is not a valid http(s) URL");
    }
}

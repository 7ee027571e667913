//! A generic JSON webhook: the [`Alert`] as JSON, signed with HMAC-SHA256 (see
//! [`super::signature`] for the headers and how to verify them).

use async_trait::async_trait;

use super::http::{BadUrl, Poster};
use super::secret::Secret;
use super::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::domain::messages::Alert;
use crate::ports::{AlertSink, AlertSinkError};

/// Posts each notification as signed JSON.
#[derive(Debug, Clone)]
pub struct SignedWebhookAlertSink {
    poster: Poster,
    key: Secret,
}

impl SignedWebhookAlertSink {
    /// A sink named `name` posting to `url`, signing with `key`.
    ///
    /// # Errors
    /// [`BadUrl`] when `url` is not an http(s) URL.
    pub fn new(name: &str, url: &str, key: Secret) -> Result<Self, BadUrl> {
        Ok(Self { poster: Poster::new(name, url)?, key })
    }
}

#[async_trait]
impl AlertSink for SignedWebhookAlertSink {
    async fn notify(&self, alert: &Alert) -> Result<(), AlertSinkError> {
        let body = serde_json::to_vec(alert).unwrap_or_default();
        // Signed at send time (not the alert's time) so that a retry is not refused as a replay.
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(self.key.expose().as_bytes(), timestamp, &body);
        self.poster.post(body, &[(TIMESTAMP_HEADER, timestamp.to_string()), (SIGNATURE_HEADER, signature)]).await
    }
}

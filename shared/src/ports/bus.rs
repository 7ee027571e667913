//! Bus port: sending messages to queues and topics (Service Bus, SQS, local SQLite queues).
//!
//! Contract:
//! - `send` is at-least-once: it returns `Ok` only once the message is durably accepted.
//! - Duplicate detection: within the entity's duplicate-detection window, a second message with
//!   the same `message_id` to the same queue is accepted (`Ok`) and dropped. Handlers rely on
//!   this to resend a chained message safely after a crash.
//! - `scheduled_enqueue_time` in the future makes the message invisible to receivers until
//!   then; in the past or absent, it is visible at once.
//! - Errors say whether a retry may succeed ([`BusError::is_transient`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A message to send, with everything Service Bus lets a sender set that Lifeboat uses.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// The queue or topic, e.g. `backup-requests`.
    pub queue: String,
    /// Deterministic id: duplicate detection drops a resend with the same id.
    pub message_id: String,
    /// The body, usually JSON.
    pub body: Vec<u8>,
    /// MIME type of the body.
    pub content_type: String,
    /// Deliver no earlier than this (polls, backoff).
    pub scheduled_enqueue_time: Option<DateTime<Utc>>,
    /// Ties the messages of one flow together (the backup or restore id).
    pub correlation_id: Option<String>,
    /// Short label, e.g. the message type.
    pub subject: Option<String>,
    /// Application properties (string values only, so every bus can carry them).
    pub properties: BTreeMap<String, String>,
}

impl OutgoingMessage {
    /// A JSON message for `queue` with the given id and body, visible at once.
    pub fn json(queue: impl Into<String>, message_id: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            queue: queue.into(),
            message_id: message_id.into(),
            body,
            content_type: "application/json".to_owned(),
            scheduled_enqueue_time: None,
            correlation_id: None,
            subject: None,
            properties: BTreeMap::new(),
        }
    }

    /// The same message, delivered no earlier than `at`.
    pub fn scheduled_at(mut self, at: DateTime<Utc>) -> Self {
        self.scheduled_enqueue_time = Some(at);
        self
    }
}

/// Errors of a bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The message breaks a rule of the bus (id too long, body too large, unknown queue).
    #[error("message {message_id} to {queue} is invalid: {reason}")]
    Invalid {
        /// Target queue.
        queue: String,
        /// The message's id.
        message_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The bus could not be reached or answered with a retryable failure.
    #[error("sending message {message_id} to {queue} failed")]
    Unavailable {
        /// Target queue.
        queue: String,
        /// The message's id.
        message_id: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BusError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// Sends messages.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Sends one message (see the module contract for duplicate detection and scheduling).
    ///
    /// # Errors
    /// [`BusError::Invalid`] for a message the bus will never take, [`BusError::Unavailable`]
    /// when a retry may succeed.
    async fn send(&self, message: OutgoingMessage) -> Result<(), BusError>;
}

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
//! - Every adapter refuses, before sending, what Service Bus would refuse ([`validate`]): an
//!   empty or over-long id, a malformed entity path, a body over 256 KiB.

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

/// Longest message id Service Bus accepts.
pub const MAX_MESSAGE_ID_CHARS: usize = 128;
/// Longest entity path Service Bus accepts.
pub const MAX_QUEUE_NAME_CHARS: usize = 260;
/// Largest body accepted (the Service Bus standard tier's message size).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Checks `message` against the rules Service Bus applies before accepting one.
///
/// # Errors
/// [`BusError::Invalid`] naming the broken rule.
pub fn validate(message: &OutgoingMessage) -> Result<(), BusError> {
    let invalid = |reason: String| BusError::Invalid {
        queue: message.queue.clone(),
        message_id: message.message_id.clone(),
        reason,
    };
    let id_chars = message.message_id.chars().count();
    if id_chars == 0 || id_chars > MAX_MESSAGE_ID_CHARS {
        return Err(invalid(format!("message id must be 1 to {MAX_MESSAGE_ID_CHARS} characters")));
    }
    let name = &message.queue;
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '/' | '_');
    if name.is_empty() || name.len() > MAX_QUEUE_NAME_CHARS || !name.chars().all(allowed) {
        return Err(invalid(format!("queue name must be 1 to {MAX_QUEUE_NAME_CHARS} of a-z, 0-9, '-', '.', '_', '/'")));
    }
    if message.body.len() > MAX_BODY_BYTES {
        return Err(invalid(format!("body of {} bytes exceeds {MAX_BODY_BYTES}", message.body.len())));
    }
    Ok(())
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
    /// The bus refused the sender's credentials (Service Bus 401): not transient, the identity or
    /// its configuration must be fixed. Never carries the token.
    #[error("not authorised to send message {message_id} to {queue}: {reason}")]
    Unauthorized {
        /// Target queue.
        queue: String,
        /// The message's id.
        message_id: String,
        /// What the bus said (without credentials).
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
    /// [`BusError::Invalid`] for a message the bus will never take, [`BusError::Unauthorized`]
    /// when the bus refuses the sender, [`BusError::Unavailable`] when a retry may succeed.
    async fn send(&self, message: OutgoingMessage) -> Result<(), BusError>;
}

//! Queue receiver port: peek-lock receiving with Service Bus semantics.
//!
//! In Azure the Functions host receives for us; this port serves the local runtime (and any
//! host that pumps queues itself). Contract, checked by [`crate::testing::queue`]:
//! - `receive` hands out visible messages in enqueue order, each locked for the queue's lock
//!   duration and with its delivery count incremented; a locked message is not handed out again
//!   until its lock expires.
//! - A message whose delivery count would exceed the queue's max delivery count is moved to the
//!   dead-letter queue with reason `MaxDeliveryCountExceeded` instead of being handed out.
//! - `complete` removes the message; `abandon` releases the lock (optionally hiding the message
//!   for a delay, for backoff); `dead_letter` moves it to the dead-letter queue with a reason;
//!   `renew_lock` extends the lock. Each of these on an expired or unknown lock is
//!   [`QueueError::LockLost`]: the message may already be with another receiver.
//! - Messages with a scheduled enqueue time are invisible until then.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A message handed out under a lock.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    /// The queue it came from.
    pub queue: String,
    /// The sender's message id.
    pub message_id: String,
    /// Position in the queue, increasing with enqueue order.
    pub sequence_number: i64,
    /// The body.
    pub body: Vec<u8>,
    /// MIME type of the body.
    pub content_type: String,
    /// Correlation id set by the sender.
    pub correlation_id: Option<String>,
    /// Label set by the sender.
    pub subject: Option<String>,
    /// Application properties.
    pub properties: BTreeMap<String, String>,
    /// When the message was accepted.
    pub enqueued_time: DateTime<Utc>,
    /// How many times it has been handed out, this time included.
    pub delivery_count: u32,
    /// Proves ownership of the lock to `complete`, `abandon`, `dead_letter`.
    pub lock_token: String,
    /// When the lock expires unless renewed.
    pub locked_until: DateTime<Utc>,
}

/// A dead-lettered message, with the reason it was moved.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetteredMessage {
    /// The queue it was dead-lettered from.
    pub queue: String,
    /// The sender's message id.
    pub message_id: String,
    /// The body, unchanged.
    pub body: Vec<u8>,
    /// Machine-readable reason, e.g. `MaxDeliveryCountExceeded` or `MalformedMessage`.
    pub reason: String,
    /// Human-readable detail.
    pub description: String,
    /// How many times it had been delivered.
    pub delivery_count: u32,
    /// When it was dead-lettered.
    pub dead_lettered_at: DateTime<Utc>,
}

/// Counts for one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    /// Visible now and not locked.
    pub active: u64,
    /// Scheduled for later (or hidden by an abandon delay).
    pub scheduled: u64,
    /// Locked by a receiver.
    pub locked: u64,
    /// In the dead-letter queue.
    pub dead_lettered: u64,
}

/// Errors of a queue receiver.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The lock expired or never existed; the message may be with another receiver.
    #[error("lock {lock_token} on queue {queue} is lost")]
    LockLost {
        /// The queue.
        queue: String,
        /// The lock token presented.
        lock_token: String,
    },
    /// The store behind the queue failed.
    #[error("{operation} on queue {queue} failed")]
    Unavailable {
        /// What was attempted.
        operation: &'static str,
        /// The queue.
        queue: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl QueueError {
    /// Whether the lock was lost (the message must not be settled by this receiver).
    pub fn is_lock_lost(&self) -> bool {
        matches!(self, Self::LockLost { .. })
    }
}

/// Receives and settles messages with peek-lock semantics.
#[async_trait]
pub trait QueueReceiver: Send + Sync {
    /// Up to `max` visible messages, locked for this receiver.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] when the store fails.
    async fn receive(&self, queue: &str, max: usize) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Removes a message handled successfully.
    ///
    /// # Errors
    /// [`QueueError::LockLost`] when the lock expired.
    async fn complete(&self, message: &ReceivedMessage) -> Result<(), QueueError>;

    /// Releases the lock; the message becomes visible again after `delay` (at once if `None`).
    ///
    /// # Errors
    /// [`QueueError::LockLost`] when the lock expired.
    async fn abandon(&self, message: &ReceivedMessage, delay: Option<Duration>) -> Result<(), QueueError>;

    /// Moves the message to the dead-letter queue with a reason.
    ///
    /// # Errors
    /// [`QueueError::LockLost`] when the lock expired.
    async fn dead_letter(&self, message: &ReceivedMessage, reason: &str, description: &str) -> Result<(), QueueError>;

    /// Extends the lock by the queue's lock duration; returns the new expiry.
    ///
    /// # Errors
    /// [`QueueError::LockLost`] when the lock already expired.
    async fn renew_lock(&self, message: &ReceivedMessage) -> Result<DateTime<Utc>, QueueError>;

    /// The dead-lettered messages of `queue`, oldest first.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] when the store fails.
    async fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetteredMessage>, QueueError>;

    /// Counts for `queue`.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] when the store fails.
    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError>;
}

//! Durable queues in SQLite with Service Bus semantics: the embedded default behind both the
//! [`Bus`] port (sending) and the [`QueueReceiver`] port (the local runtime's pump).
//!
//! Semantics (the contract of [`crate::ports::queue`] and [`crate::ports::bus`]): peek-lock
//! with lock expiry and redelivery, delivery counts, dead-lettering past the max delivery
//! count, scheduled delivery, duplicate detection by message id within a window. Time comes
//! from the injected [`Clock`], so tests move it instead of sleeping.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::connection::Db;
use crate::ports::bus::{Bus, BusError, OutgoingMessage};
use crate::ports::clock::Clock;
use crate::ports::queue::{DeadLetteredMessage, QueueError, QueueReceiver, QueueStats, ReceivedMessage};

/// Settings shared by every queue of one store (Service Bus's per-entity settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a received message stays locked (Service Bus default: 1 minute).
    pub lock_duration: Duration,
    /// Deliveries before a message is dead-lettered (Service Bus default: 10).
    pub max_delivery_count: u32,
    /// How long a message id is remembered for duplicate detection (Service Bus default: 10 minutes).
    pub duplicate_detection_window: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            lock_duration: Duration::from_secs(60),
            max_delivery_count: 10,
            duplicate_detection_window: Duration::from_secs(600),
        }
    }
}

/// Every queue of the embedded runtime, in one SQLite file.
#[derive(Clone)]
pub struct SqliteQueue {
    db: Db,
    clock: Arc<dyn Clock>,
    settings: QueueSettings,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue").field("settings", &self.settings).finish_non_exhaustive()
    }
}

const SCHEMA: &str = "";

impl SqliteQueue {
    /// Opens (creating) the queues in the SQLite file at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or initialised.
    pub fn open(path: &Path, clock: Arc<dyn Clock>, settings: QueueSettings) -> Result<Self, QueueError> {
        let db = Db::open(path, SCHEMA).map_err(|e| QueueError::Unavailable {
            operation: "open",
            queue: path.display().to_string(),
            source: Box::new(e),
        })?;
        Ok(Self { db, clock, settings })
    }

    /// Queues in memory, for tests.
    ///
    /// # Errors
    /// When SQLite cannot initialise.
    pub fn in_memory(clock: Arc<dyn Clock>, settings: QueueSettings) -> Result<Self, QueueError> {
        let db = Db::memory(SCHEMA).map_err(|e| QueueError::Unavailable {
            operation: "open",
            queue: ":memory:".into(),
            source: Box::new(e),
        })?;
        Ok(Self { db, clock, settings })
    }

    /// The settings in force.
    pub fn settings(&self) -> QueueSettings {
        self.settings
    }
}

#[async_trait]
impl Bus for SqliteQueue {
    async fn send(&self, message: OutgoingMessage) -> Result<(), BusError> {
        let _ = (&self.db, self.clock.now(), message);
        unimplemented!("SqliteQueue::send")
    }
}

#[async_trait]
impl QueueReceiver for SqliteQueue {
    async fn receive(&self, queue: &str, max: usize) -> Result<Vec<ReceivedMessage>, QueueError> {
        let _ = (queue, max);
        unimplemented!("receive")
    }
    async fn complete(&self, message: &ReceivedMessage) -> Result<(), QueueError> {
        let _ = message;
        unimplemented!("complete")
    }
    async fn abandon(&self, message: &ReceivedMessage, delay: Option<Duration>) -> Result<(), QueueError> {
        let _ = (message, delay);
        unimplemented!("abandon")
    }
    async fn dead_letter(&self, message: &ReceivedMessage, reason: &str, description: &str) -> Result<(), QueueError> {
        let _ = (message, reason, description);
        unimplemented!("dead_letter")
    }
    async fn renew_lock(&self, message: &ReceivedMessage) -> Result<DateTime<Utc>, QueueError> {
        let _ = message;
        unimplemented!("renew_lock")
    }
    async fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetteredMessage>, QueueError> {
        let _ = queue;
        unimplemented!("dead_letters")
    }
    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let _ = queue;
        unimplemented!("stats")
    }
}

//! Durable queues in SQLite with Service Bus semantics: the embedded default behind both the
//! [`Bus`] port (sending) and the [`QueueReceiver`] port (the local runtime's pump).
//!
//! Semantics (the contract of [`crate::ports::queue`] and [`crate::ports::bus`]): peek-lock
//! with lock expiry and redelivery, delivery counts, dead-lettering past the max delivery
//! count, scheduled delivery, duplicate detection by message id within a window. Time comes
//! from the injected [`Clock`], so tests move it instead of sleeping.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::connection::{Db, TaskFailed};
use crate::ports::bus::{Bus, BusError, OutgoingMessage, validate};
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

/// Messages live in `messages` until completed or dead-lettered; a message is locked while
/// `locked_until` is in the future. `sent_ids` remembers message ids for duplicate detection.
/// Times are microseconds since the Unix epoch, read from the injected clock.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL, message_id TEXT NOT NULL, body BLOB NOT NULL, content_type TEXT NOT NULL,
    correlation_id TEXT, subject TEXT, properties TEXT NOT NULL,
    enqueued_at INTEGER NOT NULL, visible_at INTEGER NOT NULL,
    delivery_count INTEGER NOT NULL DEFAULT 0, lock_token TEXT, locked_until INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL,
    queue TEXT NOT NULL, message_id TEXT NOT NULL, body BLOB NOT NULL, content_type TEXT NOT NULL,
    correlation_id TEXT, subject TEXT, properties TEXT NOT NULL,
    enqueued_at INTEGER NOT NULL, delivery_count INTEGER NOT NULL,
    reason TEXT NOT NULL, description TEXT NOT NULL, dead_lettered_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_queue ON dead_letters (queue, id);
CREATE TABLE IF NOT EXISTS sent_ids (
    queue TEXT NOT NULL, message_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
    PRIMARY KEY (queue, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sent_ids_by_expiry ON sent_ids (expires_at);
";

pub use crate::ports::bus::{MAX_BODY_BYTES, MAX_MESSAGE_ID_CHARS, MAX_QUEUE_NAME_CHARS};
/// The dead-letter reason of a message delivered `max_delivery_count` times.
pub const MAX_DELIVERY_COUNT_EXCEEDED: &str = "MaxDeliveryCountExceeded";

impl SqliteQueue {
    /// Opens (creating) the queues in the SQLite file at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or initialised.
    pub fn open(path: &Path, clock: Arc<dyn Clock>, settings: QueueSettings) -> Result<Self, QueueError> {
        Self::with(Db::open(path, SCHEMA), &path.display().to_string(), clock, settings)
    }

    /// Queues in memory, for tests.
    ///
    /// # Errors
    /// When SQLite cannot initialise.
    pub fn in_memory(clock: Arc<dyn Clock>, settings: QueueSettings) -> Result<Self, QueueError> {
        Self::with(Db::memory(SCHEMA), ":memory:", clock, settings)
    }

    fn with(
        db: rusqlite::Result<Db>,
        name: &str,
        clock: Arc<dyn Clock>,
        settings: QueueSettings,
    ) -> Result<Self, QueueError> {
        let db =
            db.map_err(|e| QueueError::Unavailable { operation: "open", queue: name.to_owned(), source: Box::new(e) })?;
        Ok(Self { db, clock, settings })
    }

    /// The settings in force.
    pub fn settings(&self) -> QueueSettings {
        self.settings
    }

    /// The clock's time, in the microseconds the tables store.
    fn now(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    /// Runs `f` in one immediate transaction on the blocking pool, mapping failures to the port's errors.
    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        queue: &str,
        lock_token: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, QueueError> {
        let result = self
            .db
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let value = f(&tx)?;
                tx.commit()?;
                Ok(value)
            })
            .await;
        result.map_err(|failure| {
            let source: Box<dyn std::error::Error + Send + Sync> = match failure {
                Failure::LockLost => {
                    return QueueError::LockLost { queue: queue.to_owned(), lock_token: lock_token.to_owned() };
                }
                Failure::Sqlite(e) => Box::new(e),
                Failure::Task(e) => Box::new(e),
            };
            QueueError::Unavailable { operation, queue: queue.to_owned(), source }
        })
    }

    /// Runs `f` on the message `message` holds the lock of, failing with `LockLost` when it does not.
    async fn settle<T: Send + 'static>(
        &self,
        operation: &'static str,
        message: &ReceivedMessage,
        f: impl FnOnce(&Transaction<'_>, i64, i64) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, QueueError> {
        let now = self.now();
        let (seq, queue, token) = (message.sequence_number, message.queue.clone(), message.lock_token.clone());
        self.run(operation, &message.queue, &message.lock_token, move |tx| {
            let held = tx
                .query_row(
                    "SELECT 1 FROM messages
                     WHERE seq = ?1 AND queue = ?2 AND lock_token = ?3 AND locked_until > ?4",
                    params![seq, queue, token, now],
                    |_| Ok(()),
                )
                .optional()?;
            if held.is_none() {
                return Err(Failure::LockLost);
            }
            Ok(f(tx, seq, now)?)
        })
        .await
    }
}

/// Why a database call failed, before it is mapped to the port's error.
enum Failure {
    LockLost,
    Sqlite(rusqlite::Error),
    Task(TaskFailed),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sqlite(e)
    }
}

impl From<TaskFailed> for Failure {
    fn from(e: TaskFailed) -> Self {
        Failure::Task(e)
    }
}

/// `now` plus `d`, in microseconds, saturating at the latest instant chrono represents.
fn after(now: i64, d: Duration) -> i64 {
    let latest = DateTime::<Utc>::MAX_UTC.timestamp_micros();
    now.saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)).min(latest)
}

fn time_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let micros: i64 = row.get(idx)?;
    DateTime::from_timestamp_micros(micros).ok_or(rusqlite::Error::IntegralValueOutOfRange(idx, micros))
}

fn count(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(idx)?;
    u64::try_from(n).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, n))
}

fn properties_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<BTreeMap<String, String>> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn invalid(message: &OutgoingMessage, reason: String) -> BusError {
    BusError::Invalid { queue: message.queue.clone(), message_id: message.message_id.clone(), reason }
}

/// Stores `message` unless its id was accepted on its queue within the duplicate-detection window.
fn insert_message(
    tx: &Transaction<'_>,
    message: &OutgoingMessage,
    properties: &str,
    now: i64,
    window_end: i64,
) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM sent_ids WHERE expires_at <= ?1", [now])?;
    let fresh = tx.execute(
        "INSERT INTO sent_ids (queue, message_id, expires_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![message.queue, message.message_id, window_end],
    )?;
    if fresh == 0 {
        return Ok(());
    }
    let OutgoingMessage { queue, message_id, body, content_type, correlation_id, subject, .. } = message;
    let visible_at = message.scheduled_enqueue_time.map_or(now, |t| t.timestamp_micros());
    tx.execute(
        "INSERT INTO messages (queue, message_id, body, content_type, correlation_id, subject, properties,
                               enqueued_at, visible_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![queue, message_id, body, content_type, correlation_id, subject, properties, now, visible_at],
    )?;
    Ok(())
}

/// Up to `limit` messages of `queue` visible at `now` (scheduled time reached, no live lock), in order.
fn visible(tx: &Transaction<'_>, queue: &str, now: i64, limit: usize) -> rusqlite::Result<Vec<(i64, u32)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT seq, delivery_count FROM messages
         WHERE queue = ?1 AND visible_at <= ?2 AND (locked_until IS NULL OR locked_until <= ?2)
         ORDER BY seq LIMIT ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    stmt.query_map(params![queue, now, limit], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

/// Locks message `seq` under a fresh token and counts the delivery.
fn lock(tx: &Transaction<'_>, seq: i64, locked_until: i64) -> rusqlite::Result<ReceivedMessage> {
    let token = uuid::Uuid::new_v4().to_string();
    tx.query_row(
        "UPDATE messages SET lock_token = ?2, locked_until = ?3, delivery_count = delivery_count + 1
         WHERE seq = ?1
         RETURNING queue, message_id, seq, body, content_type, correlation_id, subject, properties,
                   enqueued_at, delivery_count, lock_token, locked_until",
        params![seq, token, locked_until],
        |r| {
            Ok(ReceivedMessage {
                queue: r.get(0)?,
                message_id: r.get(1)?,
                sequence_number: r.get(2)?,
                body: r.get(3)?,
                content_type: r.get(4)?,
                correlation_id: r.get(5)?,
                subject: r.get(6)?,
                properties: properties_col(r, 7)?,
                enqueued_time: time_col(r, 8)?,
                delivery_count: r.get(9)?,
                lock_token: r.get(10)?,
                locked_until: time_col(r, 11)?,
            })
        },
    )
}

/// Moves message `seq` to the dead-letter table.
fn move_to_dead_letters(
    tx: &Transaction<'_>,
    seq: i64,
    reason: &str,
    description: &str,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO dead_letters (seq, queue, message_id, body, content_type, correlation_id, subject, properties,
                                   enqueued_at, delivery_count, reason, description, dead_lettered_at)
         SELECT seq, queue, message_id, body, content_type, correlation_id, subject, properties,
                enqueued_at, delivery_count, ?2, ?3, ?4
         FROM messages WHERE seq = ?1",
        params![seq, reason, description, now],
    )?;
    tx.execute("DELETE FROM messages WHERE seq = ?1", [seq])?;
    Ok(())
}

/// Hands out up to `max` visible messages, dead-lettering on the way those delivered `max_deliveries` times.
fn receive_in(
    tx: &Transaction<'_>,
    queue: &str,
    max: usize,
    now: i64,
    locked_until: i64,
    max_deliveries: u32,
) -> rusqlite::Result<Vec<ReceivedMessage>> {
    let mut received = Vec::new();
    loop {
        let candidates = visible(tx, queue, now, max - received.len())?;
        if candidates.is_empty() {
            return Ok(received);
        }
        for (seq, delivery_count) in candidates {
            if delivery_count >= max_deliveries {
                let description = format!("Message could not be consumed after {delivery_count} delivery attempts.");
                move_to_dead_letters(tx, seq, MAX_DELIVERY_COUNT_EXCEEDED, &description, now)?;
            } else {
                received.push(lock(tx, seq, locked_until)?);
            }
        }
        if received.len() == max {
            return Ok(received);
        }
    }
}

fn dead_letters_of(tx: &Transaction<'_>, queue: &str) -> rusqlite::Result<Vec<DeadLetteredMessage>> {
    let mut stmt = tx.prepare_cached(
        "SELECT queue, message_id, body, reason, description, delivery_count, dead_lettered_at
         FROM dead_letters WHERE queue = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([queue], |r| {
        Ok(DeadLetteredMessage {
            queue: r.get(0)?,
            message_id: r.get(1)?,
            body: r.get(2)?,
            reason: r.get(3)?,
            description: r.get(4)?,
            delivery_count: r.get(5)?,
            dead_lettered_at: time_col(r, 6)?,
        })
    })?;
    rows.collect()
}

fn stats_of(tx: &Transaction<'_>, queue: &str, now: i64) -> rusqlite::Result<QueueStats> {
    tx.query_row(
        "SELECT COALESCE(SUM(NOT held AND visible_at <= ?2), 0), COALESCE(SUM(NOT held AND visible_at > ?2), 0),
                COALESCE(SUM(held), 0), (SELECT COUNT(*) FROM dead_letters WHERE queue = ?1)
         FROM (SELECT visible_at, (locked_until IS NOT NULL AND locked_until > ?2) AS held
               FROM messages WHERE queue = ?1)",
        params![queue, now],
        |r| {
            Ok(QueueStats {
                active: count(r, 0)?,
                scheduled: count(r, 1)?,
                locked: count(r, 2)?,
                dead_lettered: count(r, 3)?,
            })
        },
    )
}

#[async_trait]
impl Bus for SqliteQueue {
    async fn send(&self, message: OutgoingMessage) -> Result<(), BusError> {
        validate(&message)?;
        let now = self.now();
        let window_end = after(now, self.settings.duplicate_detection_window);
        let properties = serde_json::to_string(&message.properties).map_err(|e| invalid(&message, e.to_string()))?;
        let (queue, message_id) = (message.queue.clone(), message.message_id.clone());
        self.run("send", &queue, "", move |tx| Ok(insert_message(tx, &message, &properties, now, window_end)?))
            .await
            .map_err(|e| BusError::Unavailable { queue, message_id, source: Box::new(e) })
    }
}

#[async_trait]
impl QueueReceiver for SqliteQueue {
    async fn receive(&self, queue: &str, max: usize) -> Result<Vec<ReceivedMessage>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = self.now();
        let locked_until = after(now, self.settings.lock_duration);
        // Service Bus refuses a max delivery count below 1.
        let max_deliveries = self.settings.max_delivery_count.max(1);
        let q = queue.to_owned();
        self.run("receive", queue, "", move |tx| Ok(receive_in(tx, &q, max, now, locked_until, max_deliveries)?)).await
    }

    async fn complete(&self, message: &ReceivedMessage) -> Result<(), QueueError> {
        self.settle("complete", message, |tx, seq, _| {
            tx.execute("DELETE FROM messages WHERE seq = ?1", [seq]).map(drop)
        })
        .await
    }

    async fn abandon(&self, message: &ReceivedMessage, delay: Option<Duration>) -> Result<(), QueueError> {
        let delay = delay.unwrap_or_default();
        self.settle("abandon", message, move |tx, seq, now| {
            tx.execute(
                "UPDATE messages SET lock_token = NULL, locked_until = NULL, visible_at = ?2 WHERE seq = ?1",
                params![seq, after(now, delay)],
            )
            .map(drop)
        })
        .await
    }

    async fn dead_letter(&self, message: &ReceivedMessage, reason: &str, description: &str) -> Result<(), QueueError> {
        let (reason, description) = (reason.to_owned(), description.to_owned());
        self.settle("dead-letter", message, move |tx, seq, now| {
            move_to_dead_letters(tx, seq, &reason, &description, now)
        })
        .await
    }

    async fn renew_lock(&self, message: &ReceivedMessage) -> Result<DateTime<Utc>, QueueError> {
        let lock_duration = self.settings.lock_duration;
        self.settle("renew lock", message, move |tx, seq, now| {
            tx.query_row(
                "UPDATE messages SET locked_until = ?2 WHERE seq = ?1 RETURNING locked_until",
                params![seq, after(now, lock_duration)],
                |r| time_col(r, 0),
            )
        })
        .await
    }

    async fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetteredMessage>, QueueError> {
        let q = queue.to_owned();
        self.run("list dead letters", queue, "", move |tx| Ok(dead_letters_of(tx, &q)?)).await
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let (q, now) = (queue.to_owned(), self.now());
        self.run("stats", queue, "", move |tx| Ok(stats_of(tx, &q, now)?)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_saturates_at_the_latest_instant() {
        let latest = after(0, Duration::MAX);
        assert!(DateTime::from_timestamp_micros(latest).is_some());
        assert_eq!(after(1, Duration::from_micros(2)), 3);
    }
}

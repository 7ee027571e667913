//! The queue conformance suite: the contracts of [`crate::ports::queue`] and
//! [`crate::ports::bus`], checked against an adapter that implements both and reads time from
//! an injected clock (the embedded queues; a real broker keeps its own time).
//!
//! Each check takes a [`Harness`]: a fresh queue store, the [`ManualClock`] it reads, and the
//! settings it was built with. [`run_all`] builds one per check through a [`QueueFactory`]. Every
//! check also uses queue names of its own, so a factory that shares one store still works.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::adapters::sqlite::QueueSettings;
use crate::ports::bus::{Bus, BusError, OutgoingMessage};
use crate::ports::clock::{Clock, ManualClock};
use crate::ports::queue::{QueueError, QueueReceiver, QueueStats, ReceivedMessage};

/// A store that both sends ([`Bus`]) and receives ([`QueueReceiver`]).
pub trait QueueAndBus: Bus + QueueReceiver {}

impl<T: Bus + QueueReceiver + ?Sized> QueueAndBus for T {}

/// Builds a queue store reading time from the given clock, with the given settings.
///
/// For [`run_all`], each call yields a fresh, empty store. For [`survives_reopen`], each call
/// reopens the same durable store.
pub trait QueueFactory: Fn(Arc<ManualClock>, QueueSettings) -> Arc<dyn QueueAndBus> {}

impl<F: Fn(Arc<ManualClock>, QueueSettings) -> Arc<dyn QueueAndBus>> QueueFactory for F {}

/// What one check works with.
#[derive(Clone)]
pub struct Harness {
    /// The store under test.
    pub queue: Arc<dyn QueueAndBus>,
    /// The clock the store reads.
    pub clock: Arc<ManualClock>,
    /// The settings the store was built with.
    pub settings: QueueSettings,
}

impl Harness {
    /// A store from `make`, with [`suite_settings`] and a clock at [`suite_start`].
    pub fn new(make: &impl QueueFactory) -> Self {
        let clock = Arc::new(ManualClock::new(suite_start()));
        let settings = suite_settings();
        Self { queue: make(Arc::clone(&clock), settings), clock, settings }
    }

    fn q(&self) -> &dyn QueueAndBus {
        self.queue.as_ref()
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn lock(&self) -> Duration {
        self.settings.lock_duration
    }

    async fn send(&self, queue: &str, id: &str, body: &str) {
        self.q().send(msg(queue, id, body)).await.unwrap_or_else(|e| panic!("send {id} to {queue}: {e:?}"));
    }

    async fn receive(&self, queue: &str, max: usize) -> Vec<ReceivedMessage> {
        self.q().receive(queue, max).await.unwrap_or_else(|e| panic!("receive from {queue}: {e:?}"))
    }

    async fn receive_one(&self, queue: &str, why: &str) -> ReceivedMessage {
        let mut got = self.receive(queue, 1).await;
        assert_eq!(got.len(), 1, "{why}: expected one message, got {got:?}");
        got.remove(0)
    }

    async fn stats(&self, queue: &str) -> QueueStats {
        self.q().stats(queue).await.unwrap_or_else(|e| panic!("stats of {queue}: {e:?}"))
    }
}

/// The settings every check of [`run_all`] runs with.
pub fn suite_settings() -> QueueSettings {
    QueueSettings {
        lock_duration: Duration::from_secs(30),
        max_delivery_count: 3,
        duplicate_detection_window: Duration::from_secs(600),
    }
}

/// Where the clock of every check starts (with sub-microsecond digits, to catch rounding).
pub fn suite_start() -> DateTime<Utc> {
    let start = Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).single().unwrap_or(DateTime::UNIX_EPOCH);
    start + chrono::Duration::nanoseconds(123_456_789)
}

/// A fresh queue name for one check.
fn queue() -> String {
    format!("q-{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

fn msg(queue: &str, id: &str, body: &str) -> OutgoingMessage {
    OutgoingMessage::json(queue, id, body.as_bytes().to_vec())
}

fn ids(messages: &[ReceivedMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.message_id.as_str()).collect()
}

/// Whether two instants agree to the millisecond (stores may keep coarser time than the clock).
fn near(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_milliseconds().abs() <= 1
}

fn assert_lock_lost(result: Result<impl std::fmt::Debug, QueueError>, what: &str) {
    match result {
        Err(e) => assert!(e.is_lock_lost(), "{what}: expected LockLost, got {e:?}"),
        Ok(v) => panic!("{what}: expected LockLost, got Ok({v:?})"),
    }
}

/// Runs every check, each against a fresh store from `make`.
pub async fn run_all(make: impl QueueFactory) {
    fifo_order_and_delivery_count(&Harness::new(&make)).await;
    locked_messages_return_after_lock_expiry(&Harness::new(&make)).await;
    complete_removes(&Harness::new(&make)).await;
    settling_an_expired_lock_is_lock_lost(&Harness::new(&make)).await;
    abandon_releases_and_delays(&Harness::new(&make)).await;
    max_delivery_count_dead_letters(&Harness::new(&make)).await;
    explicit_dead_letter_keeps_reason(&Harness::new(&make)).await;
    scheduled_messages_wait_for_their_time(&Harness::new(&make)).await;
    duplicates_dropped_within_window(&Harness::new(&make)).await;
    duplicates_in_other_queues_are_independent(&Harness::new(&make)).await;
    concurrent_receivers_never_share_a_message(&Harness::new(&make)).await;
    invalid_messages_are_refused(&Harness::new(&make)).await;
    stats_reflect_states(&Harness::new(&make)).await;
    renew_lock_extends_the_lock(&Harness::new(&make)).await;
}

/// Messages come out in enqueue order with every field the sender set, delivery count 1, and a
/// distinct lock held for the lock duration; `max` caps a receive.
pub async fn fifo_order_and_delivery_count(h: &Harness) {
    let q = queue();
    let mut first = msg(&q, "m0", "body-0");
    first.correlation_id = Some("corr".into());
    first.subject = Some("BackupRequested".into());
    first.content_type = "text/plain".into();
    first.properties = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    h.q().send(first.clone()).await.expect("send m0");
    for i in 1..5 {
        h.send(&q, &format!("m{i}"), &format!("body-{i}")).await;
    }
    assert!(h.receive(&q, 0).await.is_empty(), "receive with max 0 hands out nothing");
    let now = h.clock.now();
    let got = h.receive(&q, 3).await;
    assert_eq!(ids(&got), ["m0", "m1", "m2"], "receive hands out at most `max` messages, in enqueue order");
    let m0 = &got[0];
    assert_eq!(m0.queue, q);
    assert_eq!(m0.body, first.body, "the body comes back unchanged");
    assert_eq!(m0.content_type, "text/plain", "content type round-trips");
    assert_eq!(m0.correlation_id.as_deref(), Some("corr"), "correlation id round-trips");
    assert_eq!(m0.subject.as_deref(), Some("BackupRequested"), "subject round-trips");
    assert_eq!(m0.properties, first.properties, "application properties round-trip");
    assert!(near(m0.enqueued_time, now), "enqueued time is the send time");
    let expiry = now + chrono::Duration::from_std(h.lock()).unwrap_or_default();
    for m in &got {
        assert_eq!(m.delivery_count, 1, "first delivery has delivery count 1");
        assert!(near(m.locked_until, expiry), "lock lasts the lock duration: {m:?}");
    }
    assert!(got.windows(2).all(|w| w[0].sequence_number < w[1].sequence_number), "sequence numbers increase");
    let tokens: BTreeSet<_> = got.iter().map(|m| &m.lock_token).collect();
    assert_eq!(tokens.len(), 3, "every delivery gets its own lock token");
    let rest = h.receive(&q, 10).await;
    assert_eq!(ids(&rest), ["m3", "m4"], "the next receive continues in order");
    assert!(rest[0].sequence_number > got[2].sequence_number, "sequence numbers increase across receives");
    assert!(h.receive(&q, 10).await.is_empty(), "locked messages are not handed out again");
}

/// A locked message stays hidden until its lock expires, then comes back with count + 1.
pub async fn locked_messages_return_after_lock_expiry(h: &Harness) {
    let q = queue();
    h.send(&q, "m", "b").await;
    let first = h.receive_one(&q, "first delivery").await;
    h.advance(h.lock() - Duration::from_secs(1));
    assert!(h.receive(&q, 1).await.is_empty(), "a message is not redelivered before its lock expires");
    h.advance(Duration::from_secs(1));
    let second = h.receive_one(&q, "redelivery after lock expiry").await;
    assert_eq!(second.message_id, "m");
    assert_eq!(second.sequence_number, first.sequence_number, "a redelivery is the same message");
    assert_eq!(second.delivery_count, 2, "a redelivery counts one more delivery");
    assert_ne!(second.lock_token, first.lock_token, "a redelivery gets a fresh lock token");
}

/// Complete removes the message for good; completing it again is LockLost.
pub async fn complete_removes(h: &Harness) {
    let q = queue();
    h.send(&q, "a", "1").await;
    h.send(&q, "b", "2").await;
    let a = h.receive_one(&q, "first").await;
    h.q().complete(&a).await.expect("complete with a live lock");
    assert_lock_lost(h.q().complete(&a).await, "completing twice");
    h.advance(h.lock() * 2);
    let b = h.receive_one(&q, "after complete").await;
    assert_eq!(b.message_id, "b", "a completed message is never redelivered");
    h.q().complete(&b).await.expect("complete b");
    h.advance(h.lock() * 2);
    assert!(h.receive(&q, 10).await.is_empty(), "completed messages are gone");
    assert_eq!(h.stats(&q).await, QueueStats::default(), "an emptied queue counts nothing");
}

/// Complete, abandon, dead-letter and renew on an expired, stale or unknown lock are LockLost,
/// change nothing, and the message is redelivered.
pub async fn settling_an_expired_lock_is_lock_lost(h: &Harness) {
    let q = queue();
    for op in ["complete", "abandon", "dead-letter", "renew"] {
        h.send(&q, op, "b").await;
        let old = h.receive_one(&q, op).await;
        h.advance(h.lock());
        let result = match op {
            "complete" => h.q().complete(&old).await.map(|_| ()),
            "abandon" => h.q().abandon(&old, None).await,
            "dead-letter" => h.q().dead_letter(&old, "Reason", "desc").await,
            _ => h.q().renew_lock(&old).await.map(|_| ()),
        };
        assert_lock_lost(result, &format!("{op} after lock expiry"));
        let again = h.receive_one(&q, &format!("redelivery after a refused {op}")).await;
        assert_eq!((again.message_id.as_str(), again.delivery_count), (op, 2), "{op} on a lost lock changes nothing");
        assert_lock_lost(
            h.q().complete(&old).await,
            &format!("{op}: stale token while another receiver holds the lock"),
        );
        h.q().complete(&again).await.expect("the current lock holder completes");
    }
    h.send(&q, "held", "b").await;
    let held = h.receive_one(&q, "held").await;
    let forged = ReceivedMessage { lock_token: uuid::Uuid::new_v4().to_string(), ..held.clone() };
    assert_lock_lost(h.q().complete(&forged).await, "complete with an unknown lock token");
    assert_lock_lost(h.q().renew_lock(&forged).await, "renew with an unknown lock token");
    h.q().complete(&held).await.expect("a forged token does not disturb the real lock");
    assert!(h.q().dead_letters(&q).await.expect("dead letters").is_empty(), "a refused dead-letter moves nothing");
}

/// Abandon releases the lock at once, or after the delay; the delivery count is kept.
pub async fn abandon_releases_and_delays(h: &Harness) {
    let q = queue();
    h.send(&q, "now", "b").await;
    let m = h.receive_one(&q, "first").await;
    h.q().abandon(&m, None).await.expect("abandon");
    let m = h.receive_one(&q, "abandon without delay makes the message visible at once").await;
    assert_eq!(m.delivery_count, 2, "abandon does not undo the delivery count");
    h.q().complete(&m).await.expect("complete after redelivery");
    h.send(&q, "delayed", "b").await;
    let m = h.receive_one(&q, "first").await;
    h.q().abandon(&m, Some(Duration::from_secs(10))).await.expect("abandon with a delay");
    assert_lock_lost(h.q().abandon(&m, None).await, "abandoning twice");
    let stats = h.stats(&q).await;
    assert_eq!((stats.scheduled, stats.locked), (1, 0), "an abandon delay counts as scheduled, not locked");
    h.advance(Duration::from_secs(9));
    assert!(h.receive(&q, 10).await.is_empty(), "abandon with a delay hides the message for the delay");
    h.advance(Duration::from_secs(1));
    let m = h.receive_one(&q, "after the abandon delay").await;
    assert_eq!((m.message_id.as_str(), m.delivery_count), ("delayed", 2), "abandon does not undo the delivery count");
}

/// A message delivered `max_delivery_count` times is dead-lettered with reason
/// `MaxDeliveryCountExceeded` and its body, instead of being handed out again.
pub async fn max_delivery_count_dead_letters(h: &Harness) {
    let q = queue();
    h.send(&q, "poison", "poison-body").await;
    let max = h.settings.max_delivery_count;
    for n in 1..=max {
        let m = h.receive_one(&q, &format!("delivery {n}")).await;
        assert_eq!(m.delivery_count, n);
        if n % 2 == 0 {
            h.q().abandon(&m, None).await.expect("abandon");
        } else {
            h.advance(h.lock());
        }
    }
    h.send(&q, "next", "next-body").await;
    let next = h.receive_one(&q, "the message behind a dead-lettered one").await;
    assert_eq!(next.message_id, "next", "a message past its max delivery count is not handed out");
    let dead = h.q().dead_letters(&q).await.expect("dead letters");
    assert_eq!(dead.len(), 1, "the poison message is dead-lettered: {dead:?}");
    let d = &dead[0];
    assert_eq!((d.message_id.as_str(), d.queue.as_str()), ("poison", q.as_str()));
    assert_eq!(d.reason, "MaxDeliveryCountExceeded", "the dead-letter reason names the max delivery count");
    assert_eq!(d.body, b"poison-body", "a dead-lettered body is unchanged");
    assert_eq!(d.delivery_count, max, "the dead letter records its deliveries");
    assert!(near(d.dead_lettered_at, h.clock.now()), "dead-lettered when the receive found it: {d:?}");
    let stats = h.stats(&q).await;
    assert_eq!((stats.dead_lettered, stats.locked, stats.active), (1, 1, 0), "stats after dead-lettering: {stats:?}");
}

/// Dead-letter keeps the reason and description given, and the message is not redelivered.
/// Dead letters are listed oldest first.
pub async fn explicit_dead_letter_keeps_reason(h: &Harness) {
    let q = queue();
    h.send(&q, "first", "1").await;
    h.send(&q, "second", "2").await;
    let got = h.receive(&q, 2).await;
    h.q().dead_letter(&got[1], "MalformedMessage", "expected JSON").await.expect("dead-letter second");
    h.advance(Duration::from_secs(1));
    h.q().dead_letter(&got[0], "Refused", "no such policy").await.expect("dead-letter first");
    assert_lock_lost(h.q().complete(&got[0]).await, "complete after dead-letter");
    h.advance(h.lock() * 2);
    assert!(h.receive(&q, 10).await.is_empty(), "a dead-lettered message is not redelivered");
    let dead = h.q().dead_letters(&q).await.expect("dead letters");
    let summary: Vec<_> =
        dead.iter().map(|d| (d.message_id.as_str(), d.reason.as_str(), d.description.as_str())).collect();
    assert_eq!(
        summary,
        [("second", "MalformedMessage", "expected JSON"), ("first", "Refused", "no such policy")],
        "dead letters keep reason and description, oldest first"
    );
    assert_eq!(dead[0].body, b"2", "a dead-lettered body is unchanged");
    assert_eq!(dead[0].delivery_count, 1);
    assert!(dead[0].dead_lettered_at < dead[1].dead_lettered_at, "dead-letter times are recorded");
    assert!(h.q().dead_letters(&queue()).await.expect("dead letters of an unused queue").is_empty());
}

/// A message scheduled in the future is invisible until its time; one in the past is visible.
pub async fn scheduled_messages_wait_for_their_time(h: &Harness) {
    let q = queue();
    let now = h.clock.now();
    let later = msg(&q, "later", "b").scheduled_at(now + chrono::Duration::hours(1));
    h.q().send(later).await.expect("send scheduled");
    h.q().send(msg(&q, "past", "b").scheduled_at(now - chrono::Duration::hours(1))).await.expect("send past");
    let got = h.receive(&q, 10).await;
    assert_eq!(ids(&got), ["past"], "a message scheduled in the past is visible at once; a future one is not");
    assert_eq!(h.stats(&q).await.scheduled, 1, "a future message counts as scheduled");
    h.q().complete(&got[0]).await.expect("complete the past one");
    h.advance(Duration::from_secs(3599));
    assert!(h.receive(&q, 10).await.is_empty(), "a scheduled message is invisible before its time");
    h.advance(Duration::from_secs(1));
    let got = h.receive_one(&q, "a scheduled message at its time").await;
    assert_eq!((got.message_id.as_str(), got.delivery_count), ("later", 1));
}

/// A second send of the same id to the same queue within the window (from the first send) is
/// accepted and dropped, even after the first was completed; after the window it is a new message.
pub async fn duplicates_dropped_within_window(h: &Harness) {
    let q = queue();
    let window = h.settings.duplicate_detection_window;
    h.send(&q, "dup", "original").await;
    h.send(&q, "dup", "resend").await;
    let got = h.receive(&q, 10).await;
    assert_eq!(got.len(), 1, "a duplicate within the window is dropped: {got:?}");
    assert_eq!(got[0].body, b"original", "the first send wins");
    h.q().complete(&got[0]).await.expect("complete");
    h.advance(window / 2);
    h.send(&q, "dup", "after completion").await;
    assert!(h.receive(&q, 10).await.is_empty(), "a duplicate is dropped even after the original was completed");
    h.advance(window - window / 2 - Duration::from_secs(1));
    h.send(&q, "dup", "still inside").await;
    assert!(h.receive(&q, 10).await.is_empty(), "the window counts from the first send, not the last duplicate");
    h.advance(Duration::from_secs(1));
    h.send(&q, "dup", "new").await;
    let got = h.receive_one(&q, "a resend after the window is a new message").await;
    assert_eq!(got.body, b"new");
    h.send(&q, "dup", "again").await;
    assert!(h.receive(&q, 10).await.is_empty(), "the new message opens a new window");
}

/// Duplicate detection is per queue.
pub async fn duplicates_in_other_queues_are_independent(h: &Harness) {
    let (a, b) = (queue(), queue());
    h.send(&a, "same-id", "to a").await;
    h.send(&b, "same-id", "to b").await;
    assert_eq!(h.receive_one(&a, "queue a").await.body, b"to a");
    assert_eq!(h.receive_one(&b, "the same id on another queue is not a duplicate").await.body, b"to b");
}

/// Concurrent receivers never get the same message.
pub async fn concurrent_receivers_never_share_a_message(h: &Harness) {
    let q = queue();
    for i in 0..50 {
        h.send(&q, &format!("m{i:02}"), "b").await;
    }
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, q) = (Arc::clone(&h.queue), q.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store.receive(&q, 3).await.expect("concurrent receive");
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|m| m.message_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("receiver task"));
    }
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a message was handed to two receivers");
    assert_eq!(all.len(), 50, "every message is handed out exactly once");
}

/// Messages breaking a rule of the bus are refused as Invalid and not stored.
pub async fn invalid_messages_are_refused(h: &Harness) {
    let q = queue();
    let cases = [
        ("an empty message id", msg(&q, "", "b")),
        ("a message id over 128 characters", msg(&q, &"i".repeat(129), "b")),
        ("an empty queue name", msg("", "id", "b")),
        ("an upper-case queue name", msg("Backup-Requests", "id", "b")),
        ("a queue name with a space", msg("backup requests", "id", "b")),
        ("a queue name over 260 characters", msg(&"q".repeat(261), "id", "b")),
        ("a body over 256 KiB", OutgoingMessage::json(&q, "big", vec![b'x'; 256 * 1024 + 1])),
    ];
    for (what, m) in cases {
        match h.q().send(m).await {
            Err(e @ BusError::Invalid { .. }) => assert!(!e.is_transient(), "{what}: Invalid is not transient"),
            other => panic!("{what}: expected BusError::Invalid, got {other:?}"),
        }
    }
    assert_eq!(h.stats(&q).await, QueueStats::default(), "a refused message is not stored");
    h.q().send(msg(&q, &"i".repeat(128), "b")).await.expect("a 128-character id is valid");
    h.q().send(OutgoingMessage::json(&q, "max", vec![b'x'; 256 * 1024])).await.expect("a 256 KiB body is valid");
    h.q().send(msg("a.b/c-d_1", "id", "b")).await.expect("an entity path with '.', '/', '-', '_' is valid");
    let got = h.receive(&q, 10).await;
    assert_eq!(got.len(), 2, "valid messages at the limits are stored");
    assert_eq!(got[1].body.len(), 256 * 1024, "a body at the limit is stored whole");
}

/// Stats count active, scheduled (also abandon delays), locked and dead-lettered messages.
pub async fn stats_reflect_states(h: &Harness) {
    let q = queue();
    assert_eq!(h.stats(&q).await, QueueStats::default(), "an unknown queue is empty");
    for id in ["locked", "delayed", "dead", "active"] {
        h.send(&q, id, "b").await;
    }
    let in_an_hour = h.clock.now() + chrono::Duration::hours(1);
    h.q().send(msg(&q, "scheduled", "b").scheduled_at(in_an_hour)).await.expect("send scheduled");
    let got = h.receive(&q, 3).await;
    assert_eq!(ids(&got), ["locked", "delayed", "dead"]);
    h.q().abandon(&got[1], Some(Duration::from_secs(60))).await.expect("abandon with delay");
    h.q().dead_letter(&got[2], "Test", "stats").await.expect("dead-letter");
    let want = QueueStats { active: 1, scheduled: 2, locked: 1, dead_lettered: 1 };
    assert_eq!(h.stats(&q).await, want, "stats by state");
    h.advance(Duration::from_secs(60));
    let want = QueueStats { active: 3, scheduled: 1, locked: 0, dead_lettered: 1 };
    assert_eq!(h.stats(&q).await, want, "expired locks and elapsed delays count as active");
}

/// Renewing a lock keeps the message from redelivery past the original expiry.
pub async fn renew_lock_extends_the_lock(h: &Harness) {
    let q = queue();
    h.send(&q, "long", "b").await;
    let m = h.receive_one(&q, "first").await;
    h.advance(h.lock() * 2 / 3);
    let renewed = h.q().renew_lock(&m).await.expect("renew a live lock");
    let want = h.clock.now() + chrono::Duration::from_std(h.lock()).unwrap_or_default();
    assert!(near(renewed, want), "renew extends to now + lock duration: {renewed}");
    assert!(renewed > m.locked_until, "renew moves the expiry later");
    h.advance(h.lock() / 2);
    assert!(h.clock.now() > m.locked_until, "the check is past the original expiry");
    assert!(h.receive(&q, 10).await.is_empty(), "a renewed lock keeps the message from redelivery");
    assert_eq!(h.stats(&q).await.locked, 1, "a renewed message counts as locked");
    h.q().complete(&m).await.expect("complete with the renewed lock (same token)");
}

/// State survives closing and reopening the store: `reopen` must open the same durable store on
/// every call. A received message not completed before the store closed (a killed process)
/// comes back after its lock expires; duplicate detection and dead letters persist.
pub async fn survives_reopen(reopen: impl QueueFactory) {
    let clock = Arc::new(ManualClock::new(suite_start()));
    let settings = suite_settings();
    let q = queue();
    let first = {
        let h = Harness { queue: reopen(Arc::clone(&clock), settings), clock: Arc::clone(&clock), settings };
        h.send(&q, "pending", "p").await;
        h.send(&q, "dead", "d").await;
        let in_an_hour = clock.now() + chrono::Duration::hours(1);
        h.q().send(msg(&q, "scheduled", "s").scheduled_at(in_an_hour)).await.expect("send scheduled");
        let got = h.receive(&q, 2).await;
        h.q().dead_letter(&got[1], "Test", "durable").await.expect("dead-letter");
        got[0].clone()
    };
    let h = Harness { queue: reopen(Arc::clone(&clock), settings), clock: Arc::clone(&clock), settings };
    let want = QueueStats { active: 0, scheduled: 1, locked: 1, dead_lettered: 1 };
    assert_eq!(h.stats(&q).await, want, "every state survives a reopen");
    h.send(&q, "pending", "resend").await;
    assert!(h.receive(&q, 10).await.is_empty(), "a lock survives a reopen, and duplicate detection too");
    h.advance(h.lock());
    let again = h.receive_one(&q, "a message left locked by a killed process returns after lock expiry").await;
    assert_eq!((again.message_id.as_str(), again.sequence_number), ("pending", first.sequence_number));
    assert_eq!((again.delivery_count, again.body.as_slice()), (2, b"p".as_slice()), "delivery count survives");
    h.send(&q, "after", "a").await;
    h.advance(h.lock());
    let got = h.receive(&q, 10).await;
    assert_eq!(ids(&got), ["pending", "after"], "sequence numbers keep increasing after a reopen");
    let dead = h.q().dead_letters(&q).await.expect("dead letters");
    assert_eq!(dead.len(), 1, "dead letters survive a reopen");
    assert_eq!(dead[0].description, "durable");
}

//! `schedule_tick`: evaluates every target's schedule, claims each due slot exactly once and
//! sends one `backup-requests` message per claimed slot.
//!
//! Crash safety, step by step:
//! 1. A slot is claimed by insert-if-absent (`slotclaims`, state `claimed`): two ticks racing
//!    for one slot produce one claim.
//! 2. The request is sent with a deterministic message id (the bus drops a resend), then the
//!    claim moves to `sent`.
//! 3. The target's cursor advances only after its slots are sent.
//!
//! A crash after 1 leaves a `claimed` claim: the next tick finds it (it re-evaluates the same
//! slots, and also sweeps the last day's unsent claims) and sends it. A crash after 2 resends
//! a message the bus drops as a duplicate.

use chrono::{DateTime, Duration, Utc};

use crate::domain::ids::BackupId;
use crate::domain::messages::{BackupReason, BackupRequest, BackupStep, Message, Priority, encode};
use crate::domain::policy::{Config, Target};
use crate::domain::records::SlotClaimState;
use crate::domain::schedule::due_slots;
use crate::layout::{TABLE_SCHEDULE_CURSORS, TABLE_SLOT_CLAIMS};
use crate::ports::bus::{Bus, BusError, OutgoingMessage};
use crate::ports::state_store::{ETag, Entity, Query, StateStore, StateStoreError, query_all};

/// How far back a tick looks for claims that were never sent.
const UNSENT_SWEEP: Duration = Duration::hours(24);

/// Row-key spelling of a slot: sortable, Table-safe.
fn slot_key(slot: DateTime<Utc>) -> String {
    slot.format("%Y%m%dT%H%M%SZ").to_string()
}

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    /// Targets evaluated.
    pub targets: usize,
    /// Backups requested by this tick (new claims, and unsent claims finished).
    pub requested: Vec<String>,
    /// Due slots another tick had already claimed and sent.
    pub already_claimed: usize,
    /// Slots passed over by the catch-up rule.
    pub missed: usize,
    /// Targets whose evaluation failed, with the reason (the next tick retries them).
    pub failures: Vec<String>,
}

impl TickReport {
    /// One line for the log.
    pub fn summary(&self) -> String {
        if self.targets == 0 {
            return "no backup policy is configured: nothing to schedule".to_owned();
        }
        let mut s = format!(
            "{} target(s) evaluated: {} backup(s) requested, {} slot(s) already claimed, {} missed slot(s) skipped",
            self.targets,
            self.requested.len(),
            self.already_claimed,
            self.missed
        );
        if self.requested.is_empty() && self.failures.is_empty() {
            s.push_str("; nothing was due");
        }
        if !self.failures.is_empty() {
            s.push_str(&format!("; {} target(s) failed", self.failures.len()));
        }
        s
    }
}

/// Why a target's evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// Reading or writing a cursor or claim failed.
    #[error("recording the schedule of {target} failed")]
    State {
        /// The target key.
        target: String,
        /// The cause.
        #[source]
        source: StateStoreError,
    },
    /// Sending a backup request failed.
    #[error("requesting backup {backup_id} of {target} failed")]
    Send {
        /// The target key.
        target: String,
        /// The backup.
        backup_id: String,
        /// The cause.
        #[source]
        source: BusError,
    },
}

impl TickError {
    /// Whether a later tick may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            TickError::State { source, .. } => source.is_transient(),
            TickError::Send { source, .. } => source.is_transient(),
        }
    }
}

/// Runs one tick over every target of `config` at `now`. `tick_period` is how often ticks run
/// (it decides which slots count as missed).
pub async fn run(
    config: &Config,
    store: &dyn StateStore,
    bus: &dyn Bus,
    now: DateTime<Utc>,
    tick_period: Duration,
) -> TickReport {
    let mut report = TickReport::default();
    for target in config.targets() {
        report.targets += 1;
        if let Err(e) = tick_target(&target, store, bus, now, tick_period, &mut report).await {
            tracing::error!(target.key = %target.key(), error = %e, cause = ?std::error::Error::source(&e), "schedule evaluation failed");
            report.failures.push(format!("{}: {e}", target.key()));
        }
    }
    report
}

async fn tick_target(
    target: &Target<'_>,
    store: &dyn StateStore,
    bus: &dyn Bus,
    now: DateTime<Utc>,
    tick_period: Duration,
    report: &mut TickReport,
) -> Result<(), TickError> {
    let key = target.key();
    let state_err = |source| TickError::State { target: key.clone(), source };
    let cursor = store
        .get(TABLE_SCHEDULE_CURSORS, target.policy.name.as_str(), target.cluster.name.as_str())
        .await
        .map_err(state_err)?;
    let last_evaluated = cursor
        .as_ref()
        .and_then(|c| c.str("lastEvaluated"))
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    let spec = &target.policy.spec;
    let due = due_slots(&spec.schedule, last_evaluated, now, tick_period, spec.catch_up);
    let unsent = unsent_claims(store, &key, now).await.map_err(state_err)?;
    // An unsent claim the catch-up rule passed over is still taken: it is not missed.
    let finished_late =
        unsent.iter().filter(|s| last_evaluated.is_none_or(|l| **s > l) && !due.due.contains(s)).count();
    report.missed += due.missed.saturating_sub(finished_late);

    let mut slots = due.due;
    slots.extend(unsent);
    slots.sort();
    slots.dedup();
    for slot in slots {
        claim_and_send(target, slot, store, bus, now, report).await?;
    }

    if last_evaluated.is_none_or(|last| now > last) {
        advance_cursor(target, store, cursor.and_then(|c| c.etag), now).await.map_err(state_err)?;
    }
    Ok(())
}

/// Slots claimed in the last day whose request was never sent.
async fn unsent_claims(
    store: &dyn StateStore,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StateStoreError> {
    let query = Query { row_key_from: Some(slot_key(now - UNSENT_SWEEP)), ..Query::partition(key) };
    let claims = query_all(store, TABLE_SLOT_CLAIMS, &query).await?;
    Ok(claims
        .iter()
        .filter(|c| c.str("state").and_then(SlotClaimState::parse) == Some(SlotClaimState::Claimed))
        .filter_map(|c| c.str("slot").and_then(|s| DateTime::parse_from_rfc3339(s).ok()))
        .map(|t| t.with_timezone(&Utc))
        .collect())
}

async fn claim_and_send(
    target: &Target<'_>,
    slot: DateTime<Utc>,
    store: &dyn StateStore,
    bus: &dyn Bus,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), TickError> {
    let key = target.key();
    let state_err = |source| TickError::State { target: key.clone(), source };
    let backup_id = BackupId::scheduled(&target.policy.name, slot);
    let claim = Entity::new(&key, slot_key(slot))
        .with("slot", slot.to_rfc3339())
        .with("backupId", backup_id.as_str())
        .with("cluster", target.cluster.name.as_str())
        .with("state", SlotClaimState::Claimed.as_str())
        .with("claimedAt", now.to_rfc3339());
    let etag = match store.insert(TABLE_SLOT_CLAIMS, &claim).await {
        Ok(etag) => etag,
        Err(e) if e.is_already_exists() => {
            let Some(existing) = store.get(TABLE_SLOT_CLAIMS, &key, &claim.row_key).await.map_err(state_err)? else {
                return Ok(()); // deleted meanwhile (retention of claims): nothing to finish
            };
            if existing.str("state").and_then(SlotClaimState::parse) == Some(SlotClaimState::Sent) {
                report.already_claimed += 1;
                return Ok(());
            }
            existing.etag.clone().unwrap_or(ETag(String::new()))
        }
        Err(e) => return Err(state_err(e)),
    };

    let request = BackupRequest {
        schema_version: BackupRequest::SCHEMA_VERSION,
        backup_id: backup_id.clone(),
        cluster: target.cluster.name.clone(),
        policy: target.policy.name.clone(),
        reason: BackupReason::Scheduled { slot },
        priority: Priority::Normal,
        requested_at: now,
        step: BackupStep::Whole,
    };
    let mut message = OutgoingMessage::json(BackupRequest::QUEUE.name(), request.message_id(), encode(&request));
    message.correlation_id = Some(backup_id.to_string());
    message.subject = Some("BackupRequest".to_owned());
    bus.send(message).await.map_err(|source| TickError::Send {
        target: key.clone(),
        backup_id: backup_id.to_string(),
        source,
    })?;
    tracing::info!(target.key = %key, backup.id = %backup_id, slot = %slot, "backup requested");
    report.requested.push(backup_id.to_string());

    let sent = Entity { etag: None, ..claim.with("state", SlotClaimState::Sent.as_str()) };
    match store.update(TABLE_SLOT_CLAIMS, &sent, &etag).await {
        // Someone else finished the claim meanwhile: the message id makes that harmless.
        Ok(_) => Ok(()),
        Err(e) if e.is_precondition_failed() || e.is_not_found() => Ok(()),
        Err(e) => Err(state_err(e)),
    }
}

async fn advance_cursor(
    target: &Target<'_>,
    store: &dyn StateStore,
    etag: Option<ETag>,
    now: DateTime<Utc>,
) -> Result<(), StateStoreError> {
    let cursor = Entity::new(target.policy.name.as_str(), target.cluster.name.as_str())
        .with("lastEvaluated", now.to_rfc3339())
        .with("schedule", target.policy.spec.schedule.expression());
    let result = match etag {
        Some(etag) => store.update(TABLE_SCHEDULE_CURSORS, &cursor, &etag).await,
        None => store.insert(TABLE_SCHEDULE_CURSORS, &cursor).await,
    };
    match result {
        // A concurrent tick moved the cursor: its claims cover the same slots.
        Err(e) if e.is_precondition_failed() || e.is_already_exists() => Ok(()),
        other => other.map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::adapters::sqlite::SqliteStateStore;
    use crate::domain::messages::decode;

    /// Records what is sent; can be told to fail, as a bus outage would.
    #[derive(Default)]
    struct RecordingBus {
        sent: Mutex<Vec<OutgoingMessage>>,
        down: AtomicBool,
    }

    impl RecordingBus {
        fn distinct_ids(&self) -> Vec<String> {
            let mut ids: Vec<_> = self.sent.lock().unwrap().iter().map(|m| m.message_id.clone()).collect();
            ids.sort();
            ids.dedup();
            ids
        }
    }

    #[async_trait]
    impl Bus for RecordingBus {
        async fn send(&self, message: OutgoingMessage) -> Result<(), BusError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(BusError::Unavailable {
                    queue: message.queue,
                    message_id: message.message_id,
                    source: "bus is down".into(),
                });
            }
            self.sent.lock().unwrap().push(message);
            Ok(())
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn config(schedule: &str) -> Config {
        let text = format!(
            r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: prod }}
spec: {{ region: westeurope, kubeconfig: {{}} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{ name: hourly }}
spec:
  clusters: [prod]
  schedule: "{schedule}"
  rpo: 2h
  retention: {{ keepLast: 24 }}
"#
        );
        Config::from_sources([("test.yaml", text.as_str())]).unwrap()
    }

    const PERIOD: Duration = Duration::minutes(5);

    #[tokio::test]
    async fn a_new_policy_is_backed_up_at_once_and_each_slot_once() {
        let (store, bus, config) =
            (SqliteStateStore::in_memory().unwrap(), RecordingBus::default(), config("0 0 * * * *"));
        let first = run(&config, &store, &bus, t("2026-01-01T10:20:00Z"), PERIOD).await;
        assert_eq!(first.requested, ["hourly-20260101t100000z"]);
        let again = run(&config, &store, &bus, t("2026-01-01T10:25:00Z"), PERIOD).await;
        assert!(again.requested.is_empty(), "{again:?}");
        assert!(again.summary().contains("nothing was due"), "{}", again.summary());
        let next = run(&config, &store, &bus, t("2026-01-01T11:00:01Z"), PERIOD).await;
        assert_eq!(next.requested, ["hourly-20260101t110000z"]);
        let sent = bus.sent.lock().unwrap();
        let request: BackupRequest = decode(&sent[1].body).unwrap();
        assert_eq!(request.reason, BackupReason::Scheduled { slot: t("2026-01-01T11:00:00Z") });
        assert_eq!(sent[1].message_id, "prod.hourly-20260101t110000z");
        assert_eq!(sent[1].queue, "backup-requests");
    }

    #[tokio::test]
    async fn racing_ticks_request_each_slot_under_one_message_id() {
        let (store, bus, config) =
            (SqliteStateStore::in_memory().unwrap(), RecordingBus::default(), config("0 0 * * * *"));
        let now = t("2026-01-01T10:00:02Z");
        let (a, b) = tokio::join!(run(&config, &store, &bus, now, PERIOD), run(&config, &store, &bus, now, PERIOD));
        assert!(a.failures.is_empty() && b.failures.is_empty(), "{a:?} {b:?}");
        assert_eq!(bus.distinct_ids(), ["prod.hourly-20260101t100000z"]);
    }

    #[tokio::test]
    async fn a_slot_claimed_while_the_bus_was_down_is_sent_by_a_later_tick() {
        let (store, bus, config) =
            (SqliteStateStore::in_memory().unwrap(), RecordingBus::default(), config("0 0 * * * *"));
        run(&config, &store, &bus, t("2026-01-01T09:00:00Z"), PERIOD).await;
        bus.down.store(true, Ordering::SeqCst);
        let failed = run(&config, &store, &bus, t("2026-01-01T10:00:01Z"), PERIOD).await;
        assert_eq!(failed.failures.len(), 1, "{failed:?}");
        bus.down.store(false, Ordering::SeqCst);
        // Much later: catch-up would only take the newest slot, but the claimed one is finished too.
        let later = run(&config, &store, &bus, t("2026-01-01T13:00:30Z"), PERIOD).await;
        assert_eq!(later.requested, ["hourly-20260101t100000z", "hourly-20260101t130000z"], "{later:?}");
        assert_eq!(later.missed, 2, "11:00 and 12:00 were missed");
        let after = run(&config, &store, &bus, t("2026-01-01T13:05:00Z"), PERIOD).await;
        assert!(after.requested.is_empty(), "sent claims are not resent: {after:?}");
    }

    #[tokio::test]
    async fn downtime_catches_up_with_the_newest_slot_only() {
        let (store, bus, config) =
            (SqliteStateStore::in_memory().unwrap(), RecordingBus::default(), config("0 0 * * * *"));
        run(&config, &store, &bus, t("2026-01-01T00:00:00Z"), PERIOD).await;
        let report = run(&config, &store, &bus, t("2026-01-02T00:03:00Z"), PERIOD).await;
        assert_eq!(report.requested, ["hourly-20260102t000000z"]);
        assert_eq!(report.missed, 23);
    }

    #[tokio::test]
    async fn a_tick_with_no_policies_says_so() {
        let (store, bus) = (SqliteStateStore::in_memory().unwrap(), RecordingBus::default());
        let report = run(&Config::default(), &store, &bus, Utc::now(), PERIOD).await;
        assert_eq!(report.summary(), "no backup policy is configured: nothing to schedule");
        assert!(bus.sent.lock().unwrap().is_empty());
    }
}

//! Message contracts: every message on every queue and topic, each with a schema version and
//! a deterministic message id.
//!
//! Bodies are JSON objects in camelCase with `schemaVersion` first. A receiver decodes with
//! [`decode`], which tells apart a body that is not JSON, one of an unknown schema version and
//! one with a bad field (naming the field): all three can never succeed and are dead-lettered.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ids::BackupId;
use super::names::{ClusterName, PolicyName};
use super::shards::Shard;

/// The queues and topics of the architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Queue {
    /// Requests for one backup (from ticks, events, the CLI).
    BackupRequests,
    /// Polls for a backup's volume snapshots.
    SnapshotChecks,
    /// Requests to copy a committed backup to the second region.
    CopyRequests,
    /// Requests for a restore.
    RestoreRequests,
    /// Progress and results of restores (a topic).
    RestoreEvents,
    /// Alert notifications (a topic).
    Alerts,
    /// Messages a handler refused, with the reason (a custom handler cannot dead-letter
    /// through the Functions host, so it parks them here and completes them).
    DeadLetters,
}

impl Queue {
    /// Every queue and topic.
    pub const ALL: [Queue; 7] = [
        Queue::BackupRequests,
        Queue::SnapshotChecks,
        Queue::CopyRequests,
        Queue::RestoreRequests,
        Queue::RestoreEvents,
        Queue::Alerts,
        Queue::DeadLetters,
    ];

    /// The entity name, e.g. `backup-requests`.
    pub fn name(self) -> &'static str {
        match self {
            Queue::BackupRequests => "backup-requests",
            Queue::SnapshotChecks => "snapshot-checks",
            Queue::CopyRequests => "copy-requests",
            Queue::RestoreRequests => "restore-requests",
            Queue::RestoreEvents => "restore-events",
            Queue::Alerts => "alerts",
            Queue::DeadLetters => "dead-letters",
        }
    }

    /// The queue with entity name `name`.
    pub fn from_name(name: &str) -> Option<Queue> {
        Queue::ALL.into_iter().find(|q| q.name() == name)
    }
}

/// A message type bound to one queue.
pub trait Message: Serialize + DeserializeOwned {
    /// The queue or topic it travels on.
    const QUEUE: Queue;
    /// The schema version this build writes and reads.
    const SCHEMA_VERSION: u32;
    /// The deterministic message id (Service Bus duplicate detection drops resends).
    fn message_id(&self) -> String;
}

/// Why a message body can never be handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// Not a JSON object.
    #[error("message body is not a JSON object: {0}")]
    NotJson(String),
    /// `schemaVersion` missing or not a number.
    #[error("message has no numeric schemaVersion")]
    MissingSchemaVersion,
    /// A version this build does not know.
    #[error("message schemaVersion {found} is not supported (this build reads {supported})")]
    UnsupportedSchemaVersion {
        /// The version found.
        found: u64,
        /// The version understood.
        supported: u32,
    },
    /// A field is missing, of the wrong type or invalid.
    #[error("message field {field}: {problem}")]
    InvalidField {
        /// Path of the field, e.g. `reason.slot`.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

impl ContractError {
    /// A short machine-readable reason for dead-letter records.
    pub fn reason_code(&self) -> &'static str {
        match self {
            ContractError::NotJson(_) => "MalformedMessage",
            ContractError::MissingSchemaVersion | ContractError::UnsupportedSchemaVersion { .. } => {
                "UnsupportedSchemaVersion"
            }
            ContractError::InvalidField { .. } => "InvalidMessage",
        }
    }
}

/// Decodes a message body of type `M`, checking the schema version first.
///
/// # Errors
/// [`ContractError`] saying what makes the body impossible to handle.
pub fn decode<M: Message>(body: &[u8]) -> Result<M, ContractError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| ContractError::NotJson(e.to_string()))?;
    decode_value(value)
}

/// Like [`decode`], from a parsed JSON value.
///
/// # Errors
/// [`ContractError`] saying what makes the body impossible to handle.
pub fn decode_value<M: Message>(value: serde_json::Value) -> Result<M, ContractError> {
    let Some(object) = value.as_object() else {
        return Err(ContractError::NotJson("expected an object".to_owned()));
    };
    let version =
        object.get("schemaVersion").and_then(serde_json::Value::as_u64).ok_or(ContractError::MissingSchemaVersion)?;
    if version != u64::from(M::SCHEMA_VERSION) {
        return Err(ContractError::UnsupportedSchemaVersion { found: version, supported: M::SCHEMA_VERSION });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        ContractError::InvalidField { field, problem: e.into_inner().to_string() }
    })
}

/// Encodes a message body.
pub fn encode<M: Message>(message: &M) -> Vec<u8> {
    // Serializing these plain structs cannot fail: no maps with non-string keys, no
    // user-defined Serialize impls that error.
    serde_json::to_vec(message).unwrap_or_default()
}

/// Why a backup was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum BackupReason {
    /// A schedule slot fell due.
    #[serde(rename_all = "camelCase")]
    Scheduled {
        /// The slot.
        slot: DateTime<Utc>,
    },
    /// An upgrade is about to start.
    #[serde(rename_all = "camelCase")]
    PreUpgrade {
        /// The triggering event's id.
        event_id: String,
        /// The Kubernetes version running.
        current_version: Option<String>,
        /// The version it upgrades to.
        target_version: Option<String>,
    },
    /// Someone asked (CLI, pipeline).
    #[serde(rename_all = "camelCase")]
    OnDemand {
        /// The request's id.
        request_id: String,
        /// Who asked, for the audit trail.
        requested_by: Option<String>,
    },
}

/// How urgently a message should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Priority {
    /// Scheduled work.
    #[default]
    Normal,
    /// Pre-upgrade and on-demand work.
    High,
}

/// `backup-requests`: back up one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupRequest {
    /// Always [`BackupRequest::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Deterministic id of the backup.
    pub backup_id: BackupId,
    /// The cluster to back up.
    pub cluster: ClusterName,
    /// The policy that selects what to back up.
    pub policy: PolicyName,
    /// Why.
    pub reason: BackupReason,
    /// Urgency.
    #[serde(default)]
    pub priority: Priority,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// Which step of the backup this message asks for: the whole backup (the default, what
    /// schedules and people send), one part of a sharded one, or the join of its parts.
    #[serde(default, skip_serializing_if = "BackupStep::is_whole")]
    pub step: BackupStep,
}

/// The step of a backup a [`BackupRequest`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum BackupStep {
    /// The backup (split into shards when its policy says so).
    #[default]
    Whole,
    /// One part of a sharded backup.
    Shard(Shard),
    /// Join the parts into the one archive, once every part is done; sent by each part as it
    /// ends, naming that part (so each part's join is a distinct message).
    Join(Shard),
}

impl BackupStep {
    /// Whether it is [`BackupStep::Whole`].
    pub fn is_whole(&self) -> bool {
        matches!(self, BackupStep::Whole)
    }
}

impl Message for BackupRequest {
    const QUEUE: Queue = Queue::BackupRequests;
    const SCHEMA_VERSION: u32 = 1;
    fn message_id(&self) -> String {
        match self.step {
            BackupStep::Whole => format!("{}.{}", self.cluster, self.backup_id),
            BackupStep::Shard(s) => format!("{}.{}.shard-{}", self.cluster, self.backup_id, s.index),
            BackupStep::Join(s) => format!("{}.{}.join-after-{}", self.cluster, self.backup_id, s.index),
        }
    }
}

/// `snapshot-checks`: see whether a backup's volume snapshots are ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotCheck {
    /// Always 1.
    pub schema_version: u32,
    /// The backup.
    pub backup_id: BackupId,
    /// Its cluster.
    pub cluster: ClusterName,
    /// Which poll this is (1, 2, ...): part of the message id, so each poll is sent once.
    pub attempt: u32,
    /// Give up (and fail the backup) after this.
    pub deadline: DateTime<Utc>,
}

impl Message for SnapshotCheck {
    const QUEUE: Queue = Queue::SnapshotChecks;
    const SCHEMA_VERSION: u32 = 1;
    fn message_id(&self) -> String {
        format!("{}.{}.check-{}", self.cluster, self.backup_id, self.attempt)
    }
}

/// `copy-requests`: copy a committed backup to the second region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CopyRequest {
    /// Always 1.
    pub schema_version: u32,
    /// The backup.
    pub backup_id: BackupId,
    /// Its cluster.
    pub cluster: ClusterName,
    /// The region to copy to.
    pub target_region: String,
    /// Which poll this is (0 for the request itself).
    pub attempt: u32,
    /// Which round of copying: 0 for the first, `n` for the n-th retry of a replica that failed
    /// (see `domain::replica_retry`). Left out when 0, as before rounds existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Message for CopyRequest {
    const QUEUE: Queue = Queue::CopyRequests;
    const SCHEMA_VERSION: u32 = 1;
    fn message_id(&self) -> String {
        match self.round {
            0 => format!("{}.{}.copy-{}.{}", self.cluster, self.backup_id, self.target_region, self.attempt),
            round => format!(
                "{}.{}.copy-{}.retry-{round}.{}",
                self.cluster, self.backup_id, self.target_region, self.attempt
            ),
        }
    }
}

pub use super::restore_request::{BackupSelector, RestoreRequest};

/// Where a restore stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RestorePhase {
    /// Accepted, planning.
    Planning,
    /// Applying objects.
    Applying,
    /// Everything applied.
    Completed,
    /// Some objects failed.
    PartiallyFailed,
    /// Nothing could be applied, or the request was refused.
    Failed,
}

/// `restore-events`: progress and results of a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreEvent {
    /// Always 1.
    pub schema_version: u32,
    /// The restore.
    pub restore_id: String,
    /// Its phase.
    pub phase: RestorePhase,
    /// Increases with each event of one restore: part of the id, and orders late arrivals.
    pub sequence: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// Human-readable detail.
    pub detail: String,
    /// Objects per outcome so far.
    #[serde(default)]
    pub counts: RestoreCounts,
    /// The recovery time achieved, once the restore has ended.
    #[serde(default)]
    pub rto_seconds: Option<u64>,
}

/// Objects of a restore per outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreCounts {
    /// Objects the plan sends.
    pub planned: u64,
    /// Created.
    pub created: u64,
    /// Replaced (conflict policy `update`).
    pub updated: u64,
    /// Already there and left alone (conflict policy `skip`, or created by an earlier attempt
    /// of this restore).
    pub unchanged: u64,
    /// Left out by the plan (owned by a restored controller, filtered, replaced by a snapshot…).
    pub skipped: u64,
    /// Refused by the API server, or in conflict under policy `fail`.
    pub failed: u64,
}

impl Message for RestoreEvent {
    const QUEUE: Queue = Queue::RestoreEvents;
    const SCHEMA_VERSION: u32 = 1;
    fn message_id(&self) -> String {
        format!("restore.{}.event-{}", self.restore_id, self.sequence)
    }
}

/// Severity of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
}

/// Whether an alert is firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AlertState {
    /// The condition holds.
    Firing,
    /// The condition cleared.
    Resolved,
}

/// `alerts`: one notification of an alert's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Alert {
    /// Always 1.
    pub schema_version: u32,
    /// Stable id of the condition (e.g. `rpo.prod-weu-1.nightly`).
    pub alert_id: String,
    /// The cluster concerned.
    pub cluster: ClusterName,
    /// Firing or resolved.
    pub state: AlertState,
    /// How bad.
    pub severity: Severity,
    /// One line for a pager.
    pub summary: String,
    /// Increases with each notification of one alert: part of the id.
    pub notification: u32,
    /// When.
    pub at: DateTime<Utc>,
}

impl Message for Alert {
    const QUEUE: Queue = Queue::Alerts;
    const SCHEMA_VERSION: u32 = 1;
    fn message_id(&self) -> String {
        format!("alert.{}.{}", self.alert_id, self.notification)
    }
}

/// `dead-letters`: a message a handler refused, kept with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeadLetter {
    /// Always 1.
    pub schema_version: u32,
    /// The queue it came from.
    pub queue: String,
    /// Its message id.
    pub message_id: String,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable detail.
    pub description: String,
    /// The body as received (lossy UTF-8).
    pub body: String,
    /// When it was refused.
    pub at: DateTime<Utc>,
}

impl Message for DeadLetter {
    const QUEUE: Queue = Queue::DeadLetters;
    const SCHEMA_VERSION: u32 = 1;
    fn message_id(&self) -> String {
        format!("dl.{}.{}", self.queue, self.message_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> BackupRequest {
        BackupRequest {
            schema_version: 1,
            backup_id: BackupId::parse("nightly-20261122t020000z").unwrap(),
            cluster: ClusterName::new("prod").unwrap(),
            policy: PolicyName::new("nightly").unwrap(),
            reason: BackupReason::Scheduled { slot: Utc::now() },
            priority: Priority::Normal,
            requested_at: Utc::now(),
            step: BackupStep::Whole,
        }
    }

    #[test]
    fn steps_have_distinct_ids_and_old_requests_still_decode() {
        let whole = request();
        let encoded = serde_json::to_value(&whole).unwrap();
        assert!(encoded.get("step").is_none(), "a whole backup's body is what older builds wrote");
        let shard = BackupRequest { step: BackupStep::Shard(Shard { index: 2, count: 3 }), ..whole.clone() };
        let join = BackupRequest { step: BackupStep::Join(Shard { index: 2, count: 3 }), ..whole.clone() };
        for r in [&shard, &join] {
            let back: BackupRequest = decode(&encode(r)).unwrap();
            assert_eq!(&back, r);
        }
        assert_eq!(shard.message_id(), "prod.nightly-20261122t020000z.shard-2");
        assert_eq!(join.message_id(), "prod.nightly-20261122t020000z.join-after-2");
        assert_ne!(whole.message_id(), shard.message_id());
    }

    #[test]
    fn round_trips_and_has_a_deterministic_id() {
        let r = request();
        let back: BackupRequest = decode(&encode(&r)).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.message_id(), "prod.nightly-20261122t020000z");
    }

    #[test]
    fn tells_apart_the_three_ways_a_body_is_bad() {
        assert!(matches!(decode::<BackupRequest>(b"not json"), Err(ContractError::NotJson(_))));
        assert!(matches!(
            decode::<BackupRequest>(br#"{"schemaVersion": 9}"#),
            Err(ContractError::UnsupportedSchemaVersion { found: 9, supported: 1 })
        ));
        let mut v = serde_json::to_value(request()).unwrap();
        v["cluster"] = "Not A Name".into();
        match decode_value::<BackupRequest>(v) {
            Err(ContractError::InvalidField { field, .. }) => assert_eq!(field, "cluster"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn queue_names_round_trip() {
        for q in Queue::ALL {
            assert_eq!(Queue::from_name(q.name()), Some(q));
        }
    }
}

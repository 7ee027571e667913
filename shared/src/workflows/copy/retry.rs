//! Retries of replicas that failed. A timer run looks at the backups of every cluster a
//! replicating policy protects and, for each committed backup whose replica gave up and whose
//! next round is due ([`crate::domain::replica_retry::due_round`]: at most
//! `max_retries` rounds, each after a longer wait), sends a `CopyRequest` of that round. The
//! `copy` function starts the round when the message arrives (the failure moves to
//! `earlier_failures`, `retries` counts the round, a new deadline), so:
//! - a second timer run before the message is handled sends the same round again with the same
//!   `MessageId`, which duplicate detection drops (and would find the round started if not);
//! - a redelivered message finds its round started and copies on;
//! - a late message of an earlier round is ignored ([`super::CopyOutcome::Superseded`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::CopyError;
use crate::catalog;
use crate::domain::messages::{CopyRequest, Message, encode};
use crate::domain::names::ClusterName;
use crate::domain::policy::Config;
use crate::domain::replica_retry::{ReplicaRetryPolicy, due_round};
use crate::ports::bus::{Bus, OutgoingMessage};
use crate::ports::state_store::StateStore;

/// Sends the retry rounds due at `now`; one line per round sent.
///
/// # Errors
/// [`CopyError`] when the catalog cannot be read or a message not sent; the next run retries.
pub async fn send_due(
    state: &dyn StateStore,
    bus: &dyn Bus,
    config: &Config,
    policy: &ReplicaRetryPolicy,
    now: DateTime<Utc>,
) -> Result<Vec<String>, CopyError> {
    let clusters: BTreeSet<&ClusterName> = config
        .policies
        .values()
        .filter(|p| p.spec.replication.is_some())
        .flat_map(|p| p.spec.clusters.iter())
        .collect();
    let mut sent = Vec::new();
    for cluster in clusters {
        for record in catalog::list(state, cluster).await? {
            let (Some(round), Some(replica)) = (due_round(&record, policy, now), record.replica.as_ref()) else {
                continue;
            };
            let request = CopyRequest {
                schema_version: CopyRequest::SCHEMA_VERSION,
                backup_id: record.backup_id.clone(),
                cluster: record.cluster.clone(),
                target_region: replica.region.clone(),
                attempt: 0,
                round,
            };
            let mut message = OutgoingMessage::json(CopyRequest::QUEUE.name(), request.message_id(), encode(&request));
            message.correlation_id = Some(record.backup_id.to_string());
            bus.send(message).await?;
            tracing::info!(backup.id = %record.backup_id, region = %replica.region, round, "replica copy retried");
            sent.push(format!(
                "backup {} of {}: copy to {} retried (round {round} of {})",
                record.backup_id, record.cluster, replica.region, policy.max_retries
            ));
        }
    }
    Ok(sent)
}

//! Restore records in the state store (table `restores`, partition = target cluster, row =
//! restore id): the claim that makes a redelivered request one restore, and its progress.

use crate::domain::names::ClusterName;
use crate::domain::records::RestoreRecord;
use crate::layout::TABLE_RESTORES;
use crate::ports::state_store::{ETag, Entity, Query, StateStore, StateStoreError, query_all};

/// Errors of the restore records.
#[derive(Debug, thiserror::Error)]
pub enum RestoreRecordError {
    /// The store failed.
    #[error("restore record {cluster}/{restore_id}")]
    Store {
        /// Target cluster.
        cluster: String,
        /// Restore.
        restore_id: String,
        /// The cause.
        #[source]
        source: Box<StateStoreError>,
    },
    /// A stored record could not be read.
    #[error("restore record {cluster}/{restore_id} is unreadable: {reason}")]
    Corrupt {
        /// Target cluster.
        cluster: String,
        /// Restore.
        restore_id: String,
        /// Why.
        reason: String,
    },
}

impl RestoreRecordError {
    /// Whether a retry may succeed (including: someone else saved first; reload).
    pub fn is_transient(&self) -> bool {
        matches!(self, RestoreRecordError::Store { source, .. }
            if source.is_transient() || source.is_precondition_failed())
    }
}

fn entity(record: &RestoreRecord) -> Entity {
    Entity::new(record.request.target_cluster.as_str(), record.restore_id.as_str())
        .with("phase", serde_json::to_value(record.phase).unwrap_or_default())
        .with("startedAt", record.started_at.to_rfc3339())
        .with("doc", serde_json::to_string(record).unwrap_or_default())
}

fn decode(entity: &Entity) -> Result<RestoreRecord, RestoreRecordError> {
    let corrupt = |reason: String| RestoreRecordError::Corrupt {
        cluster: entity.partition_key.clone(),
        restore_id: entity.row_key.clone(),
        reason,
    };
    let doc = entity.str("doc").ok_or_else(|| corrupt("no doc property".into()))?;
    serde_json::from_str(doc).map_err(|e| corrupt(e.to_string()))
}

fn store_err(cluster: &str, restore_id: &str) -> impl FnOnce(StateStoreError) -> RestoreRecordError {
    let (cluster, restore_id) = (cluster.to_owned(), restore_id.to_owned());
    move |source| RestoreRecordError::Store { cluster, restore_id, source: Box::new(source) }
}

/// Creates the record unless it exists; returns the stored record (the existing one on a
/// redelivery) and its ETag, and whether this call created it.
///
/// # Errors
/// [`RestoreRecordError`].
pub async fn claim(
    state: &dyn StateStore,
    record: &RestoreRecord,
) -> Result<(RestoreRecord, ETag, bool), RestoreRecordError> {
    let (c, r) = (record.request.target_cluster.as_str(), record.restore_id.as_str());
    match state.insert(TABLE_RESTORES, &entity(record)).await {
        Ok(etag) => Ok((record.clone(), etag, true)),
        Err(e) if e.is_already_exists() => match get(state, &record.request.target_cluster, r).await? {
            Some((existing, etag)) => Ok((existing, etag, false)),
            None => Err(store_err(c, r)(e)),
        },
        Err(e) => Err(store_err(c, r)(e)),
    }
}

/// The record and its ETag, if it exists.
///
/// # Errors
/// [`RestoreRecordError`].
pub async fn get(
    state: &dyn StateStore,
    target: &ClusterName,
    restore_id: &str,
) -> Result<Option<(RestoreRecord, ETag)>, RestoreRecordError> {
    let found =
        state.get(TABLE_RESTORES, target.as_str(), restore_id).await.map_err(store_err(target.as_str(), restore_id))?;
    match found {
        Some(e) => {
            let etag = e.etag.clone().unwrap_or(ETag(String::new()));
            Ok(Some((decode(&e)?, etag)))
        }
        None => Ok(None),
    }
}

/// Saves the record while it still has `etag`; returns the new ETag.
///
/// # Errors
/// [`RestoreRecordError`].
pub async fn save(state: &dyn StateStore, record: &RestoreRecord, etag: &ETag) -> Result<ETag, RestoreRecordError> {
    state
        .update(TABLE_RESTORES, &entity(record), etag)
        .await
        .map_err(store_err(record.request.target_cluster.as_str(), &record.restore_id))
}

/// Every restore record, in target cluster then id order.
///
/// # Errors
/// [`RestoreRecordError`].
pub async fn list_all(state: &dyn StateStore) -> Result<Vec<RestoreRecord>, RestoreRecordError> {
    let entities = query_all(state, TABLE_RESTORES, &Query::all()).await.map_err(store_err("*", "*"))?;
    entities.iter().map(decode).collect()
}

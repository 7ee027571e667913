//! The backup catalog: typed access to backup records in the state store (table `backups`,
//! partition = cluster, row = backup id). The record travels as one JSON document, with its
//! state also stored flat so queries can filter on it.

use crate::domain::ids::BackupId;
use crate::domain::names::ClusterName;
use crate::domain::records::BackupRecord;
use crate::layout::TABLE_BACKUPS;
use crate::ports::state_store::{
    BatchOp, ETag, Entity, MAX_BATCH_OPERATIONS, Query, StateStore, StateStoreError, query_all,
};

/// Errors of the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The store failed.
    #[error("catalog entry {cluster}/{backup_id}")]
    Store {
        /// Cluster.
        cluster: String,
        /// Backup.
        backup_id: String,
        /// The cause.
        #[source]
        source: Box<StateStoreError>,
    },
    /// A stored record could not be read (written by a newer or broken build).
    #[error("catalog entry {cluster}/{backup_id} is unreadable: {reason}")]
    Corrupt {
        /// Cluster.
        cluster: String,
        /// Backup.
        backup_id: String,
        /// Why.
        reason: String,
    },
}

impl CatalogError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, CatalogError::Store { source, .. } if source.is_transient())
    }
    /// Whether the record changed since it was read (reload and decide again).
    pub fn is_changed(&self) -> bool {
        matches!(self, CatalogError::Store { source, .. } if source.is_precondition_failed())
    }
    /// Whether the record is no longer in the catalog.
    pub fn is_gone(&self) -> bool {
        matches!(self, CatalogError::Store { source, .. } if source.is_not_found())
    }
}

/// The outcome of [`claim`].
#[derive(Debug)]
pub enum Claim {
    /// This caller created the record.
    New(ETag),
    /// The record was already there (a redelivery, or another request for the same backup).
    Existing(Box<BackupRecord>, ETag),
}

fn entity(record: &BackupRecord) -> Entity {
    let doc = serde_json::to_string(record).unwrap_or_default();
    Entity::new(record.cluster.as_str(), record.backup_id.as_str())
        .with("state", serde_json::to_value(record.state).unwrap_or_default())
        .with("policy", record.policy.as_str())
        .with("createdAt", record.created_at.to_rfc3339())
        .with("doc", doc)
}

fn decode(entity: &Entity) -> Result<BackupRecord, CatalogError> {
    let corrupt = |reason: String| CatalogError::Corrupt {
        cluster: entity.partition_key.clone(),
        backup_id: entity.row_key.clone(),
        reason,
    };
    let doc = entity.str("doc").ok_or_else(|| corrupt("no doc property".into()))?;
    serde_json::from_str(doc).map_err(|e| corrupt(e.to_string()))
}

fn store_err(cluster: &str, backup_id: &str) -> impl FnOnce(StateStoreError) -> CatalogError {
    let (cluster, backup_id) = (cluster.to_owned(), backup_id.to_owned());
    move |source| CatalogError::Store { cluster, backup_id, source: Box::new(source) }
}

/// Creates the record unless it exists (insert-if-absent): how a handler claims a backup.
///
/// # Errors
/// [`CatalogError`].
pub async fn claim(state: &dyn StateStore, record: &BackupRecord) -> Result<Claim, CatalogError> {
    let (c, b) = (record.cluster.as_str(), record.backup_id.as_str());
    match state.insert(TABLE_BACKUPS, &entity(record)).await {
        Ok(etag) => Ok(Claim::New(etag)),
        Err(e) if e.is_already_exists() => match get(state, &record.cluster, &record.backup_id).await? {
            Some((existing, etag)) => Ok(Claim::Existing(Box::new(existing), etag)),
            // Deleted between the two calls (pruned): claim again.
            None => state.insert(TABLE_BACKUPS, &entity(record)).await.map(Claim::New).map_err(store_err(c, b)),
        },
        Err(e) => Err(store_err(c, b)(e)),
    }
}

/// The record and its ETag, if it exists.
///
/// # Errors
/// [`CatalogError`].
pub async fn get(
    state: &dyn StateStore,
    cluster: &ClusterName,
    backup_id: &BackupId,
) -> Result<Option<(BackupRecord, ETag)>, CatalogError> {
    let found = state
        .get(TABLE_BACKUPS, cluster.as_str(), backup_id.as_str())
        .await
        .map_err(store_err(cluster.as_str(), backup_id.as_str()))?;
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
/// [`CatalogError`]; [`CatalogError::is_changed`] when someone else saved it first.
pub async fn save(state: &dyn StateStore, record: &BackupRecord, etag: &ETag) -> Result<ETag, CatalogError> {
    state
        .update(TABLE_BACKUPS, &entity(record), etag)
        .await
        .map_err(store_err(record.cluster.as_str(), record.backup_id.as_str()))
}

/// Saves each record over its ETag (all of one cluster), in transactions of up to
/// [`MAX_BATCH_OPERATIONS`]: one request per hundred records. A transaction refused because
/// one of its records changed or went meanwhile is done again one record at a time, so that
/// the others are saved. The new ETag of each, `None` for one that changed or went.
///
/// # Errors
/// [`CatalogError`] when the store fails (not for a record that changed).
pub async fn save_all(
    state: &dyn StateStore,
    cluster: &ClusterName,
    records: &[(BackupRecord, ETag)],
) -> Result<Vec<Option<ETag>>, CatalogError> {
    let mut saved = Vec::with_capacity(records.len());
    for chunk in records.chunks(MAX_BATCH_OPERATIONS) {
        let ops: Vec<BatchOp> = chunk
            .iter()
            .map(|(record, etag)| {
                let mut e = entity(record);
                e.etag = Some(etag.clone());
                BatchOp::Update(e)
            })
            .collect();
        match state.transact(TABLE_BACKUPS, cluster.as_str(), &ops).await {
            Ok(etags) => saved.extend(etags),
            Err(e) if e.is_precondition_failed() || e.is_not_found() => {
                for (record, etag) in chunk {
                    saved.push(match save(state, record, etag).await {
                        Ok(etag) => Some(etag),
                        Err(e) if e.is_changed() || e.is_gone() => None,
                        Err(e) => return Err(e),
                    });
                }
            }
            Err(e) => return Err(store_err(cluster.as_str(), "(batch)")(e)),
        }
    }
    Ok(saved)
}

/// Deletes each entry of `cluster` while it still has its ETag, batched as [`save_all`] does;
/// whether each is gone (one already gone counts, one that changed meanwhile does not).
///
/// # Errors
/// [`CatalogError`] when the store fails.
pub async fn delete_all(
    state: &dyn StateStore,
    cluster: &ClusterName,
    entries: &[(BackupId, ETag)],
) -> Result<Vec<bool>, CatalogError> {
    let mut gone = Vec::with_capacity(entries.len());
    for chunk in entries.chunks(MAX_BATCH_OPERATIONS) {
        let ops: Vec<BatchOp> = chunk
            .iter()
            .map(|(id, etag)| BatchOp::Delete { row_key: id.to_string(), if_match: Some(etag.clone()) })
            .collect();
        match state.transact(TABLE_BACKUPS, cluster.as_str(), &ops).await {
            Ok(_) => gone.extend(chunk.iter().map(|_| true)),
            Err(e) if e.is_precondition_failed() || e.is_not_found() => {
                for (id, etag) in chunk {
                    gone.push(match state.delete(TABLE_BACKUPS, cluster.as_str(), id.as_str(), Some(etag)).await {
                        Ok(()) => true,
                        Err(e) if e.is_not_found() => true,
                        Err(e) if e.is_precondition_failed() => false,
                        Err(e) => return Err(store_err(cluster.as_str(), id.as_str())(e)),
                    });
                }
            }
            Err(e) => return Err(store_err(cluster.as_str(), "(batch)")(e)),
        }
    }
    Ok(gone)
}

/// Every backup of `cluster`, in id order.
///
/// # Errors
/// [`CatalogError`].
pub async fn list(state: &dyn StateStore, cluster: &ClusterName) -> Result<Vec<BackupRecord>, CatalogError> {
    let entities = query_all(state, TABLE_BACKUPS, &Query::partition(cluster.as_str()))
        .await
        .map_err(store_err(cluster.as_str(), "*"))?;
    entities.iter().map(decode).collect()
}

/// Every backup of `cluster` with its ETag, in id order: for callers that then change some of
/// them without reading each again.
///
/// # Errors
/// [`CatalogError`].
pub async fn list_versions(
    state: &dyn StateStore,
    cluster: &ClusterName,
) -> Result<Vec<(BackupRecord, ETag)>, CatalogError> {
    let entities = query_all(state, TABLE_BACKUPS, &Query::partition(cluster.as_str()))
        .await
        .map_err(store_err(cluster.as_str(), "*"))?;
    entities.iter().map(|e| Ok((decode(e)?, e.etag.clone().unwrap_or(ETag(String::new()))))).collect()
}

/// Every backup of every cluster in the catalog, in cluster then id order (clusters no longer
/// declared included).
///
/// # Errors
/// [`CatalogError`].
pub async fn list_all(state: &dyn StateStore) -> Result<Vec<BackupRecord>, CatalogError> {
    let entities = query_all(state, TABLE_BACKUPS, &Query::all()).await.map_err(store_err("*", "*"))?;
    entities.iter().map(decode).collect()
}

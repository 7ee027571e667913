//! Legal holds: pinned backups that retention never removes (table `holds`, partition =
//! cluster, row = backup id, with who placed it, why and when).

use chrono::{DateTime, Utc};

use crate::domain::ids::BackupId;
use crate::domain::names::ClusterName;
use crate::layout::TABLE_HOLDS;
use crate::ports::state_store::{Entity, Query, StateStore, StateStoreError, query_all};

/// One hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    /// The held backup.
    pub backup_id: String,
    /// Why (a case or ticket reference).
    pub reason: String,
    /// When it was placed.
    pub placed_at: Option<DateTime<Utc>>,
}

/// Places (or replaces) a hold on a backup.
///
/// # Errors
/// The store's error.
pub async fn place(
    state: &dyn StateStore,
    cluster: &ClusterName,
    backup: &BackupId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StateStoreError> {
    let entity =
        Entity::new(cluster.as_str(), backup.as_str()).with("reason", reason).with("placedAt", now.to_rfc3339());
    state.upsert(TABLE_HOLDS, &entity).await.map(|_| ())
}

/// Lifts a hold; `Ok(false)` when there was none.
///
/// # Errors
/// The store's error.
pub async fn lift(state: &dyn StateStore, cluster: &ClusterName, backup: &BackupId) -> Result<bool, StateStoreError> {
    match state.delete(TABLE_HOLDS, cluster.as_str(), backup.as_str(), None).await {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The holds on a cluster's backups.
///
/// # Errors
/// The store's error.
pub async fn list(state: &dyn StateStore, cluster: &ClusterName) -> Result<Vec<Hold>, StateStoreError> {
    let entities = query_all(state, TABLE_HOLDS, &Query::partition(cluster.as_str())).await?;
    Ok(entities
        .iter()
        .map(|e| Hold {
            backup_id: e.row_key.clone(),
            reason: e.str("reason").unwrap_or_default().to_owned(),
            placed_at: e.str("placedAt").and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc()),
        })
        .collect())
}

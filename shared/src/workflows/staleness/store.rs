//! Alert lifecycles in the state store (table `alerts`, partition = cluster, row = alert id),
//! written with ETag guards so that two runs of the timer notify once.

use chrono::{DateTime, Utc};

use crate::domain::messages::{AlertState, Severity};
use crate::domain::names::ClusterName;
use crate::domain::staleness::AlertStatus;
use crate::layout::TABLE_ALERTS;
use crate::ports::state_store::{ETag, Entity, StateStore, StateStoreError};

/// Errors of the alert records.
#[derive(Debug, thiserror::Error)]
pub enum AlertRecordError {
    /// The store failed.
    #[error("alert record {cluster}/{alert_id}")]
    Store {
        /// Cluster.
        cluster: String,
        /// Alert.
        alert_id: String,
        /// The cause.
        #[source]
        source: Box<StateStoreError>,
    },
    /// A stored record could not be read.
    #[error("alert record {cluster}/{alert_id} is unreadable: {reason}")]
    Corrupt {
        /// Cluster.
        cluster: String,
        /// Alert.
        alert_id: String,
        /// Why.
        reason: String,
    },
}

impl AlertRecordError {
    /// Whether another run wrote the record first (reload and decide again, or leave it).
    pub fn is_raced(&self) -> bool {
        matches!(self, Self::Store { source, .. } if source.is_precondition_failed() || source.is_already_exists())
    }
}

fn entity(cluster: &ClusterName, alert_id: &str, s: &AlertStatus) -> Entity {
    Entity::new(cluster.as_str(), alert_id)
        .with("state", serde_json::to_value(s.state).unwrap_or_default())
        .with("severity", serde_json::to_value(s.severity).unwrap_or_default())
        .with("notification", i64::from(s.notification))
        .with("firedAt", s.fired_at.to_rfc3339())
        .with("notifiedAt", s.notified_at.to_rfc3339())
        .with("summary", s.summary.as_str())
}

fn decode(e: &Entity) -> Result<AlertStatus, String> {
    fn field<T: serde::de::DeserializeOwned>(e: &Entity, name: &str) -> Result<T, String> {
        let v = e.properties.get(name).ok_or_else(|| format!("no {name} property"))?;
        serde_json::from_value(v.clone()).map_err(|err| format!("{name}: {err}"))
    }
    let time = |name: &str| -> Result<DateTime<Utc>, String> {
        let s: String = field(e, name)?;
        DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(|err| format!("{name}: {err}"))
    };
    let state: AlertState = field(e, "state")?;
    let severity: Severity = field(e, "severity")?;
    let notification = e.i64("notification").and_then(|n| u32::try_from(n).ok()).ok_or("no notification number")?;
    Ok(AlertStatus {
        state,
        severity,
        notification,
        fired_at: time("firedAt")?,
        notified_at: time("notifiedAt")?,
        summary: field(e, "summary")?,
    })
}

fn store_err(cluster: &ClusterName, alert_id: &str) -> impl FnOnce(StateStoreError) -> AlertRecordError {
    let (cluster, alert_id) = (cluster.to_string(), alert_id.to_owned());
    move |source| AlertRecordError::Store { cluster, alert_id, source: Box::new(source) }
}

/// The stored status of an alert and its ETag, if it has one.
///
/// # Errors
/// [`AlertRecordError`].
pub async fn load(
    state: &dyn StateStore,
    cluster: &ClusterName,
    alert_id: &str,
) -> Result<Option<(AlertStatus, ETag)>, AlertRecordError> {
    let Some(e) = state.get(TABLE_ALERTS, cluster.as_str(), alert_id).await.map_err(store_err(cluster, alert_id))?
    else {
        return Ok(None);
    };
    let status = decode(&e).map_err(|reason| AlertRecordError::Corrupt {
        cluster: cluster.to_string(),
        alert_id: alert_id.to_owned(),
        reason,
    })?;
    Ok(Some((status, e.etag.clone().unwrap_or(ETag(String::new())))))
}

/// Stores `status`: inserts it when `etag` is `None`, else replaces the record while it still
/// has `etag`. Returns the new ETag.
///
/// # Errors
/// [`AlertRecordError`]; [`AlertRecordError::is_raced`] when another run wrote first.
pub async fn save(
    state: &dyn StateStore,
    cluster: &ClusterName,
    alert_id: &str,
    status: &AlertStatus,
    etag: Option<&ETag>,
) -> Result<ETag, AlertRecordError> {
    let e = entity(cluster, alert_id, status);
    match etag {
        None => state.insert(TABLE_ALERTS, &e).await,
        Some(etag) => state.update(TABLE_ALERTS, &e, etag).await,
    }
    .map_err(store_err(cluster, alert_id))
}

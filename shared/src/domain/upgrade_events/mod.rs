//! Upgrade events: Event Grid deliveries (Event Grid schema or CloudEvents 1.0, one event or a
//! batch) read, classified and tied to a managed cluster. Pure: no IO.
//!
//! ```
//! use lifeboat_shared::domain::upgrade_events::{classify, parse_event, Signal, UpgradeTrigger};
//! let event = serde_json::json!({
//!     "id": "run-42", "eventType": "Lifeboat.PreUpgrade", "dataVersion": "1",
//!     "subject": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1",
//!     "data": {"currentVersion": "1.29.4", "targetVersion": "1.30.0"}
//! });
//! let event = classify(&parse_event(&event)?)?;
//! assert_eq!(event.signal.trigger(), Some(UpgradeTrigger::PreUpgrade));
//! assert_eq!(event.cluster.map(|c| c.name().to_owned()).as_deref(), Some("aks1"));
//! # Ok::<(), lifeboat_shared::domain::upgrade_events::EventError>(())
//! ```

mod cluster_id;
mod envelope;
mod signal;

use serde::{Deserialize, Serialize};

pub use cluster_id::ManagedClusterId;
pub use envelope::{EventEnvelope, EventSchema, parse_delivery, parse_delivery_value, parse_event};
pub use signal::{MaintenanceStatus, RollingPhase, Signal, UpgradeEvent, classify, event_types};

/// Why an event (or a delivery) cannot be read. None of these can succeed on redelivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The delivery is not JSON.
    #[error("the delivery is not JSON: {0}")]
    NotJson(String),
    /// The delivery is neither an event object nor an array of them.
    #[error("the delivery is neither an event nor an array of events")]
    NotAnEventOrBatch,
    /// An event is not a JSON object.
    #[error("the event is not a JSON object")]
    NotAnObject,
    /// Neither `eventType` (Event Grid schema) nor `specversion` (CloudEvents) is present.
    #[error("the event is in neither the Event Grid schema (eventType) nor CloudEvents (specversion)")]
    UnknownSchema,
    /// A CloudEvents version other than 1.0.
    #[error("CloudEvents specversion {0:?} is not supported (this build reads 1.0)")]
    UnsupportedSpecVersion(String),
    /// A required field is missing or empty.
    #[error("the event has no {0}")]
    MissingField(&'static str),
    /// A field has the wrong type or value.
    #[error("event field {field}: {problem}")]
    InvalidField {
        /// The field's path, e.g. `data.resourceInfo.properties.scheduledTime`.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

/// The kinds of event a policy may let start a pre-upgrade backup (`spec.preUpgrade.on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UpgradeTrigger {
    /// `Lifeboat.PreUpgrade`, published by a pipeline before `az aks upgrade`.
    PreUpgrade,
    /// `Microsoft.ContainerService.NodePoolRollingStarted`.
    NodePoolRollingStarted,
    /// AKS scheduled maintenance (`…ScheduledEventEmitted`), `Scheduled` and `Started`.
    ScheduledMaintenance,
    /// `Microsoft.ContainerService.NewKubernetesVersionAvailable`.
    NewKubernetesVersionAvailable,
    /// `Microsoft.ContainerService.ClusterSupportEnding`.
    ClusterSupportEnding,
    /// `Microsoft.ContainerService.ClusterSupportEnded`.
    ClusterSupportEnded,
    /// `Microsoft.Resources.ResourceWriteSuccess` on a managed cluster or its node pools
    /// (every write, not only upgrades).
    ResourceWriteSuccess,
}

impl UpgradeTrigger {
    /// What a policy without `preUpgrade.on` reacts to: the events that mean an upgrade is
    /// about to start or has just started.
    pub const DEFAULT: [UpgradeTrigger; 3] =
        [UpgradeTrigger::PreUpgrade, UpgradeTrigger::NodePoolRollingStarted, UpgradeTrigger::ScheduledMaintenance];
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

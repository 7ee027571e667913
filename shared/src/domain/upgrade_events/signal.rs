//! What an event means for Lifeboat: [`classify`] turns an [`EventEnvelope`] into an
//! [`UpgradeEvent`].

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::envelope::{EventEnvelope, parse_time};
use super::{EventError, ManagedClusterId, UpgradeTrigger};

/// The AKS system topic's event types, the ARM write event, the scheduled-maintenance
/// notice and Lifeboat's own pipeline event.
pub mod event_types {
    /// The list of available Kubernetes versions changed.
    pub const NEW_KUBERNETES_VERSION_AVAILABLE: &str = "Microsoft.ContainerService.NewKubernetesVersionAvailable";
    /// The cluster's version goes out of support soon.
    pub const CLUSTER_SUPPORT_ENDING: &str = "Microsoft.ContainerService.ClusterSupportEnding";
    /// The cluster's version went out of support.
    pub const CLUSTER_SUPPORT_ENDED: &str = "Microsoft.ContainerService.ClusterSupportEnded";
    /// A node pool started rolling (upgrade or update).
    pub const NODE_POOL_ROLLING_STARTED: &str = "Microsoft.ContainerService.NodePoolRollingStarted";
    /// A node pool finished rolling.
    pub const NODE_POOL_ROLLING_SUCCEEDED: &str = "Microsoft.ContainerService.NodePoolRollingSucceeded";
    /// A node pool's rolling failed.
    pub const NODE_POOL_ROLLING_FAILED: &str = "Microsoft.ContainerService.NodePoolRollingFailed";
    /// An ARM write succeeded (resource group or subscription topic).
    pub const RESOURCE_WRITE_SUCCESS: &str = "Microsoft.Resources.ResourceWriteSuccess";
    /// An AKS scheduled-maintenance notice (7 days and 24 hours ahead, then at each stage).
    pub const SCHEDULED_EVENT_EMITTED: &str =
        "Microsoft.ResourceNotifications.ContainerServiceEventResources.ScheduledEventEmitted";
    /// Lifeboat's custom event, published by a pipeline before `az aks upgrade`.
    pub const LIFEBOAT_PRE_UPGRADE: &str = "Lifeboat.PreUpgrade";

    /// Every type above.
    pub const ALL: [&str; 9] = [
        NEW_KUBERNETES_VERSION_AVAILABLE,
        CLUSTER_SUPPORT_ENDING,
        CLUSTER_SUPPORT_ENDED,
        NODE_POOL_ROLLING_STARTED,
        NODE_POOL_ROLLING_SUCCEEDED,
        NODE_POOL_ROLLING_FAILED,
        RESOURCE_WRITE_SUCCESS,
        SCHEDULED_EVENT_EMITTED,
        LIFEBOAT_PRE_UPGRADE,
    ];
}

/// How a node pool's rolling went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollingPhase {
    /// It started.
    Started,
    /// It succeeded.
    Succeeded,
    /// It failed.
    Failed,
}

impl RollingPhase {
    /// `started`, `succeeded` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RollingPhase::Started => "started",
            RollingPhase::Succeeded => "succeeded",
            RollingPhase::Failed => "failed",
        }
    }
}

/// The stage a scheduled maintenance notice reports (`eventStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceStatus {
    /// Announced (7 days and 24 hours ahead).
    Scheduled,
    /// Begun.
    Started,
    /// Done, cancelled, failed, or a stage this build does not know (kept as sent).
    Other(String),
}

/// What one event means for Lifeboat.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// New Kubernetes versions are available: an upgrade may follow.
    VersionsAvailable {
        /// `latestSupportedKubernetesVersion`.
        latest_supported: Option<String>,
    },
    /// The cluster's version goes (or went) out of support: an upgrade is due.
    SupportEnding {
        /// Whether support already ended.
        ended: bool,
        /// `kubernetesVersion`: the version running.
        current_version: Option<String>,
    },
    /// A write to the managed cluster (or one of its node pools) succeeded in ARM.
    ClusterWritten {
        /// `operationName`.
        operation: String,
    },
    /// A node pool rolls, as an upgrade or update does.
    NodePoolRolling {
        /// `nodePoolName`.
        node_pool: Option<String>,
        /// Started, succeeded or failed.
        phase: RollingPhase,
    },
    /// A scheduled maintenance (auto-upgrade, node OS upgrade, …) notice.
    Maintenance {
        /// `eventStatus`.
        status: MaintenanceStatus,
        /// `scheduledTime`: when it starts.
        scheduled_time: Option<DateTime<Utc>>,
        /// `eventId`: the maintenance's own id (the same across its notices).
        maintenance_id: Option<String>,
        /// `eventDetails` or `description`.
        details: Option<String>,
    },
    /// A pipeline is about to upgrade the cluster (`Lifeboat.PreUpgrade`).
    PreUpgrade {
        /// `data.currentVersion`.
        current_version: Option<String>,
        /// `data.targetVersion`.
        target_version: Option<String>,
    },
    /// Nothing Lifeboat acts on.
    Irrelevant {
        /// Why, for the log.
        why: String,
    },
}

/// One classified event.
#[derive(Debug, Clone, PartialEq)]
pub struct UpgradeEvent {
    /// The event's id.
    pub id: String,
    /// Its type, as sent.
    pub event_type: String,
    /// When it was published, if said.
    pub time: Option<DateTime<Utc>>,
    /// The managed cluster it is about, if any could be found.
    pub cluster: Option<ManagedClusterId>,
    /// What it means.
    pub signal: Signal,
}

impl Signal {
    /// The policy trigger this signal counts as (`spec.preUpgrade.on`), if it may start a
    /// backup at all. Rolling results and maintenance stages past `Started` never do.
    pub fn trigger(&self) -> Option<UpgradeTrigger> {
        match self {
            Signal::VersionsAvailable { .. } => Some(UpgradeTrigger::NewKubernetesVersionAvailable),
            Signal::SupportEnding { ended: false, .. } => Some(UpgradeTrigger::ClusterSupportEnding),
            Signal::SupportEnding { ended: true, .. } => Some(UpgradeTrigger::ClusterSupportEnded),
            Signal::ClusterWritten { .. } => Some(UpgradeTrigger::ResourceWriteSuccess),
            Signal::NodePoolRolling { phase: RollingPhase::Started, .. } => {
                Some(UpgradeTrigger::NodePoolRollingStarted)
            }
            Signal::Maintenance { status: MaintenanceStatus::Scheduled | MaintenanceStatus::Started, .. } => {
                Some(UpgradeTrigger::ScheduledMaintenance)
            }
            Signal::PreUpgrade { .. } => Some(UpgradeTrigger::PreUpgrade),
            Signal::NodePoolRolling { .. } | Signal::Maintenance { .. } | Signal::Irrelevant { .. } => None,
        }
    }

    /// The versions a backup taken for this signal records: (current, target).
    pub fn versions(&self) -> (Option<String>, Option<String>) {
        match self {
            Signal::VersionsAvailable { latest_supported } => (None, latest_supported.clone()),
            Signal::SupportEnding { current_version, .. } => (current_version.clone(), None),
            Signal::PreUpgrade { current_version, target_version } => (current_version.clone(), target_version.clone()),
            _ => (None, None),
        }
    }
}

/// Classifies an event: what it means and which cluster it is about.
///
/// # Errors
/// [`EventError::InvalidField`] when a field Lifeboat reads has the wrong type (a known event
/// with a malformed `data`).
pub fn classify(event: &EventEnvelope) -> Result<UpgradeEvent, EventError> {
    use event_types::*;
    let data = &event.data;
    let signal = match event.event_type.as_str() {
        NEW_KUBERNETES_VERSION_AVAILABLE => {
            Signal::VersionsAvailable { latest_supported: text(data, "/latestSupportedKubernetesVersion")? }
        }
        t @ (CLUSTER_SUPPORT_ENDING | CLUSTER_SUPPORT_ENDED) => Signal::SupportEnding {
            ended: t == CLUSTER_SUPPORT_ENDED,
            current_version: text(data, "/kubernetesVersion")?,
        },
        t @ (NODE_POOL_ROLLING_STARTED | NODE_POOL_ROLLING_SUCCEEDED | NODE_POOL_ROLLING_FAILED) => {
            let phase = match t {
                NODE_POOL_ROLLING_STARTED => RollingPhase::Started,
                NODE_POOL_ROLLING_SUCCEEDED => RollingPhase::Succeeded,
                _ => RollingPhase::Failed,
            };
            Signal::NodePoolRolling { node_pool: text(data, "/nodePoolName")?, phase }
        }
        RESOURCE_WRITE_SUCCESS => cluster_write(data)?,
        SCHEDULED_EVENT_EMITTED => maintenance(data)?,
        LIFEBOAT_PRE_UPGRADE => Signal::PreUpgrade {
            current_version: text(data, "/currentVersion")?,
            target_version: text(data, "/targetVersion")?,
        },
        other => Signal::Irrelevant { why: format!("event type {other} is not an upgrade signal") },
    };
    Ok(UpgradeEvent {
        id: event.id.clone(),
        event_type: event.event_type.clone(),
        time: event.time,
        cluster: cluster_of(event)?,
        signal,
    })
}

fn cluster_write(data: &Value) -> Result<Signal, EventError> {
    let operation = text(data, "/operationName")?.unwrap_or_default();
    let lower = operation.to_ascii_lowercase();
    Ok(if lower.starts_with("microsoft.containerservice/managedclusters") && lower.ends_with("/write") {
        Signal::ClusterWritten { operation }
    } else {
        Signal::Irrelevant { why: format!("ARM write {operation:?} is not a write to a managed cluster") }
    })
}

fn maintenance(data: &Value) -> Result<Signal, EventError> {
    const PROPS: &str = "/resourceInfo/properties";
    let status = match text(data, &format!("{PROPS}/eventStatus"))? {
        Some(s) if s.eq_ignore_ascii_case("scheduled") => MaintenanceStatus::Scheduled,
        Some(s) if s.eq_ignore_ascii_case("started") => MaintenanceStatus::Started,
        Some(s) => MaintenanceStatus::Other(s),
        None => return Err(EventError::MissingField("data.resourceInfo.properties.eventStatus")),
    };
    let scheduled_time = text(data, &format!("{PROPS}/scheduledTime"))?
        .map(|s| {
            parse_time(&s).ok_or_else(|| EventError::InvalidField {
                field: "data.resourceInfo.properties.scheduledTime".to_owned(),
                problem: "not an RFC 3339 time".to_owned(),
            })
        })
        .transpose()?;
    let details = match text(data, &format!("{PROPS}/eventDetails"))? {
        Some(d) => Some(d),
        None => text(data, &format!("{PROPS}/description"))?,
    };
    Ok(Signal::Maintenance {
        status,
        scheduled_time,
        maintenance_id: text(data, &format!("{PROPS}/eventId"))?,
        details,
    })
}

/// The managed cluster an event is about: from the fields that name it, most specific first
/// (`data.resourceUri` of ARM events, the maintenance notice's `resources`, then `subject`,
/// `topic`/`source`, `data.resourceInfo.id`, and the custom event's `data.resourceId`).
fn cluster_of(event: &EventEnvelope) -> Result<Option<ManagedClusterId>, EventError> {
    let data = &event.data;
    let mut candidates = vec![text(data, "/resourceUri")?];
    if let Some(Value::Array(resources)) = data.pointer("/resourceInfo/properties/resources") {
        candidates.extend(resources.iter().map(|r| r.as_str().map(str::to_owned)));
    }
    candidates.extend([
        event.subject.clone(),
        event.source.clone(),
        text(data, "/resourceInfo/id")?,
        text(data, "/resourceId")?,
    ]);
    Ok(candidates.into_iter().flatten().find_map(|c| ManagedClusterId::find_in(&c)))
}

/// An optional string at `pointer` in `data`; anything but a string or null is an error.
fn text(data: &Value, pointer: &str) -> Result<Option<String>, EventError> {
    match data.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(EventError::InvalidField {
            field: format!("data{}", pointer.replace('/', ".")),
            problem: "not a string".to_owned(),
        }),
    }
}

//! Adapters: the technologies behind the ports.

pub mod alert_config;
pub mod alert_fanout;
#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
pub mod bus_alert;
pub mod kube;
pub mod local_dir;
pub mod log_alert;
pub mod sqlite;
pub mod streaming_copier;
pub mod webhook;

//! Adapters: the technologies behind the ports.

#[cfg(feature = "azure")]
pub mod azure;
pub mod kube;
pub mod local_dir;
pub mod log_alert;
pub mod sqlite;

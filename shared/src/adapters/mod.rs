//! Adapters: the technologies behind the ports.

pub mod kube;
pub mod local_dir;
pub mod log_alert;
pub mod sqlite;

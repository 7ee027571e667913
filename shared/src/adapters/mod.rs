//! Adapters: the technologies behind the ports.

pub mod local_dir;
pub mod log_alert;
pub mod sqlite;

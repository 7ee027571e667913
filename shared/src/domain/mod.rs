//! The domain: pure decisions, no IO. Takes data and `now`, returns values.

pub mod arm_id;
pub mod hooks;
pub mod ids;
pub mod manifest;
pub mod messages;
pub mod names;
pub mod platform;
pub mod policy;
pub mod pre_upgrade_policy;
pub mod records;
pub mod replica_retry;
pub mod resources;
pub mod restore;
pub mod restore_access;
pub mod restore_request;
pub mod retention;
pub mod schedule;
pub mod selection;
pub mod shards;
pub mod staleness;
pub mod upgrade_events;

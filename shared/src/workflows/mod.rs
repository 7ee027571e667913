//! Workflows: what handlers run, on the domain and the ports. Each takes its ports and `now`
//! as arguments and returns a report of what it did.

pub mod backup;
pub mod copy;
pub mod drill;
pub mod prune;
pub mod regions;
pub mod restore;
pub mod retry;
pub mod schedule_tick;
pub mod snapshot_check;
pub mod staleness;
pub mod upgrade_event;

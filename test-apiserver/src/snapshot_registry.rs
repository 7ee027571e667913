//! The simulated cloud's disk snapshots, shared by every server in the process (as one Azure
//! subscription is shared by its clusters): the size of each snapshot cut, and which were
//! deleted. A second server ("another cluster") can so import a first one's snapshot handles.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// What the cloud knows about a snapshot handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandleState {
    /// Cut in this process, with its size in bytes.
    Known(i64),
    /// Cut in this process, then deleted.
    Deleted,
    /// Never seen (made elsewhere): assumed to exist.
    Unknown,
}

fn registry() -> std::sync::MutexGuard<'static, HashMap<String, HandleState>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, HandleState>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records a snapshot cut by the simulated driver.
pub(crate) fn record(handle: &str, bytes: i64) {
    registry().insert(handle.to_string(), HandleState::Known(bytes));
}

/// Records that a snapshot was deleted (its content had `deletionPolicy: Delete`).
pub(crate) fn forget(handle: &str) {
    registry().insert(handle.to_string(), HandleState::Deleted);
}

/// What is known of `handle`.
pub(crate) fn lookup(handle: &str) -> HandleState {
    registry().get(handle).copied().unwrap_or(HandleState::Unknown)
}

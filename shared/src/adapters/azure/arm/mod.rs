//! Azure Resource Manager: a small client of ours on the `azure_core` 1.x pipeline
//! ([`ArmClient`]: JSON GET/PUT/POST/DELETE, ARM's long-running operations, throttling with
//! `Retry-After`, errors naming the operation and the resource) and the adapters built on it:
//! [`ArmSnapshotCopier`] (cross-region snapshot copy).
//!
//! Why not the `azure_mgmt_*` crates: they sit on the legacy `azure_core` 0.x and are large;
//! the handful of ARM calls Lifeboat makes are plain JSON over the pipeline the storage
//! adapters already use (the same credentials, transport and redacted logging).

mod auth;
mod client;
mod error;
mod lro;
pub mod snapshot_copier;

pub use client::{ARM_ENDPOINT, ARM_SCOPE, ArmCall, ArmClient, ArmResponse, ArmSettings, ArmSetupError};
pub use error::{ArmError, ArmFault};
pub use snapshot_copier::ArmSnapshotCopier;

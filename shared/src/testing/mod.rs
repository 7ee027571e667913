//! Conformance suites: one per port, run by `tests/conformance_*.rs` against every adapter;
//! and [`counting_object_store`], a decorator tests measure object store traffic with (and,
//! with the `azure` feature, `counting_policy`, which measures Blob traffic at the HTTP level).
//!
//! Each suite is a set of async checks taking a factory that yields a fresh, empty instance of
//! the adapter. A check panics (it runs inside a test) with a message naming the contract
//! clause broken.

// Checks panic by design: they run inside tests, also when built with the `testing` feature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod counting_object_store;
#[cfg(feature = "azure")]
pub mod counting_policy;
pub mod object_store;
pub mod queue;
pub mod state_store;

//! Lifeboat's library: the pure domain, the ports it talks through, the adapters behind them,
//! and the workflows handlers run.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod adapters;
pub mod archive;
pub mod catalog;
pub mod config;
pub mod domain;
pub mod errors;
pub mod holds;
pub mod layout;
pub mod ports;
pub mod restores;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod workflows;

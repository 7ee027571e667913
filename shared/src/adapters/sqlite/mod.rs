//! SQLite adapters: the state store and the durable queues of the embedded runtime.
//!
//! Each adapter owns one connection in WAL mode behind a mutex and runs its statements on
//! tokio's blocking pool, so the async runtime never waits on disk.

mod connection;
pub mod queue;
pub mod state_store;

pub use queue::{QueueSettings, SqliteQueue};
pub use state_store::SqliteStateStore;

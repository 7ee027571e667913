//! One SQLite connection shared by an adapter, used from tokio's blocking pool.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

/// A connection in WAL mode, safe to share between tasks.
#[derive(Clone)]
pub(crate) struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating) the database at `path` and applies `schema`.
    pub(crate) fn open(path: &Path, schema: &str) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        Self::init(conn, schema)
    }

    /// An in-memory database (for tests and fakes).
    pub(crate) fn memory(schema: &str) -> rusqlite::Result<Self> {
        Self::init(Connection::open_in_memory()?, schema)
    }

    fn init(conn: Connection, schema: &str) -> rusqlite::Result<Self> {
        // WAL survives a killed process without losing committed transactions; NORMAL sync
        // is durable against process crashes (only an OS crash can lose the last commits).
        // Switching a new, empty file to WAL goes through a rollback journal; with syncs off
        // for that one step it costs no fsync (most of a cold start's I/O otherwise). Only a
        // power cut during it could hurt, and then only an empty database.
        conn.pragma_update(None, "synchronous", "OFF")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(schema)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static + From<TaskFailed>,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A poisoned lock means a statement panicked; SQLite rolled its transaction back,
            // so the connection is still consistent.
            let mut guard = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| E::from(TaskFailed(e.to_string())))?
    }
}

/// The blocking task running a statement panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("database task failed: {0}")]
pub(crate) struct TaskFailed(pub String);

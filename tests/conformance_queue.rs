//! The queue conformance suite (Service Bus semantics) against the SQLite queues, in memory
//! and on a file, and across reopening the file (what a killed `lifeboat up` relies on).

use std::sync::Arc;

use lifeboat_shared::adapters::sqlite::SqliteQueue;
use lifeboat_shared::ports::ManualClock;
use lifeboat_shared::testing::queue::{QueueAndBus, run_all, survives_reopen};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_keeps_the_contract() {
    run_all(|clock: Arc<ManualClock>, settings| -> Arc<dyn QueueAndBus> {
        Arc::new(SqliteQueue::in_memory(clock, settings).expect("in-memory queue"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    run_all(move |clock: Arc<ManualClock>, settings| -> Arc<dyn QueueAndBus> {
        let file = path.join(format!("{}.sqlite", uuid::Uuid::new_v4().simple()));
        Arc::new(SqliteQueue::open(&file, clock, settings).expect("file queue"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("queues.sqlite");
    survives_reopen(move |clock: Arc<ManualClock>, settings| -> Arc<dyn QueueAndBus> {
        Arc::new(SqliteQueue::open(&file, clock, settings).expect("reopen queue file"))
    })
    .await;
}

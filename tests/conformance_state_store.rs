//! The state store conformance suite against every state store adapter available here.
//! (The Azure Table adapter joins this file with the Azure issue, running against Azurite.)

use std::sync::Arc;

use lifeboat_shared::adapters::sqlite::SqliteStateStore;
use lifeboat_shared::testing::state_store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_keeps_the_contract() {
    state_store::run_all(Arc::new(SqliteStateStore::in_memory().expect("open"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    state_store::run_all(Arc::new(SqliteStateStore::open(&dir.path().join("state.sqlite")).expect("open"))).await;
}

#[tokio::test]
async fn sqlite_file_keeps_entities_across_reopen() {
    use lifeboat_shared::ports::StateStore;
    use lifeboat_shared::ports::state_store::Entity;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.sqlite");
    let etag = {
        let store = SqliteStateStore::open(&path).expect("open");
        store.insert("claims", &Entity::new("p", "r").with("v", 1)).await.expect("insert")
    };
    let store = SqliteStateStore::open(&path).expect("reopen");
    let got = store.get("claims", "p", "r").await.expect("get").expect("kept");
    assert_eq!(got.etag, Some(etag));
    assert_eq!(got.i64("v"), Some(1));
}

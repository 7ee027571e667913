//! The state store conformance suite against every state store adapter available here: SQLite
//! (in memory and on a file) and Azure Table Storage on Azurite (see tests/support/azurite.rs).

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

mod support;

/// The Table Storage adapter against Azurite (started for this test, stopped after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_table_on_azurite_keeps_the_contract() {
    use lifeboat_shared::adapters::azure::{AZURITE_ACCOUNT, ClientSettings, StorageAuth, TableStateStore};
    let Some(azurite) = support::azurite::Azurite::start() else { return };
    let endpoint = azurite.table_endpoint(AZURITE_ACCOUNT);
    let store = TableStateStore::new(&endpoint, &StorageAuth::azurite(), &ClientSettings::azurite()).expect("store");
    state_store::run_all(Arc::new(store)).await;
}

/// The second account (a second region's storage) works with its own key, holds its own
/// tables, and a wrong key is refused: the requests really are signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_table_accounts_are_separate_and_keys_are_checked() {
    use lifeboat_shared::adapters::azure::{
        AZURITE_ACCOUNT, AZURITE_KEY, ClientSettings, SharedKeyCredential, StorageAuth, TableStateStore,
    };
    use lifeboat_shared::ports::StateStore;
    use lifeboat_shared::ports::state_store::Entity;
    use support::azurite::{Azurite, SECOND_ACCOUNT, SECOND_KEY};
    let Some(azurite) = Azurite::start() else { return };
    let settings = ClientSettings::azurite();
    let first = TableStateStore::new(&azurite.table_endpoint(AZURITE_ACCOUNT), &StorageAuth::azurite(), &settings)
        .expect("first account");
    let second_auth = StorageAuth::SharedKey(SharedKeyCredential::new(SECOND_ACCOUNT, SECOND_KEY));
    let second =
        TableStateStore::new(&azurite.table_endpoint(SECOND_ACCOUNT), &second_auth, &settings).expect("second account");
    first.insert("regions", &Entity::new("p", "r").with("region", "westeurope")).await.expect("insert in first");
    assert!(second.get("regions", "p", "r").await.expect("get in second").is_none(), "accounts share nothing");
    second.insert("regions", &Entity::new("p", "r").with("region", "northeurope")).await.expect("insert in second");
    let wrong = StorageAuth::SharedKey(SharedKeyCredential::new(SECOND_ACCOUNT, AZURITE_KEY));
    let forged = TableStateStore::new(&azurite.table_endpoint(SECOND_ACCOUNT), &wrong, &settings).expect("store");
    let err = forged.get("regions", "p", "r").await.expect_err("a wrong key must be refused");
    assert!(!err.is_transient() && !err.is_not_found(), "{err:?}");
}

//! The object store conformance suite against every object store adapter available here.

use std::sync::Arc;

use lifeboat_shared::adapters::local_dir::LocalDirObjectStore;
use lifeboat_shared::testing::object_store;

#[tokio::test]
async fn local_directory_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    object_store::run_all(Arc::new(LocalDirObjectStore::open(dir.path()).expect("open"))).await;
}

#[tokio::test]
async fn local_directory_hides_temporary_files_from_listings() {
    use lifeboat_shared::ports::ObjectStore;
    use lifeboat_shared::ports::object_store::{PutOptions, stream_from_bytes};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalDirObjectStore::open(dir.path()).expect("open");
    std::fs::write(dir.path().join(".tmp").join("half-written"), b"partial").expect("simulate a crash mid-write");
    store.put("a/b", stream_from_bytes("x"), PutOptions::default()).await.expect("put");
    let page = store.list("", None, 100).await.expect("list");
    let keys: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["a/b"], "a crashed write must never be listed");
}

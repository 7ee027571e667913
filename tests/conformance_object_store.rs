//! The object store conformance suite against every object store adapter available here: the
//! local directory and Azure Blob Storage on Azurite (see tests/support/azurite.rs).

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

mod support;

/// The Blob Storage adapter against Azurite (started for this test, stopped after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_blob_on_azurite_keeps_the_contract() {
    use lifeboat_shared::adapters::azure::{AZURITE_ACCOUNT, BlobObjectStore, ClientSettings, StorageAuth};
    let Some(azurite) = support::azurite::Azurite::start() else { return };
    let endpoint = azurite.blob_endpoint(AZURITE_ACCOUNT);
    let store = BlobObjectStore::new(&endpoint, "conformance", &StorageAuth::azurite(), &ClientSettings::azurite())
        .expect("store");
    object_store::run_all(Arc::new(store)).await;
}

/// Beyond the suite: objects of several blocks (staged in parallel, committed at once), ranges
/// across block boundaries, `if_absent` on a block upload, a body failing after blocks were
/// staged, and the second account (a second region) holding its own objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_blob_streams_objects_of_many_blocks() {
    use bytes::Bytes;
    use lifeboat_shared::adapters::azure::blob::BLOCK_SIZE;
    use lifeboat_shared::adapters::azure::{
        AZURITE_ACCOUNT, BlobObjectStore, ClientSettings, SharedKeyCredential, StorageAuth,
    };
    use lifeboat_shared::ports::ObjectStore;
    use lifeboat_shared::ports::object_store::{ByteStream, PutOptions, collect_bytes};
    use support::azurite::{Azurite, SECOND_ACCOUNT, SECOND_KEY};

    let Some(azurite) = Azurite::start() else { return };
    let settings = ClientSettings::azurite();
    let store =
        BlobObjectStore::new(&azurite.blob_endpoint(AZURITE_ACCOUNT), "big", &StorageAuth::azurite(), &settings)
            .expect("store");
    let size = 2 * BLOCK_SIZE + BLOCK_SIZE / 2 + 7;
    let byte = |i: usize| (i % 251) as u8;
    let body = |fail_after: Option<usize>| -> ByteStream {
        let chunk = 64 * 1024;
        let chunks = (0..size.div_ceil(chunk)).map(move |c| {
            if fail_after.is_some_and(|n| c * chunk >= n) {
                return Err(std::io::Error::other("cut"));
            }
            Ok(Bytes::from((c * chunk..size.min((c + 1) * chunk)).map(byte).collect::<Vec<u8>>()))
        });
        Box::pin(futures_util::stream::iter(chunks))
    };
    let meta = store.put("backups/big.tar.zst", body(None), PutOptions::default()).await.expect("put");
    assert_eq!(meta.size, size as u64);
    let all = collect_bytes(store.get("backups/big.tar.zst", None).await.expect("get").1).await.expect("read");
    assert!(all.len() == size && all.iter().enumerate().all(|(i, b)| *b == byte(i)), "content differs");
    let (start, end) = (BLOCK_SIZE - 3, BLOCK_SIZE + 5);
    let (ranged_meta, part) = store.get("backups/big.tar.zst", Some(start as u64..end as u64)).await.expect("range");
    assert_eq!(ranged_meta.size, size as u64, "a ranged get reports the whole object's size");
    let part = collect_bytes(part).await.expect("read range");
    assert_eq!(part, (start..end).map(byte).collect::<Vec<u8>>());

    let if_absent = PutOptions { if_absent: true, ..PutOptions::default() };
    let err = store.put("backups/big.tar.zst", body(None), if_absent).await.expect_err("taken");
    assert!(matches!(err, lifeboat_shared::ports::ObjectStoreError::AlreadyExists { .. }), "{err:?}");

    let failed = store.put("backups/broken", body(Some(BLOCK_SIZE * 2)), PutOptions::default()).await;
    assert!(failed.is_err(), "a body failing after staged blocks fails the put");
    assert!(store.head("backups/broken").await.expect_err("nothing committed").is_not_found());
    let listed = store.list("backups/", None, 10).await.expect("list");
    assert_eq!(listed.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["backups/big.tar.zst"]);

    let second_auth = StorageAuth::SharedKey(SharedKeyCredential::new(SECOND_ACCOUNT, SECOND_KEY));
    let second = BlobObjectStore::new(&azurite.blob_endpoint(SECOND_ACCOUNT), "big", &second_auth, &settings)
        .expect("second account");
    assert!(second.head("backups/big.tar.zst").await.expect_err("other account").is_not_found());
    second
        .put("backups/copy", lifeboat_shared::ports::object_store::stream_from_bytes("x"), PutOptions::default())
        .await
        .expect("put in the second account");
}

/// The S3 adapter against moto (started for this test, stopped after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_on_moto_keeps_the_contract() {
    use lifeboat_shared::adapters::aws::{S3ObjectStore, S3Settings};
    use support::moto::{Moto, REGION};
    let Some(moto) = Moto::start() else { return };
    let settings =
        S3Settings { bucket: "conformance".to_owned(), region: REGION.to_owned(), endpoint: Some(moto.endpoint()) };
    let store = S3ObjectStore::new(&settings, Moto::credentials()).expect("store");
    store.create_bucket().await.expect("bucket");
    object_store::run_all(Arc::new(store)).await;
}

/// Beyond the suite: an object of several parts (a multipart upload), ranges across part
/// boundaries, `if_absent` on a multipart upload, a body failing after parts were uploaded, keys
/// needing encoding, and a missing bucket told apart from a missing object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_streams_objects_of_many_parts() {
    use bytes::Bytes;
    use lifeboat_shared::adapters::aws::s3::PART_SIZE;
    use lifeboat_shared::adapters::aws::{S3ObjectStore, S3Settings};
    use lifeboat_shared::ports::object_store::{ByteStream, PutOptions, collect_bytes, stream_from_bytes};
    use lifeboat_shared::ports::{ObjectStore, ObjectStoreError};
    use support::moto::{Moto, REGION};

    let Some(moto) = Moto::start() else { return };
    let settings = S3Settings { bucket: "big".to_owned(), region: REGION.to_owned(), endpoint: Some(moto.endpoint()) };
    let store = S3ObjectStore::new(&settings, Moto::credentials()).expect("store");
    store.create_bucket().await.expect("bucket");
    let size = 2 * PART_SIZE + PART_SIZE / 2 + 7;
    let byte = |i: usize| (i % 251) as u8;
    let body = |fail_after: Option<usize>| -> ByteStream {
        let chunk = 64 * 1024;
        let chunks = (0..size.div_ceil(chunk)).map(move |c| {
            if fail_after.is_some_and(|n| c * chunk >= n) {
                return Err(std::io::Error::other("cut"));
            }
            Ok(Bytes::from((c * chunk..size.min((c + 1) * chunk)).map(byte).collect::<Vec<u8>>()))
        });
        Box::pin(futures_util::stream::iter(chunks))
    };
    let meta = store.put("backups/big.tar.zst", body(None), PutOptions::default()).await.expect("put");
    assert_eq!(meta.size, size as u64);
    assert_eq!(store.head("backups/big.tar.zst").await.expect("head").size, size as u64);
    let all = collect_bytes(store.get("backups/big.tar.zst", None).await.expect("get").1).await.expect("read");
    assert!(all.len() == size && all.iter().enumerate().all(|(i, b)| *b == byte(i)), "content differs");
    let (start, end) = (PART_SIZE - 3, PART_SIZE + 5);
    let (ranged_meta, part) = store.get("backups/big.tar.zst", Some(start as u64..end as u64)).await.expect("range");
    assert_eq!(ranged_meta.size, size as u64, "a ranged get reports the whole object's size");
    assert_eq!(collect_bytes(part).await.expect("read range"), (start..end).map(byte).collect::<Vec<u8>>());

    let if_absent = PutOptions { if_absent: true, ..PutOptions::default() };
    let err = store.put("backups/big.tar.zst", body(None), if_absent).await.expect_err("taken");
    assert!(matches!(err, ObjectStoreError::AlreadyExists { .. }), "{err:?}");

    let failed = store.put("backups/broken", body(Some(PART_SIZE * 2)), PutOptions::default()).await;
    assert!(failed.is_err(), "a body failing after uploaded parts fails the put");
    assert!(store.head("backups/broken").await.expect_err("nothing completed").is_not_found());

    let odd = "backups/with space/ünïcode+plus=eq&amp";
    store.put(odd, stream_from_bytes("odd"), PutOptions::default()).await.expect("put an odd key");
    assert_eq!(collect_bytes(store.get(odd, None).await.expect("get odd").1).await.expect("read"), b"odd");
    let listed = store.list("backups/", None, 10).await.expect("list");
    let keys: Vec<_> = listed.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["backups/big.tar.zst", odd]);
    assert!(store.list("backups/", Some("not-a-token-we-issued"), 10).await.is_err(), "a made-up token is refused");

    let other =
        S3ObjectStore::new(&S3Settings { bucket: "missing-bucket".to_owned(), ..settings }, Moto::credentials())
            .expect("store of a missing bucket");
    let err = other.get("backups/big.tar.zst", None).await.err().expect("no such bucket");
    assert!(!err.is_not_found(), "a missing bucket is not a missing object: {err:?}");
}

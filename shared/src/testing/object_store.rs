//! The object store conformance suite: the contract of [`crate::ports::object_store`].
//! Every check works under a prefix of its own.

use std::sync::Arc;

use bytes::Bytes;

use crate::ports::object_store::{ObjectStore, PutOptions, collect_bytes, stream_from_bytes};

fn prefix() -> String {
    format!("conformance/{}/", uuid::Uuid::new_v4().simple())
}

/// Runs every check against `store`.
pub async fn run_all(store: Arc<dyn ObjectStore>) {
    let s = store.as_ref();
    put_get_round_trips(s).await;
    put_replaces_unless_if_absent(s).await;
    ranges_read_parts(s).await;
    list_pages_in_key_order(s).await;
    delete_is_idempotent(s).await;
    bad_keys_are_refused(s).await;
    failed_body_writes_nothing(s).await;
}

/// What was put is what is got, also across many chunks.
pub async fn put_get_round_trips(s: &dyn ObjectStore) {
    let key = format!("{}a/b/data.bin", prefix());
    let chunks: Vec<std::io::Result<Bytes>> = (0..64u8).map(|i| Ok(Bytes::from(vec![i; 4096]))).collect();
    let meta = s.put(&key, Box::pin(futures_util::stream::iter(chunks)), PutOptions::default()).await.expect("put");
    assert_eq!(meta.size, 64 * 4096);
    let (got, body) = s.get(&key, None).await.expect("get");
    assert_eq!(got.size, meta.size);
    let bytes = collect_bytes(body).await.expect("read");
    assert_eq!(bytes.len(), 64 * 4096);
    assert!(bytes.chunks(4096).enumerate().all(|(i, c)| c.iter().all(|b| usize::from(*b) == i)), "content differs");
    assert_eq!(s.head(&key).await.expect("head").size, meta.size);
    let missing = s.get(&format!("{}nope", prefix()), None).await.err().expect("missing get fails");
    assert!(missing.is_not_found(), "{missing:?}");
}

/// A plain put replaces; `if_absent` refuses an existing key and keeps the old content.
pub async fn put_replaces_unless_if_absent(s: &dyn ObjectStore) {
    let key = format!("{}manifest.json", prefix());
    s.put(&key, stream_from_bytes("one"), PutOptions::default()).await.expect("put");
    s.put(&key, stream_from_bytes("two"), PutOptions::default()).await.expect("replace");
    let opts = PutOptions { if_absent: true, ..PutOptions::default() };
    let err = s.put(&key, stream_from_bytes("three"), opts.clone()).await.expect_err("if_absent on a taken key");
    assert!(matches!(err, crate::ports::ObjectStoreError::AlreadyExists { .. }), "{err:?}");
    let body = collect_bytes(s.get(&key, None).await.expect("get").1).await.expect("read");
    assert_eq!(body, b"two");
    s.put(&format!("{}fresh", prefix()), stream_from_bytes("x"), opts).await.expect("if_absent on a free key");
}

/// Byte ranges return exactly the asked bytes; ranges past the end are refused.
pub async fn ranges_read_parts(s: &dyn ObjectStore) {
    let key = format!("{}range", prefix());
    s.put(&key, stream_from_bytes("0123456789"), PutOptions::default()).await.expect("put");
    let part = collect_bytes(s.get(&key, Some(2..5)).await.expect("range").1).await.expect("read");
    assert_eq!(part, b"234");
    assert!(s.get(&key, Some(5..50)).await.is_err(), "a range past the end is refused");
}

/// Listing returns keys under the prefix, in order, across pages, each once.
pub async fn list_pages_in_key_order(s: &dyn ObjectStore) {
    let p = prefix();
    let mut expected: Vec<String> = (0..7).map(|i| format!("{p}k{i}")).collect();
    expected.push(format!("{p}sub/deep"));
    for key in expected.iter().rev() {
        s.put(key, stream_from_bytes("x"), PutOptions::default()).await.expect("put");
    }
    s.put(&format!("{}other", prefix()), stream_from_bytes("x"), PutOptions::default()).await.expect("put");
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = s.list(&p, token.as_deref(), 3).await.expect("list");
        assert!(page.objects.len() <= 3, "page larger than limit");
        seen.extend(page.objects.into_iter().map(|o| o.key));
        match page.continuation {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    expected.sort();
    assert_eq!(seen, expected);
}

/// Delete reports whether the object existed, and deleting twice is fine.
pub async fn delete_is_idempotent(s: &dyn ObjectStore) {
    let key = format!("{}gone", prefix());
    s.put(&key, stream_from_bytes("x"), PutOptions::default()).await.expect("put");
    assert!(s.delete(&key).await.expect("delete"), "first delete finds it");
    assert!(!s.delete(&key).await.expect("delete again"), "second delete finds nothing");
    assert!(s.head(&key).await.expect_err("gone").is_not_found());
}

/// Keys that could escape the store or confuse paths are refused.
pub async fn bad_keys_are_refused(s: &dyn ObjectStore) {
    for key in ["", "/abs", "a//b", "a/../b", "./a", "a\\b", "a/\u{0}"] {
        assert!(s.put(key, stream_from_bytes("x"), PutOptions::default()).await.is_err(), "key {key:?} accepted");
    }
}

/// A body stream that fails part-way leaves no object behind.
pub async fn failed_body_writes_nothing(s: &dyn ObjectStore) {
    let key = format!("{}broken", prefix());
    let chunks: Vec<std::io::Result<Bytes>> = vec![Ok(Bytes::from_static(b"part")), Err(std::io::Error::other("cut"))];
    let result = s.put(&key, Box::pin(futures_util::stream::iter(chunks)), PutOptions::default()).await;
    assert!(result.is_err(), "a failed body must fail the put");
    assert!(s.head(&key).await.expect_err("no object").is_not_found(), "half an object is visible");
}

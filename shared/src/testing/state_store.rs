//! The state store conformance suite: the contract of [`crate::ports::state_store`], checked
//! against any adapter. Every check uses tables of its own, so adapters on a shared account
//! (Azurite, Azure) can run it without clean-up between checks.

use std::sync::Arc;

use serde_json::json;

use crate::ports::state_store::{BatchOp, ETag, Entity, Query, StateStore, query_all};

/// A fresh table name for one check.
fn table() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

fn e(pk: &str, rk: &str) -> Entity {
    Entity::new(pk, rk)
}

/// Runs every check against `store`.
pub async fn run_all(store: Arc<dyn StateStore>) {
    let s = store.as_ref();
    insert_get_round_trips_every_property_type(s).await;
    insert_is_insert_if_absent(s).await;
    update_is_guarded_by_etag(s).await;
    delete_is_guarded_by_etag(s).await;
    upsert_creates_and_replaces(s).await;
    etags_are_never_reused(s).await;
    query_orders_and_filters(s).await;
    query_pages_with_continuation(s).await;
    query_caps_pages_at_1000(s).await;
    transactions_are_atomic(s).await;
    transactions_are_validated(s).await;
    invalid_input_is_refused_and_writes_nothing(s).await;
    tables_are_independent(s).await;
    concurrent_claims_have_one_winner(Arc::clone(&store)).await;
}

/// Strings, integers beyond 32 bits, floats and booleans come back as written.
pub async fn insert_get_round_trips_every_property_type(s: &dyn StateStore) {
    let t = table();
    let entity = e("p", "r")
        .with("text", "héllo \"world\"")
        .with("big", 9_007_199_254_740_993_i64)
        .with("negative", -42)
        .with("ratio", 0.25)
        .with("flag", true);
    let etag = s.insert(&t, &entity).await.expect("insert");
    let got = s.get(&t, "p", "r").await.expect("get").expect("inserted entity is found");
    assert_eq!(got.properties, entity.properties, "properties must round-trip unchanged");
    assert_eq!(got.etag, Some(etag), "get returns the etag the write returned");
    assert!(s.get(&t, "p", "missing").await.expect("get missing").is_none(), "a missing entity is None, not an error");
    assert!(
        s.get(&table(), "p", "r").await.expect("get in a never-used table").is_none(),
        "a never-used table is empty"
    );
}

/// A second insert of the same key fails with AlreadyExists and changes nothing.
pub async fn insert_is_insert_if_absent(s: &dyn StateStore) {
    let t = table();
    s.insert(&t, &e("p", "r").with("v", 1)).await.expect("first insert");
    let err = s.insert(&t, &e("p", "r").with("v", 2)).await.expect_err("second insert must fail");
    assert!(err.is_already_exists(), "second insert: expected AlreadyExists, got {err:?}");
    let got = s.get(&t, "p", "r").await.expect("get").expect("exists");
    assert_eq!(got.i64("v"), Some(1), "a refused insert must not change the entity");
}

/// Update succeeds with the current ETag and fails with a stale one or on a missing entity.
pub async fn update_is_guarded_by_etag(s: &dyn StateStore) {
    let t = table();
    let first = s.insert(&t, &e("p", "r").with("v", 1)).await.expect("insert");
    let second = s.update(&t, &e("p", "r").with("v", 2), &first).await.expect("update with current etag");
    assert_ne!(first, second, "every write changes the etag");
    let err = s.update(&t, &e("p", "r").with("v", 3), &first).await.expect_err("stale etag must fail");
    assert!(err.is_precondition_failed(), "stale update: expected PreconditionFailed, got {err:?}");
    assert_eq!(s.get(&t, "p", "r").await.expect("get").expect("exists").i64("v"), Some(2));
    let got = s.get(&t, "p", "r").await.expect("get").expect("exists");
    assert!(got.properties.get("v3").is_none());
    let err = s.update(&t, &e("p", "nope").with("v", 1), &second).await.expect_err("update of a missing entity");
    assert!(err.is_not_found(), "missing update: expected NotFound, got {err:?}");
    // Update replaces: properties not written are gone.
    let third = s.update(&t, &e("p", "r").with("w", 1), &second).await.expect("replace");
    let got = s.get(&t, "p", "r").await.expect("get").expect("exists");
    assert_eq!(got.etag, Some(third));
    assert!(got.properties.get("v").is_none(), "update replaces the whole entity");
}

/// Delete honours the ETag when given and reports a missing entity.
pub async fn delete_is_guarded_by_etag(s: &dyn StateStore) {
    let t = table();
    let first = s.insert(&t, &e("p", "r")).await.expect("insert");
    let second = s.upsert(&t, &e("p", "r").with("v", 2)).await.expect("upsert");
    let err = s.delete(&t, "p", "r", Some(&first)).await.expect_err("stale delete must fail");
    assert!(err.is_precondition_failed(), "stale delete: expected PreconditionFailed, got {err:?}");
    s.delete(&t, "p", "r", Some(&second)).await.expect("delete with current etag");
    assert!(s.get(&t, "p", "r").await.expect("get").is_none(), "deleted entity is gone");
    let err = s.delete(&t, "p", "r", None).await.expect_err("delete of a missing entity");
    assert!(err.is_not_found(), "missing delete: expected NotFound, got {err:?}");
    s.insert(&t, &e("p", "r2")).await.expect("insert");
    s.delete(&t, "p", "r2", None).await.expect("unconditional delete");
}

/// Upsert inserts when absent and replaces when present.
pub async fn upsert_creates_and_replaces(s: &dyn StateStore) {
    let t = table();
    s.upsert(&t, &e("p", "r").with("a", 1)).await.expect("upsert creates");
    s.upsert(&t, &e("p", "r").with("b", 2)).await.expect("upsert replaces");
    let got = s.get(&t, "p", "r").await.expect("get").expect("exists");
    assert_eq!(got.i64("b"), Some(2));
    assert!(got.properties.get("a").is_none(), "upsert replaces, it does not merge");
}

/// An ETag from before a delete does not match the entity re-created after it.
pub async fn etags_are_never_reused(s: &dyn StateStore) {
    let t = table();
    let old = s.insert(&t, &e("p", "r")).await.expect("insert");
    s.delete(&t, "p", "r", None).await.expect("delete");
    s.insert(&t, &e("p", "r")).await.expect("re-insert");
    let err = s.update(&t, &e("p", "r"), &old).await.expect_err("old etag must not match");
    assert!(err.is_precondition_failed(), "expected PreconditionFailed, got {err:?}");
}

/// Results come ordered by partition then row; partition and row-range filters apply.
pub async fn query_orders_and_filters(s: &dyn StateStore) {
    let t = table();
    for (pk, rk) in [("b", "2"), ("a", "3"), ("b", "1"), ("a", "1"), ("c", "9"), ("a", "2")] {
        s.insert(&t, &e(pk, rk)).await.expect("insert");
    }
    let keys = |v: Vec<Entity>| v.into_iter().map(|e| format!("{}/{}", e.partition_key, e.row_key)).collect::<Vec<_>>();
    let all = query_all(s, &t, &Query::all()).await.expect("query all");
    assert_eq!(keys(all), ["a/1", "a/2", "a/3", "b/1", "b/2", "c/9"], "order: partition key, then row key");
    let a = query_all(s, &t, &Query::partition("a")).await.expect("query partition");
    assert_eq!(keys(a), ["a/1", "a/2", "a/3"]);
    let range = Query { row_key_from: Some("2".into()), row_key_to: Some("3".into()), ..Query::partition("a") };
    assert_eq!(keys(query_all(s, &t, &range).await.expect("range")), ["a/2"], "from is inclusive, to exclusive");
    let none = query_all(s, &t, &Query::partition("zzz")).await.expect("empty partition");
    assert!(none.is_empty());
}

/// Following continuation tokens visits every entity exactly once, in order.
pub async fn query_pages_with_continuation(s: &dyn StateStore) {
    let t = table();
    let mut expected = Vec::new();
    for p in 0..3 {
        let ops: Vec<_> = (0..9).map(|r| BatchOp::Insert(e(&format!("p{p}"), &format!("r{r:02}")))).collect();
        s.transact(&t, &format!("p{p}"), &ops).await.expect("seed");
        expected.extend((0..9).map(|r| format!("p{p}/r{r:02}")));
    }
    let mut query = Query { limit: Some(4), ..Query::all() };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = s.query(&t, &query).await.expect("page");
        assert!(page.entities.len() <= 4, "a page holds at most `limit` entities");
        pages += 1;
        seen.extend(page.entities.iter().map(|e| format!("{}/{}", e.partition_key, e.row_key)));
        match page.continuation {
            Some(c) => query.continuation = Some(c),
            None => break,
        }
        assert!(pages < 100, "continuation never ends");
    }
    assert_eq!(seen, expected, "every entity exactly once, in order");
    let forged = Query { continuation: Some("not-a-token".into()), ..Query::all() };
    let err = s.query(&t, &forged).await.expect_err("a forged continuation token is refused");
    assert!(!err.is_transient(), "a forged token is not a transient failure: {err:?}");
}

/// No page holds more than 1000 entities, whatever the limit asked.
pub async fn query_caps_pages_at_1000(s: &dyn StateStore) {
    let t = table();
    for chunk in 0..11 {
        let ops: Vec<_> = (0..100).map(|r| BatchOp::Insert(e("p", &format!("{chunk:02}-{r:03}")))).collect();
        s.transact(&t, "p", &ops).await.expect("seed");
    }
    let page = s.query(&t, &Query { limit: Some(5000), ..Query::all() }).await.expect("query");
    assert!(page.entities.len() <= 1000, "page of {} entities", page.entities.len());
    assert!(page.continuation.is_some(), "1100 entities do not fit one page");
    assert_eq!(query_all(s, &t, &Query::all()).await.expect("all").len(), 1100);
}

/// A transaction with one failing operation applies none of its operations.
pub async fn transactions_are_atomic(s: &dyn StateStore) {
    let t = table();
    let etag = s.insert(&t, &e("p", "taken").with("v", 1)).await.expect("insert");
    let ops = [
        BatchOp::Insert(e("p", "new")),
        BatchOp::Upsert(e("p", "other").with("v", 1)),
        BatchOp::Insert(e("p", "taken").with("v", 2)),
    ];
    let err = s.transact(&t, "p", &ops).await.expect_err("batch with a conflicting insert must fail");
    assert!(err.is_already_exists(), "expected AlreadyExists, got {err:?}");
    assert!(s.get(&t, "p", "new").await.expect("get").is_none(), "nothing of a failed batch is applied");
    assert!(s.get(&t, "p", "other").await.expect("get").is_none(), "nothing of a failed batch is applied");
    let stale = ETag("W/\"stale\"".into());
    let ops = [BatchOp::Insert(e("p", "new")), BatchOp::Update(Entity { etag: Some(stale), ..e("p", "taken") })];
    let err = s.transact(&t, "p", &ops).await.expect_err("batch with a stale update must fail");
    assert!(err.is_precondition_failed(), "expected PreconditionFailed, got {err:?}");
    let ops = [
        BatchOp::Insert(e("p", "new")),
        BatchOp::Update(Entity { etag: Some(etag), ..e("p", "taken").with("v", 3) }),
        BatchOp::Delete { row_key: "new2".into(), if_match: None },
    ];
    let err = s.transact(&t, "p", &ops).await.expect_err("batch deleting a missing row must fail");
    assert!(err.is_not_found(), "expected NotFound, got {err:?}");
    let ops = [BatchOp::Insert(e("p", "new")), BatchOp::Upsert(e("p", "other"))];
    let etags = s.transact(&t, "p", &ops).await.expect("valid batch");
    assert_eq!(etags.len(), 2);
    assert!(etags.iter().all(Option::is_some), "inserts and upserts return etags");
    assert_eq!(query_all(s, &t, &Query::partition("p")).await.expect("all").len(), 3);
}

/// Empty, oversized, cross-partition and repeated-row transactions are refused.
pub async fn transactions_are_validated(s: &dyn StateStore) {
    let t = table();
    let refused = [
        ("empty", vec![]),
        ("101 operations", (0..101).map(|i| BatchOp::Insert(e("p", &i.to_string()))).collect()),
        ("other partition", vec![BatchOp::Insert(e("q", "1"))]),
        ("row twice", vec![BatchOp::Insert(e("p", "1")), BatchOp::Upsert(e("p", "1"))]),
    ];
    for (what, ops) in refused {
        let err = s.transact(&t, "p", &ops).await.expect_err(what);
        assert!(!err.is_transient(), "{what}: refusal must not be transient: {err:?}");
    }
    assert!(query_all(s, &t, &Query::all()).await.expect("all").is_empty(), "refused batches write nothing");
}

/// Forbidden keys, table names and property values are refused before anything is written.
pub async fn invalid_input_is_refused_and_writes_nothing(s: &dyn StateStore) {
    let t = table();
    let refused = [
        ("slash in partition key", e("a/b", "r")),
        ("hash in row key", e("p", "r#1")),
        ("question mark in row key", e("p", "r?")),
        ("backslash in row key", e("p", "a\\b")),
        ("control character", e("p", "a\u{1}b")),
        ("nested property", e("p", "r").with("doc", json!({"a": 1}))),
        ("array property", e("p", "r").with("list", json!([1]))),
        ("null property", e("p", "r").with("gone", serde_json::Value::Null)),
        ("system property name", e("p", "r").with("Timestamp", "x")),
        ("property name with a dash", e("p", "r").with("a-b", "x")),
    ];
    for (what, entity) in refused {
        let err = s.insert(&t, &entity).await.expect_err(what);
        assert!(!err.is_transient() && !err.is_already_exists(), "{what}: expected Invalid, got {err:?}");
    }
    for bad_table in ["ab", "1abc", "with-dash", "has_underscore"] {
        let err = s.insert(bad_table, &e("p", "r")).await.expect_err(bad_table);
        assert!(!err.is_transient(), "table {bad_table:?}: expected Invalid, got {err:?}");
    }
    assert!(query_all(s, &t, &Query::all()).await.expect("all").is_empty(), "nothing written");
    s.insert(&t, &e("p", "with space, unicode ä and-dash.dot")).await.expect("keys may hold spaces, unicode, dots");
}

/// The same keys in two tables are two entities.
pub async fn tables_are_independent(s: &dyn StateStore) {
    let (t1, t2) = (table(), table());
    s.insert(&t1, &e("p", "r").with("v", 1)).await.expect("insert t1");
    s.insert(&t2, &e("p", "r").with("v", 2)).await.expect("insert t2 with the same keys");
    assert_eq!(s.get(&t1, "p", "r").await.expect("get").expect("exists").i64("v"), Some(1));
}

/// Many concurrent inserts of one key: exactly one wins, the rest see AlreadyExists.
pub async fn concurrent_claims_have_one_winner(store: Arc<dyn StateStore>) {
    let t = table();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, t) = (Arc::clone(&store), t.clone());
            tokio::spawn(async move { store.insert(&t, &e("claims", "slot").with("by", i)).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => winners += 1,
            Err(err) => assert!(err.is_already_exists(), "losers see AlreadyExists, got {err:?}"),
        }
    }
    assert_eq!(winners, 1, "exactly one claim wins");
}

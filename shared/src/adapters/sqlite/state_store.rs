//! [`StateStore`] on one SQLite file, with exactly the Table Storage semantics of the port
//! (checked by the same conformance suite as the Table adapter).

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Map, Value};

use super::connection::{Db, TaskFailed};
use crate::ports::state_store::{
    BatchOp, ETag, Entity, MAX_PAGE_SIZE, Page, Query, StateStore, StateStoreError, validate_batch, validate_entity,
    validate_key, validate_table_name,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entities (
    tbl   TEXT NOT NULL,
    pk    TEXT NOT NULL,
    rk    TEXT NOT NULL,
    etag  TEXT NOT NULL,
    props TEXT NOT NULL,
    PRIMARY KEY (tbl, pk, rk)
) WITHOUT ROWID;
";

/// Table Storage semantics in SQLite.
#[derive(Clone)]
pub struct SqliteStateStore {
    db: Db,
}

impl std::fmt::Debug for SqliteStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStateStore").finish_non_exhaustive()
    }
}

impl SqliteStateStore {
    /// Opens (creating) the store in the SQLite file at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or initialised.
    pub fn open(path: &Path) -> Result<Self, StateStoreError> {
        Db::open(path, SCHEMA).map(|db| Self { db }).map_err(|e| unavailable("open", &path.display().to_string(), e))
    }

    /// A store in memory, for tests.
    ///
    /// # Errors
    /// When SQLite cannot initialise.
    pub fn in_memory() -> Result<Self, StateStoreError> {
        Db::memory(SCHEMA).map(|db| Self { db }).map_err(|e| unavailable("open", ":memory:", e))
    }

    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        table: &str,
        f: impl FnOnce(&mut Connection) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, StateStoreError> {
        self.db.run(f).await.map_err(|failure| match failure {
            Failure::Port(e) => e,
            Failure::Sqlite(e) => unavailable(operation, table, e),
            Failure::Task(e) => unavailable(operation, table, e),
        })
    }
}

enum Failure {
    Port(StateStoreError),
    Sqlite(rusqlite::Error),
    Task(TaskFailed),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sqlite(e)
    }
}

impl From<TaskFailed> for Failure {
    fn from(e: TaskFailed) -> Self {
        Failure::Task(e)
    }
}

impl From<StateStoreError> for Failure {
    fn from(e: StateStoreError) -> Self {
        Failure::Port(e)
    }
}

fn unavailable(
    operation: &'static str,
    table: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StateStoreError {
    // A busy database is worth retrying; anything else (corruption, full disk) is not likely to heal.
    let transient = e.to_string().contains("locked") || e.to_string().contains("busy");
    StateStoreError::Unavailable { operation, table: table.to_owned(), transient, source: Box::new(e) }
}

fn new_etag() -> ETag {
    ETag(format!("W/\"{}\"", uuid::Uuid::new_v4().simple()))
}

fn props_json(entity: &Entity) -> String {
    Value::Object(entity.properties.clone()).to_string()
}

fn key_error(kind: fn(String, String, String) -> StateStoreError, table: &str, pk: &str, rk: &str) -> StateStoreError {
    kind(table.to_owned(), pk.to_owned(), rk.to_owned())
}

fn already_exists(table: String, partition_key: String, row_key: String) -> StateStoreError {
    StateStoreError::AlreadyExists { table, partition_key, row_key }
}
fn not_found(table: String, partition_key: String, row_key: String) -> StateStoreError {
    StateStoreError::NotFound { table, partition_key, row_key }
}
fn precondition_failed(table: String, partition_key: String, row_key: String) -> StateStoreError {
    StateStoreError::PreconditionFailed { table, partition_key, row_key }
}

fn current_etag(tx: &Transaction<'_>, table: &str, pk: &str, rk: &str) -> rusqlite::Result<Option<String>> {
    tx.query_row("SELECT etag FROM entities WHERE tbl = ?1 AND pk = ?2 AND rk = ?3", params![table, pk, rk], |r| {
        r.get(0)
    })
    .optional()
}

/// Applies one operation inside an open transaction.
fn apply(tx: &Transaction<'_>, table: &str, pk: &str, op: &BatchOp) -> Result<Option<ETag>, Failure> {
    match op {
        BatchOp::Insert(e) => {
            if current_etag(tx, table, pk, &e.row_key)?.is_some() {
                return Err(key_error(already_exists, table, pk, &e.row_key).into());
            }
            let etag = new_etag();
            tx.execute(
                "INSERT INTO entities (tbl, pk, rk, etag, props) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![table, pk, e.row_key, etag.0, props_json(e)],
            )?;
            Ok(Some(etag))
        }
        BatchOp::Upsert(e) => {
            let etag = new_etag();
            tx.execute(
                "INSERT INTO entities (tbl, pk, rk, etag, props) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tbl, pk, rk) DO UPDATE SET etag = excluded.etag, props = excluded.props",
                params![table, pk, e.row_key, etag.0, props_json(e)],
            )?;
            Ok(Some(etag))
        }
        BatchOp::Update(e) => {
            let Some(found) = current_etag(tx, table, pk, &e.row_key)? else {
                return Err(key_error(not_found, table, pk, &e.row_key).into());
            };
            if e.etag.as_ref().is_none_or(|want| want.0 != found) {
                return Err(key_error(precondition_failed, table, pk, &e.row_key).into());
            }
            let etag = new_etag();
            tx.execute(
                "UPDATE entities SET etag = ?4, props = ?5 WHERE tbl = ?1 AND pk = ?2 AND rk = ?3",
                params![table, pk, e.row_key, etag.0, props_json(e)],
            )?;
            Ok(Some(etag))
        }
        BatchOp::Delete { row_key, if_match } => {
            let Some(found) = current_etag(tx, table, pk, row_key)? else {
                return Err(key_error(not_found, table, pk, row_key).into());
            };
            if if_match.as_ref().is_some_and(|want| want.0 != found) {
                return Err(key_error(precondition_failed, table, pk, row_key).into());
            }
            tx.execute("DELETE FROM entities WHERE tbl = ?1 AND pk = ?2 AND rk = ?3", params![table, pk, row_key])?;
            Ok(None)
        }
    }
}

fn row_to_entity(pk: String, rk: String, etag: String, props: &str) -> Result<Entity, Failure> {
    let properties: Map<String, Value> = serde_json::from_str(props).map_err(|e| {
        Failure::Port(StateStoreError::Unavailable {
            operation: "decode",
            table: String::new(),
            transient: false,
            source: Box::new(e),
        })
    })?;
    Ok(Entity { partition_key: pk, row_key: rk, properties, etag: Some(ETag(etag)) })
}

/// Continuation tokens: `v1.{hex pk}.{hex rk}` of the first entity of the next page.
fn encode_token(pk: &str, rk: &str) -> String {
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    format!("v1.{}.{}", hex(pk), hex(rk))
}

fn decode_token(token: &str) -> Option<(String, String)> {
    let unhex = |s: &str| -> Option<String> {
        if !s.len().is_multiple_of(2) {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
        String::from_utf8(bytes?).ok()
    };
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(pk), Some(rk), None) => Some((unhex(pk)?, unhex(rk)?)),
        _ => None,
    }
}

#[async_trait]
impl StateStore for SqliteStateStore {
    async fn insert(&self, table: &str, entity: &Entity) -> Result<ETag, StateStoreError> {
        single(self, "insert", table, BatchOp::Insert(entity.clone())).await
    }

    async fn upsert(&self, table: &str, entity: &Entity) -> Result<ETag, StateStoreError> {
        single(self, "upsert", table, BatchOp::Upsert(entity.clone())).await
    }

    async fn update(&self, table: &str, entity: &Entity, if_match: &ETag) -> Result<ETag, StateStoreError> {
        let mut entity = entity.clone();
        entity.etag = Some(if_match.clone());
        single(self, "update", table, BatchOp::Update(entity)).await
    }

    async fn get(&self, table: &str, partition_key: &str, row_key: &str) -> Result<Option<Entity>, StateStoreError> {
        validate_table_name(table)?;
        validate_key("partition key", partition_key)?;
        validate_key("row key", row_key)?;
        let (t, pk, rk) = (table.to_owned(), partition_key.to_owned(), row_key.to_owned());
        self.run("get", table, move |conn| {
            let row = conn
                .query_row(
                    "SELECT etag, props FROM entities WHERE tbl = ?1 AND pk = ?2 AND rk = ?3",
                    params![t, pk, rk],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?;
            row.map(|(etag, props)| row_to_entity(pk, rk, etag, &props)).transpose()
        })
        .await
    }

    async fn delete(
        &self,
        table: &str,
        partition_key: &str,
        row_key: &str,
        if_match: Option<&ETag>,
    ) -> Result<(), StateStoreError> {
        validate_key("partition key", partition_key)?;
        let op = BatchOp::Delete { row_key: row_key.to_owned(), if_match: if_match.cloned() };
        self.transact(table, partition_key, &[op]).await.map(|_| ())
    }

    async fn query(&self, table: &str, query: &Query) -> Result<Page, StateStoreError> {
        validate_table_name(table)?;
        let start = match &query.continuation {
            Some(token) => Some(decode_token(token).ok_or_else(|| StateStoreError::Invalid {
                what: "continuation token".into(),
                reason: "was not issued by this store".into(),
            })?),
            None => None,
        };
        let limit = query.limit.unwrap_or(MAX_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
        let (t, q) = (table.to_owned(), query.clone());
        self.run("query", table, move |conn| {
            let (cpk, crk) = start.unwrap_or_default();
            let mut stmt = conn.prepare_cached(
                "SELECT pk, rk, etag, props FROM entities
                 WHERE tbl = ?1
                   AND (?2 IS NULL OR pk = ?2)
                   AND (?3 IS NULL OR rk >= ?3)
                   AND (?4 IS NULL OR rk < ?4)
                   AND (pk > ?5 OR (pk = ?5 AND rk >= ?6))
                 ORDER BY pk, rk
                 LIMIT ?7",
            )?;
            let rows = stmt.query_map(
                params![t, q.partition_key, q.row_key_from, q.row_key_to, cpk, crk, limit as i64 + 1],
                |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
                },
            )?;
            let mut entities = Vec::with_capacity(limit);
            let mut continuation = None;
            for row in rows {
                let (pk, rk, etag, props) = row?;
                if entities.len() == limit {
                    continuation = Some(encode_token(&pk, &rk));
                    break;
                }
                entities.push(row_to_entity(pk, rk, etag, &props)?);
            }
            Ok(Page { entities, continuation })
        })
        .await
    }

    async fn transact(
        &self,
        table: &str,
        partition_key: &str,
        ops: &[BatchOp],
    ) -> Result<Vec<Option<ETag>>, StateStoreError> {
        validate_table_name(table)?;
        validate_key("partition key", partition_key)?;
        validate_batch(partition_key, ops)?;
        let (t, pk, ops) = (table.to_owned(), partition_key.to_owned(), ops.to_vec());
        self.run("transaction", table, move |conn| {
            let tx = conn.transaction()?;
            let etags = ops.iter().map(|op| apply(&tx, &t, &pk, op)).collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            Ok(etags)
        })
        .await
    }
}

async fn single(
    store: &SqliteStateStore,
    operation: &'static str,
    table: &str,
    op: BatchOp,
) -> Result<ETag, StateStoreError> {
    validate_table_name(table)?;
    let (BatchOp::Insert(e) | BatchOp::Upsert(e) | BatchOp::Update(e)) = &op else {
        return Err(StateStoreError::Invalid { what: operation.into(), reason: "expects an entity".into() });
    };
    validate_entity(e)?;
    let (t, pk) = (table.to_owned(), e.partition_key.clone());
    let etag = store
        .run(operation, table, move |conn| {
            let tx = conn.transaction()?;
            let etag = apply(&tx, &t, &pk, &op)?;
            tx.commit()?;
            Ok(etag)
        })
        .await?;
    etag.ok_or_else(|| StateStoreError::Invalid { what: operation.into(), reason: "wrote no etag".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_forgeries() {
        let t = encode_token("p/ä", "r 1");
        assert_eq!(decode_token(&t), Some(("p/ä".into(), "r 1".into())));
        assert_eq!(decode_token("v1.zz.00"), None);
        assert_eq!(decode_token("v2.00.00"), None);
    }
}

//! [`StateStore`] on Azure Table Storage: a small REST client on the `azure_core` 1.x pipeline
//! (its retries, auth policies and logging), since no maintained Table crate exists on the
//! current `azure_core`.
//!
//! - Tables are created on the first write that finds them missing; reads of a missing table
//!   find nothing.
//! - `insert` is a POST (409: already exists); `upsert` a PUT without `If-Match`; `update` a PUT
//!   with it (412: changed since read); `delete` a DELETE with the ETag or `*`.
//! - `query` sends `$filter` on the keys and `$top`; the service's continuation headers
//!   (`x-ms-continuation-NextPartitionKey/NextRowKey`) become the port's opaque token.
//! - `transact` is one `$batch` changeset; the failing operation's status becomes the port's
//!   error, and the service rolls the changeset back.

mod batch;
mod entity;
mod http;
mod url;

use async_trait::async_trait;
use azure_core::http::{Method, Pipeline};
use serde_json::Value;
use tracing::instrument;

use self::http::{Answer, Call, ServiceError};
use super::{ClientSettings, SetupError, StorageAuth, endpoint_url, shared_key};
use crate::ports::state_store::{
    BatchOp, ETag, Entity, MAX_PAGE_SIZE, Page, Query, StateStore, StateStoreError, validate_batch, validate_entity,
    validate_key, validate_table_name,
};

/// Table Storage semantics, in Table Storage.
#[derive(Debug, Clone)]
pub struct TableStateStore {
    pipeline: Pipeline,
    /// The account's table endpoint, without a trailing slash.
    base: String,
}

/// Where an outcome applies: table and keys, for the port's errors.
struct Target<'a> {
    operation: &'static str,
    table: &'a str,
    partition_key: &'a str,
    row_key: &'a str,
}

impl Target<'_> {
    /// The port's error for a failed answer about this entity.
    fn error(&self, answer: &Answer) -> StateStoreError {
        let (table, partition_key, row_key) =
            (self.table.to_owned(), self.partition_key.to_owned(), self.row_key.to_owned());
        match answer.status {
            409 => StateStoreError::AlreadyExists { table, partition_key, row_key },
            412 => StateStoreError::PreconditionFailed { table, partition_key, row_key },
            404 => StateStoreError::NotFound { table, partition_key, row_key },
            400 => StateStoreError::Invalid {
                what: format!("{} of {table}/{partition_key}/{row_key}", self.operation),
                reason: answer.error().to_string(),
            },
            _ => answer.error().into_unavailable(self.operation, self.table),
        }
    }
}

fn decode_failed(
    operation: &'static str,
    table: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StateStoreError {
    StateStoreError::Unavailable { operation, table: table.to_owned(), transient: false, source: Box::new(e) }
}

/// The three ways to write one entity.
#[derive(Clone, Copy)]
enum Write<'a> {
    /// POST: fails if the key is taken.
    Insert,
    /// PUT without `If-Match`: inserts or replaces.
    Upsert,
    /// PUT with `If-Match`: replaces while the ETag matches.
    Update(&'a ETag),
}

/// Continuation tokens: `az1.{hex NextPartitionKey}.{hex NextRowKey}`.
fn encode_token(pk: &str, rk: &str) -> String {
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    format!("az1.{}.{}", hex(pk), hex(rk))
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
        (Some("az1"), Some(pk), Some(rk), None) if !pk.is_empty() => Some((unhex(pk)?, unhex(rk)?)),
        _ => None,
    }
}

impl TableStateStore {
    /// A store on the Table service at `endpoint` (e.g. `https://acct.table.core.windows.net`,
    /// or Azurite's `http://127.0.0.1:10002/devstoreaccount1`).
    ///
    /// # Errors
    /// [`SetupError`] for a malformed endpoint, or a token over plain http.
    pub fn new(endpoint: &str, auth: &StorageAuth, settings: &ClientSettings) -> Result<Self, SetupError> {
        let url = endpoint_url(endpoint, auth)?;
        let options = settings.client_options(auth, shared_key::Service::Table);
        let pipeline = Pipeline::new(
            Some(env!("CARGO_PKG_NAME")),
            Some(env!("CARGO_PKG_VERSION")),
            options,
            Vec::new(),
            Vec::new(),
            None,
        );
        Ok(Self { pipeline, base: url.as_str().trim_end_matches('/').to_owned() })
    }

    async fn send(&self, operation: &'static str, table: &str, call: &Call) -> Result<Answer, StateStoreError> {
        http::send(&self.pipeline, &self.base, operation, table, call).await
    }

    /// Sends `call`; when the table is missing, creates it and sends `call` again.
    async fn send_creating(
        &self,
        operation: &'static str,
        table: &str,
        call: &Call,
    ) -> Result<Answer, StateStoreError> {
        let answer = self.send(operation, table, call).await?;
        if !answer.is_table_missing() {
            return Ok(answer);
        }
        self.create_table(table).await?;
        self.send(operation, table, call).await
    }

    /// Creates `table`; one created meanwhile is fine.
    async fn create_table(&self, table: &str) -> Result<(), StateStoreError> {
        let create = Call::new(Method::Post, "/Tables".to_owned()).json(&serde_json::json!({ "TableName": table }));
        let created = self.send("create table", table, &create).await?;
        match created.status {
            201 | 204 | 409 => Ok(()),
            _ => Err(created.error().into_unavailable("create table", table)),
        }
    }

    /// Insert, upsert or update of one entity; returns the new ETag.
    async fn write(&self, table: &str, entity: &Entity, kind: Write<'_>) -> Result<ETag, StateStoreError> {
        validate_table_name(table)?;
        validate_entity(entity)?;
        let (partition_key, row_key) = (entity.partition_key.as_str(), entity.row_key.as_str());
        let entity_path = || url::entity_path(table, partition_key, row_key);
        let (operation, call) = match kind {
            Write::Insert => ("insert", Call::new(Method::Post, url::table_path(table))),
            Write::Upsert => ("upsert", Call::new(Method::Put, entity_path())),
            Write::Update(etag) => ("update", Call::new(Method::Put, entity_path()).if_match(etag.0.clone())),
        };
        let call = call.json(&Value::Object(entity::encode(entity)));
        let target = Target { operation, table, partition_key, row_key };
        let answer = match kind {
            // An update never creates the table: a missing table means a missing entity.
            Write::Update(_) => self.send(operation, table, &call).await?,
            Write::Insert | Write::Upsert => self.send_creating(operation, table, &call).await?,
        };
        if !(200..300).contains(&answer.status) {
            return Err(target.error(&answer));
        }
        let etag = answer.header("etag").ok_or_else(|| {
            ServiceError { status: answer.status, code: None, message: "the answer carries no ETag".into() }
                .into_unavailable(operation, table)
        })?;
        Ok(ETag(etag))
    }
}

#[async_trait]
impl StateStore for TableStateStore {
    #[instrument(skip(self, entity), fields(table.name = %table, table.partition_key = %entity.partition_key, table.row_key = %entity.row_key))]
    async fn insert(&self, table: &str, entity: &Entity) -> Result<ETag, StateStoreError> {
        self.write(table, entity, Write::Insert).await
    }

    #[instrument(skip(self, entity), fields(table.name = %table, table.partition_key = %entity.partition_key, table.row_key = %entity.row_key))]
    async fn upsert(&self, table: &str, entity: &Entity) -> Result<ETag, StateStoreError> {
        self.write(table, entity, Write::Upsert).await
    }

    #[instrument(skip(self, entity, if_match), fields(table.name = %table, table.partition_key = %entity.partition_key, table.row_key = %entity.row_key))]
    async fn update(&self, table: &str, entity: &Entity, if_match: &ETag) -> Result<ETag, StateStoreError> {
        self.write(table, entity, Write::Update(if_match)).await
    }

    #[instrument(skip(self), fields(table.name = %table))]
    async fn get(&self, table: &str, partition_key: &str, row_key: &str) -> Result<Option<Entity>, StateStoreError> {
        validate_table_name(table)?;
        validate_key("partition key", partition_key)?;
        validate_key("row key", row_key)?;
        let call = Call::new(Method::Get, url::entity_path(table, partition_key, row_key));
        let answer = self.send("get", table, &call).await?;
        match answer.status {
            200 => {
                let json: Value = serde_json::from_slice(&answer.body).map_err(|e| decode_failed("get", table, e))?;
                entity::decode(json, answer.header("etag")).map(Some).map_err(|e| decode_failed("get", table, e))
            }
            404 => Ok(None),
            _ => Err(Target { operation: "get", table, partition_key, row_key }.error(&answer)),
        }
    }

    #[instrument(skip(self, if_match), fields(table.name = %table))]
    async fn delete(
        &self,
        table: &str,
        partition_key: &str,
        row_key: &str,
        if_match: Option<&ETag>,
    ) -> Result<(), StateStoreError> {
        validate_table_name(table)?;
        validate_key("partition key", partition_key)?;
        validate_key("row key", row_key)?;
        let etag = if_match.map_or_else(|| "*".to_owned(), |e| e.0.clone());
        let call = Call::new(Method::Delete, url::entity_path(table, partition_key, row_key)).if_match(etag);
        let answer = self.send("delete", table, &call).await?;
        match answer.status {
            200..=299 => Ok(()),
            _ => Err(Target { operation: "delete", table, partition_key, row_key }.error(&answer)),
        }
    }

    #[instrument(skip(self, query), fields(table.name = %table))]
    async fn query(&self, table: &str, query: &Query) -> Result<Page, StateStoreError> {
        validate_table_name(table)?;
        let next = match &query.continuation {
            Some(token) => Some(decode_token(token).ok_or_else(|| StateStoreError::Invalid {
                what: "continuation token".into(),
                reason: "was not issued by this store".into(),
            })?),
            None => None,
        };
        let top = query.limit.unwrap_or(MAX_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
        let path = format!("/{table}()?{}", url::query_string(query, top, next.as_ref()));
        let answer = self.send("query", table, &Call::new(Method::Get, path)).await?;
        match answer.status {
            200 => {}
            404 => return Ok(Page::default()),
            400 => {
                return Err(StateStoreError::Invalid {
                    what: format!("query of {table}"),
                    reason: answer.error().to_string(),
                });
            }
            _ => return Err(answer.error().into_unavailable("query", table)),
        }
        let json: Value = serde_json::from_slice(&answer.body).map_err(|e| decode_failed("query", table, e))?;
        let entities = match json.get("value") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| entity::decode(item.clone(), None))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| decode_failed("query", table, e))?,
            _ => Vec::new(),
        };
        let continuation = answer.header("x-ms-continuation-nextpartitionkey").map(|pk| {
            let rk = answer.header("x-ms-continuation-nextrowkey").unwrap_or_default();
            encode_token(&pk, &rk)
        });
        Ok(Page { entities, continuation })
    }

    #[instrument(skip(self, ops), fields(table.name = %table, table.partition_key = %partition_key, batch.len = ops.len()))]
    async fn transact(
        &self,
        table: &str,
        partition_key: &str,
        ops: &[BatchOp],
    ) -> Result<Vec<Option<ETag>>, StateStoreError> {
        validate_table_name(table)?;
        validate_key("partition key", partition_key)?;
        validate_batch(partition_key, ops)?;
        let (body, content_type) = batch::request(&self.base, table, partition_key, ops);
        let mut call = Call::new(Method::Post, "/$batch".to_owned());
        call.body = Some((azure_core::Bytes::from(body), content_type));
        let mut answer = self.send("transaction", table, &call).await?;
        let mut parts = batch::parse(&String::from_utf8_lossy(&answer.body));
        let table_missing =
            |parts: &[batch::Part]| parts.iter().any(|p| p.status == 404 && p.body.contains("TableNotFound"));
        if answer.is_table_missing() || table_missing(&parts) {
            self.create_table(table).await?;
            answer = self.send("transaction", table, &call).await?;
            parts = batch::parse(&String::from_utf8_lossy(&answer.body));
        }
        if answer.status != 202 {
            return Err(answer.error().into_unavailable("transaction", table));
        }
        if let Some(failed) = parts.iter().find(|p| p.status >= 300) {
            let row_key = batch::failed_index(failed).and_then(|i| ops.get(i)).map_or("", |op| match op {
                BatchOp::Insert(e) | BatchOp::Upsert(e) | BatchOp::Update(e) => e.row_key.as_str(),
                BatchOp::Delete { row_key, .. } => row_key.as_str(),
            });
            let failed =
                Answer { status: failed.status, headers: Default::default(), body: failed.body.clone().into() };
            return Err(Target { operation: "transaction", table, partition_key, row_key }.error(&failed));
        }
        if parts.len() != ops.len() {
            let message = format!("{} answers to {} operations", parts.len(), ops.len());
            return Err(
                ServiceError { status: answer.status, code: None, message }.into_unavailable("transaction", table)
            );
        }
        Ok(ops
            .iter()
            .zip(parts)
            .map(|(op, part)| match op {
                BatchOp::Delete { .. } => None,
                _ => part.etag.map(ETag),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_forgeries() {
        let t = encode_token("p ä", "");
        assert_eq!(decode_token(&t), Some(("p ä".into(), String::new())));
        for forged in ["not-a-token", "az1..00", "az1.zz.00", "v1.00.00", "az1.00.00.00"] {
            assert_eq!(decode_token(forged), None, "{forged}");
        }
    }
}

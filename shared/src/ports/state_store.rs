//! State store port: every piece of Lifeboat's state, with Azure Table Storage semantics.
//!
//! Contract, checked by [`crate::testing::state_store`] against every adapter:
//! - Entities live in named tables (created on first use), addressed by partition key and row
//!   key, and hold flat properties: strings, booleans, integers (i64) and floats. Nested
//!   values, invalid names and keys are rejected with [`StateStoreError::Invalid`] before
//!   anything is written (the rules are Table Storage's: see [`validate_entity`]).
//! - `insert` is insert-if-absent: [`StateStoreError::AlreadyExists`] when the key is taken.
//!   This is how handlers *claim* work.
//! - Every write returns a new [`ETag`]; `update` and `delete` with an ETag succeed only while
//!   the entity still has it ([`StateStoreError::PreconditionFailed`] otherwise: reload, decide
//!   again). `update` and `delete` of a missing entity are [`StateStoreError::NotFound`].
//! - `query` returns entities ordered by partition key, then row key, at most `limit` per page
//!   (never more than 1000), with an opaque continuation token while more remain. A page may
//!   hold fewer than `limit` entities even when more follow: follow the token.
//! - `transact` applies up to 100 operations on one partition atomically: all or none.

use async_trait::async_trait;
use serde_json::{Map, Value};

/// Largest page a query returns.
pub const MAX_PAGE_SIZE: usize = 1000;
/// Most operations in one transaction.
pub const MAX_BATCH_OPERATIONS: usize = 100;
/// Most properties on one entity (Table Storage allows 255 including its three system ones).
pub const MAX_PROPERTIES: usize = 252;
/// Largest string property, in bytes (Table Storage: 64 KiB).
pub const MAX_STRING_BYTES: usize = 64 * 1024;
/// Largest key, in bytes (Table Storage: 1 KiB).
pub const MAX_KEY_BYTES: usize = 1024;

/// An opaque version tag of one entity, changed by every write.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(pub String);

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One stored entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Groups entities; transactions stay within one partition.
    pub partition_key: String,
    /// Unique within the partition; queries are ordered by it.
    pub row_key: String,
    /// Flat properties (see the module contract for the allowed values).
    pub properties: Map<String, Value>,
    /// The version read; `None` on an entity not yet stored.
    pub etag: Option<ETag>,
}

impl Entity {
    /// A new entity with no properties.
    pub fn new(partition_key: impl Into<String>, row_key: impl Into<String>) -> Self {
        Self { partition_key: partition_key.into(), row_key: row_key.into(), properties: Map::new(), etag: None }
    }

    /// The same entity with one more property.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.to_owned(), value.into());
        self
    }

    /// A string property, if present and a string.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(Value::as_str)
    }

    /// An integer property, if present and an integer.
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.properties.get(name).and_then(Value::as_i64)
    }
}

/// A range query over one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Only this partition (all partitions when `None`).
    pub partition_key: Option<String>,
    /// Row keys at or after this (inclusive).
    pub row_key_from: Option<String>,
    /// Row keys before this (exclusive).
    pub row_key_to: Option<String>,
    /// Most entities in the page (capped at [`MAX_PAGE_SIZE`]).
    pub limit: Option<usize>,
    /// Where the previous page stopped.
    pub continuation: Option<String>,
}

impl Query {
    /// Every entity of one partition.
    pub fn partition(partition_key: impl Into<String>) -> Self {
        Self { partition_key: Some(partition_key.into()), ..Self::default() }
    }

    /// Every entity of the table.
    pub fn all() -> Self {
        Self::default()
    }
}

/// One page of query results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Entities in partition key, row key order.
    pub entities: Vec<Entity>,
    /// Token for the next page, while more remain.
    pub continuation: Option<String>,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchOp {
    /// Insert-if-absent.
    Insert(Entity),
    /// Insert or replace.
    Upsert(Entity),
    /// Replace, only while the ETag matches (`entity.etag` must be set).
    Update(Entity),
    /// Delete, only while the ETag matches when one is given.
    Delete {
        /// The row to delete.
        row_key: String,
        /// Guard.
        if_match: Option<ETag>,
    },
}

/// Errors of a state store.
#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    /// `insert` found the key taken.
    #[error("entity {table}/{partition_key}/{row_key} already exists")]
    AlreadyExists {
        /// Table.
        table: String,
        /// Partition key.
        partition_key: String,
        /// Row key.
        row_key: String,
    },
    /// The entity does not exist.
    #[error("entity {table}/{partition_key}/{row_key} not found")]
    NotFound {
        /// Table.
        table: String,
        /// Partition key.
        partition_key: String,
        /// Row key.
        row_key: String,
    },
    /// The entity changed since it was read.
    #[error("entity {table}/{partition_key}/{row_key} changed since it was read (etag mismatch)")]
    PreconditionFailed {
        /// Table.
        table: String,
        /// Partition key.
        partition_key: String,
        /// Row key.
        row_key: String,
    },
    /// A name, key, property or request breaks the store's rules.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid (table name, row key, property `x`, transaction, ...).
        what: String,
        /// Why.
        reason: String,
    },
    /// The store failed or could not be reached.
    #[error("{operation} on table {table} failed")]
    Unavailable {
        /// What was attempted.
        operation: &'static str,
        /// Table.
        table: String,
        /// Whether a retry may succeed.
        transient: bool,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StateStoreError {
    /// The entity did not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
    /// Insert-if-absent found the key taken.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Self::AlreadyExists { .. })
    }
    /// The ETag no longer matched.
    pub fn is_precondition_failed(&self) -> bool {
        matches!(self, Self::PreconditionFailed { .. })
    }
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { transient: true, .. })
    }
}

/// Table-Storage-shaped state.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Inserts if absent; returns the new ETag.
    ///
    /// # Errors
    /// [`StateStoreError::AlreadyExists`] when the key is taken; `Invalid`; `Unavailable`.
    async fn insert(&self, table: &str, entity: &Entity) -> Result<ETag, StateStoreError>;

    /// Inserts or replaces unconditionally; returns the new ETag.
    ///
    /// # Errors
    /// `Invalid`; `Unavailable`.
    async fn upsert(&self, table: &str, entity: &Entity) -> Result<ETag, StateStoreError>;

    /// Replaces the entity while it still has `if_match`; returns the new ETag.
    ///
    /// # Errors
    /// `NotFound`; `PreconditionFailed`; `Invalid`; `Unavailable`.
    async fn update(&self, table: &str, entity: &Entity, if_match: &ETag) -> Result<ETag, StateStoreError>;

    /// The entity, if it exists.
    ///
    /// # Errors
    /// `Invalid`; `Unavailable`.
    async fn get(&self, table: &str, partition_key: &str, row_key: &str) -> Result<Option<Entity>, StateStoreError>;

    /// Deletes the entity (only while it has `if_match`, when given).
    ///
    /// # Errors
    /// `NotFound`; `PreconditionFailed`; `Invalid`; `Unavailable`.
    async fn delete(
        &self,
        table: &str,
        partition_key: &str,
        row_key: &str,
        if_match: Option<&ETag>,
    ) -> Result<(), StateStoreError>;

    /// One page of a range query.
    ///
    /// # Errors
    /// `Invalid` (including a continuation token this store did not issue); `Unavailable`.
    async fn query(&self, table: &str, query: &Query) -> Result<Page, StateStoreError>;

    /// Applies `ops` on one partition atomically; returns the ETag written by each operation
    /// (`None` for deletes).
    ///
    /// # Errors
    /// The first failing operation's error (nothing is applied); `Invalid` for an empty batch,
    /// more than [`MAX_BATCH_OPERATIONS`], or two operations on one row.
    async fn transact(
        &self,
        table: &str,
        partition_key: &str,
        ops: &[BatchOp],
    ) -> Result<Vec<Option<ETag>>, StateStoreError>;
}

/// Reads every page of `query`.
///
/// # Errors
/// The first page that fails.
pub async fn query_all(store: &dyn StateStore, table: &str, query: &Query) -> Result<Vec<Entity>, StateStoreError> {
    let mut query = query.clone();
    let mut all = Vec::new();
    loop {
        let page = store.query(table, &query).await?;
        all.extend(page.entities);
        match page.continuation {
            Some(token) => query.continuation = Some(token),
            None => return Ok(all),
        }
    }
}

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> StateStoreError {
    StateStoreError::Invalid { what: what.into(), reason: reason.into() }
}

/// Checks a table name against Table Storage's rules: 3 to 63 ASCII letters and digits,
/// starting with a letter.
///
/// # Errors
/// [`StateStoreError::Invalid`] naming the rule broken.
pub fn validate_table_name(table: &str) -> Result<(), StateStoreError> {
    let ok_len = (3..=63).contains(&table.len());
    let ok_chars = table.chars().all(|c| c.is_ascii_alphanumeric());
    let ok_start = table.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if ok_len && ok_chars && ok_start {
        Ok(())
    } else {
        Err(invalid(
            format!("table name {table:?}"),
            "must be 3 to 63 ASCII letters and digits, starting with a letter",
        ))
    }
}

/// Checks a partition or row key against Table Storage's rules: at most 1 KiB, none of
/// `/ \ # ?`, no control characters.
///
/// # Errors
/// [`StateStoreError::Invalid`] naming the key and the rule broken.
pub fn validate_key(kind: &str, key: &str) -> Result<(), StateStoreError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid(format!("{kind} {key:?}"), "is longer than 1 KiB"));
    }
    if let Some(c) = key.chars().find(|c| matches!(c, '/' | '\\' | '#' | '?') || c.is_control()) {
        return Err(invalid(format!("{kind} {key:?}"), format!("contains the forbidden character {c:?}")));
    }
    Ok(())
}

/// Checks an entity's keys and properties against Table Storage's rules.
///
/// # Errors
/// [`StateStoreError::Invalid`] naming the key or property and the rule broken.
pub fn validate_entity(entity: &Entity) -> Result<(), StateStoreError> {
    validate_key("partition key", &entity.partition_key)?;
    validate_key("row key", &entity.row_key)?;
    if entity.properties.len() > MAX_PROPERTIES {
        return Err(invalid("entity", format!("has more than {MAX_PROPERTIES} properties")));
    }
    for (name, value) in &entity.properties {
        validate_property(name, value)?;
    }
    Ok(())
}

fn validate_property(name: &str, value: &Value) -> Result<(), StateStoreError> {
    let valid_name = name.len() <= 255
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let reserved = matches!(name, "PartitionKey" | "RowKey" | "Timestamp" | "ETag") || name.starts_with("odata");
    if !valid_name || reserved {
        return Err(invalid(
            format!("property name {name:?}"),
            "must be an identifier (letters, digits, _) and not a system property",
        ));
    }
    match value {
        Value::String(s) if s.len() > MAX_STRING_BYTES => {
            Err(invalid(format!("property {name}"), "is a string larger than 64 KiB"))
        }
        Value::Number(n) if n.as_i64().is_none() && n.as_f64().is_none_or(|f| !f.is_finite()) => {
            Err(invalid(format!("property {name}"), "is a number outside i64 and finite f64"))
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
        Value::Null => Err(invalid(format!("property {name}"), "is null: omit the property instead")),
        Value::Array(_) | Value::Object(_) => {
            Err(invalid(format!("property {name}"), "is nested: store flat values (encode documents as JSON strings)"))
        }
    }
}

/// Checks a transaction's shape: 1 to 100 operations, each row at most once, every entity in
/// `partition_key`, every update carrying an ETag.
///
/// # Errors
/// [`StateStoreError::Invalid`] naming the rule broken.
pub fn validate_batch(partition_key: &str, ops: &[BatchOp]) -> Result<(), StateStoreError> {
    if ops.is_empty() || ops.len() > MAX_BATCH_OPERATIONS {
        return Err(invalid("transaction", format!("must hold 1 to {MAX_BATCH_OPERATIONS} operations")));
    }
    let mut rows = std::collections::HashSet::new();
    for op in ops {
        let row = match op {
            BatchOp::Insert(e) | BatchOp::Upsert(e) | BatchOp::Update(e) => {
                if e.partition_key != partition_key {
                    return Err(invalid("transaction", "every entity must be in the transaction's partition"));
                }
                validate_entity(e)?;
                &e.row_key
            }
            BatchOp::Delete { row_key, .. } => {
                validate_key("row key", row_key)?;
                row_key
            }
        };
        if let BatchOp::Update(e) = op
            && e.etag.is_none()
        {
            return Err(invalid("transaction", format!("update of row {:?} carries no etag", e.row_key)));
        }
        if !rows.insert(row.clone()) {
            return Err(invalid("transaction", format!("row {row:?} appears more than once")));
        }
    }
    Ok(())
}

//! Ports that "crash" at the Nth write: the write is either not done (a crash just before it)
//! or done with the caller told it failed (a crash just after it). Reads pass through. Used to
//! prove that a handler killed at any step is finished by a later delivery.
#![allow(dead_code)]

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use lifeboat_shared::domain::policy::Cluster as ClusterDef;
use lifeboat_shared::ports::cluster::{ApiResourceInfo, Cluster, ClusterConnector, ClusterError, ListPage};
use lifeboat_shared::ports::object_store::{
    ByteStream, ObjectMeta, ObjectPage, ObjectStore, ObjectStoreError, PutOptions,
};
use lifeboat_shared::ports::state_store::{BatchOp, ETag, Entity, Page, Query, StateStore, StateStoreError};
use lifeboat_shared::ports::{Bus, BusError, OutgoingMessage};
use serde_json::Value;

/// Where the crash happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The Nth write is not done.
    Before,
    /// The Nth write is done, and reported as failed.
    After,
}

/// Counts writes across every wrapped port; trips once at `crash_at`.
#[derive(Debug)]
pub struct Crash {
    writes: AtomicUsize,
    crash_at: usize,
    pub when: When,
    tripped: AtomicBool,
    pub armed: AtomicBool,
}

impl Crash {
    pub fn new(crash_at: usize, when: When) -> Arc<Self> {
        Arc::new(Self {
            writes: AtomicUsize::new(0),
            crash_at,
            when,
            tripped: AtomicBool::new(false),
            armed: AtomicBool::new(true),
        })
    }

    /// Whether this write is the one that crashes.
    fn hit(&self) -> bool {
        if !self.armed.load(Ordering::SeqCst) {
            return false;
        }
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        n == self.crash_at && !self.tripped.swap(true, Ordering::SeqCst)
    }

    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
}

fn boom() -> Box<dyn std::error::Error + Send + Sync> {
    "simulated crash".into()
}

/// Runs `write` around the crash point.
macro_rules! guarded {
    ($crash:expr, $fail:expr, $write:expr) => {{
        if $crash.hit() {
            if $crash.when == When::After {
                let _ = $write;
            }
            return Err($fail);
        }
        $write
    }};
}

pub struct CrashingState(pub Arc<dyn StateStore>, pub Arc<Crash>);

fn state_crash(table: &str) -> StateStoreError {
    StateStoreError::Unavailable { operation: "crash", table: table.to_owned(), transient: true, source: boom() }
}

#[async_trait]
impl StateStore for CrashingState {
    async fn insert(&self, table: &str, entity: &Entity) -> Result<ETag, StateStoreError> {
        guarded!(self.1, state_crash(table), self.0.insert(table, entity).await)
    }
    async fn upsert(&self, table: &str, entity: &Entity) -> Result<ETag, StateStoreError> {
        guarded!(self.1, state_crash(table), self.0.upsert(table, entity).await)
    }
    async fn update(&self, table: &str, entity: &Entity, if_match: &ETag) -> Result<ETag, StateStoreError> {
        guarded!(self.1, state_crash(table), self.0.update(table, entity, if_match).await)
    }
    async fn get(&self, table: &str, pk: &str, rk: &str) -> Result<Option<Entity>, StateStoreError> {
        self.0.get(table, pk, rk).await
    }
    async fn delete(&self, table: &str, pk: &str, rk: &str, if_match: Option<&ETag>) -> Result<(), StateStoreError> {
        guarded!(self.1, state_crash(table), self.0.delete(table, pk, rk, if_match).await)
    }
    async fn query(&self, table: &str, query: &Query) -> Result<Page, StateStoreError> {
        self.0.query(table, query).await
    }
    async fn transact(&self, table: &str, pk: &str, ops: &[BatchOp]) -> Result<Vec<Option<ETag>>, StateStoreError> {
        guarded!(self.1, state_crash(table), self.0.transact(table, pk, ops).await)
    }
}

pub struct CrashingObjects(pub Arc<dyn ObjectStore>, pub Arc<Crash>);

fn object_crash(key: &str) -> ObjectStoreError {
    ObjectStoreError::Unavailable { operation: "crash", key: key.to_owned(), transient: true, source: boom() }
}

#[async_trait]
impl ObjectStore for CrashingObjects {
    async fn put(&self, key: &str, body: ByteStream, options: PutOptions) -> Result<ObjectMeta, ObjectStoreError> {
        guarded!(self.1, object_crash(key), self.0.put(key, body, options).await)
    }
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<(ObjectMeta, ByteStream), ObjectStoreError> {
        self.0.get(key, range).await
    }
    async fn head(&self, key: &str) -> Result<ObjectMeta, ObjectStoreError> {
        self.0.head(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage, ObjectStoreError> {
        self.0.list(prefix, continuation, limit).await
    }
    async fn delete(&self, key: &str) -> Result<bool, ObjectStoreError> {
        guarded!(self.1, object_crash(key), self.0.delete(key).await)
    }
}

pub struct CrashingBus(pub Arc<dyn Bus>, pub Arc<Crash>);

#[async_trait]
impl Bus for CrashingBus {
    async fn send(&self, message: OutgoingMessage) -> Result<(), BusError> {
        let fail = BusError::Unavailable {
            queue: message.queue.clone(),
            message_id: message.message_id.clone(),
            source: boom(),
        };
        guarded!(self.1, fail, self.0.send(message).await)
    }
}

pub struct CrashingCluster(pub Arc<dyn Cluster>, pub Arc<Crash>);

#[async_trait]
impl Cluster for CrashingCluster {
    async fn version(&self) -> Result<String, ClusterError> {
        self.0.version().await
    }
    async fn discover(&self) -> Result<Vec<ApiResourceInfo>, ClusterError> {
        self.0.discover().await
    }
    async fn list(
        &self,
        r: &ApiResourceInfo,
        ns: Option<&str>,
        selector: Option<&str>,
        limit: u32,
        token: Option<&str>,
    ) -> Result<ListPage, ClusterError> {
        self.0.list(r, ns, selector, limit, token).await
    }
    async fn get(&self, r: &ApiResourceInfo, ns: Option<&str>, name: &str) -> Result<Option<Value>, ClusterError> {
        self.0.get(r, ns, name).await
    }
    async fn create(&self, r: &ApiResourceInfo, ns: Option<&str>, object: &Value) -> Result<Value, ClusterError> {
        let fail = ClusterError::Unavailable { what: "create".into(), message: "simulated crash".into() };
        guarded!(self.1, fail, self.0.create(r, ns, object).await)
    }
    async fn replace(&self, r: &ApiResourceInfo, ns: Option<&str>, object: &Value) -> Result<Value, ClusterError> {
        let fail = ClusterError::Unavailable { what: "replace".into(), message: "simulated crash".into() };
        guarded!(self.1, fail, self.0.replace(r, ns, object).await)
    }
    async fn delete(&self, r: &ApiResourceInfo, ns: Option<&str>, name: &str) -> Result<bool, ClusterError> {
        let fail = ClusterError::Unavailable { what: "delete".into(), message: "simulated crash".into() };
        guarded!(self.1, fail, self.0.delete(r, ns, name).await)
    }
    async fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        command: &[String],
        timeout: std::time::Duration,
    ) -> Result<lifeboat_shared::ports::cluster::ExecOutput, ClusterError> {
        self.0.exec(ns, pod, container, command, timeout).await
    }
}

pub struct CrashingConnector(pub Arc<dyn ClusterConnector>, pub Arc<Crash>);

#[async_trait]
impl ClusterConnector for CrashingConnector {
    async fn connect(&self, cluster: &ClusterDef) -> Result<Arc<dyn Cluster>, ClusterError> {
        let inner = self.0.connect(cluster).await?;
        Ok(Arc::new(CrashingCluster(inner, Arc::clone(&self.1))))
    }
}

/// `app` with every port it writes through (state, objects, bus, clusters) crashing at `crash`.
pub fn crashing(app: &lifeboat::app::AppState, crash: &Arc<Crash>) -> lifeboat::app::AppState {
    let mut app = app.clone();
    app.state = Arc::new(CrashingState(Arc::clone(&app.state), Arc::clone(crash)));
    app.objects = Arc::new(CrashingObjects(Arc::clone(&app.objects), Arc::clone(crash)));
    app.bus = Arc::new(CrashingBus(Arc::clone(&app.bus), Arc::clone(crash)));
    app.clusters = Arc::new(CrashingConnector(Arc::clone(&app.clusters), Arc::clone(crash)));
    app
}

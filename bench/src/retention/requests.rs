//! Counts the Table Storage requests of a daily prune: `workflows::prune` runs against the
//! SQLite state store (which pages queries at Table Storage's 1,000 entities) wrapped in a
//! counter, one request per port call, as the Table adapter makes one HTTP request per call.
//! Every cluster is reached through a kubeconfig naming one in-process test API server (with
//! the snapshot CRDs), so prune reads each cluster's snapshots as it would in production; those
//! requests go to the API servers, not to Table Storage, and are not counted here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use lifeboat_shared::adapters::local_dir::LocalDirObjectStore;
use lifeboat_shared::adapters::sqlite::SqliteStateStore;
use lifeboat_shared::catalog;
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::messages::BackupReason;
use lifeboat_shared::domain::names::{ClusterName, PolicyName};
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::domain::records::{BackupRecord, BackupState};
use lifeboat_shared::domain::retention::Options;
use lifeboat_shared::ports::{BatchOp, ETag, Entity, Page, Query, StateStore, StateStoreError};
use lifeboat_shared::workflows::prune;

/// Calls by kind.
#[derive(Debug, Default)]
pub struct Counts {
    reads: AtomicU64,
    queries: AtomicU64,
    writes: AtomicU64,
    deletes: AtomicU64,
    transactions: AtomicU64,
}

/// A state store that counts the calls it forwards.
pub struct Counting<S> {
    inner: S,
    /// What was counted.
    pub counts: Arc<Counts>,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[async_trait]
impl<S: StateStore> StateStore for Counting<S> {
    async fn insert(&self, table: &str, entity: &Entity) -> Result<ETag, StateStoreError> {
        bump(&self.counts.writes);
        self.inner.insert(table, entity).await
    }
    async fn upsert(&self, table: &str, entity: &Entity) -> Result<ETag, StateStoreError> {
        bump(&self.counts.writes);
        self.inner.upsert(table, entity).await
    }
    async fn update(&self, table: &str, entity: &Entity, if_match: &ETag) -> Result<ETag, StateStoreError> {
        bump(&self.counts.writes);
        self.inner.update(table, entity, if_match).await
    }
    async fn get(&self, table: &str, pk: &str, rk: &str) -> Result<Option<Entity>, StateStoreError> {
        bump(&self.counts.reads);
        self.inner.get(table, pk, rk).await
    }
    async fn delete(&self, table: &str, pk: &str, rk: &str, if_match: Option<&ETag>) -> Result<(), StateStoreError> {
        bump(&self.counts.deletes);
        self.inner.delete(table, pk, rk, if_match).await
    }
    async fn query(&self, table: &str, query: &Query) -> Result<Page, StateStoreError> {
        bump(&self.counts.queries);
        self.inner.query(table, query).await
    }
    async fn transact(&self, table: &str, pk: &str, ops: &[BatchOp]) -> Result<Vec<Option<ETag>>, StateStoreError> {
        bump(&self.counts.transactions);
        self.inner.transact(table, pk, ops).await
    }
}

/// What one counted prune cost.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestReport {
    /// Targets pruned.
    pub targets: usize,
    /// Catalog entries before the run.
    pub entries: usize,
    /// Backups removed.
    pub removed: usize,
    /// Query pages.
    pub queries: u64,
    /// Point reads.
    pub reads: u64,
    /// Inserts, updates, upserts.
    pub writes: u64,
    /// Deletes.
    pub deletes: u64,
    /// Entity-group transactions (up to 100 operations of one partition each).
    pub transactions: u64,
    /// All requests.
    pub total: u64,
    /// Wall time of the run against SQLite, milliseconds (not Azure's latency).
    pub elapsed_ms: f64,
}

/// The policy of every target: hourly backups, a day of them, then a week of dailies.
const POLICY: &str = "  schedule: '0 0 * * * *'\n  rpo: 2h\n  retention: { keepLast: 24, daily: 7 }\n";

/// When the daily prune runs.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 2, 30, 0).single().unwrap_or_default()
}

fn config(targets: usize, kubeconfig: &std::path::Path) -> anyhow::Result<Config> {
    let mut yaml = String::new();
    let kubeconfig = kubeconfig.display();
    for t in 0..targets {
        yaml.push_str(&format!(
            "apiVersion: lifeboat.io/v1alpha1\nkind: Cluster\nmetadata: {{ name: c{t:04} }}\nspec: {{ region: westeurope, kubeconfig: {{ path: \"{kubeconfig}\" }} }}\n---\n\
             apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {{ name: p{t:04} }}\nspec:\n  clusters: [c{t:04}]\n{POLICY}---\n"
        ));
    }
    Config::from_sources([("bench.yaml", yaml.as_str())]).map_err(|e| anyhow::anyhow!("bench config: {e:?}"))
}

/// Seeds each target as a daily prune finds it: yesterday's survivors (24 hourlies and six
/// older dailies) plus the 24 hourlies taken since; then prunes once, counting.
pub async fn measure(targets: usize) -> anyhow::Result<RequestReport> {
    let dir = tempfile::tempdir()?;
    let counts = Arc::new(Counts::default());
    let state = Counting { inner: SqliteStateStore::in_memory()?, counts: counts.clone() };
    let objects = LocalDirObjectStore::open(dir.path().join("objects"))?;
    let server = lifeboat_test_apiserver::TestApiServer::start(lifeboat_test_apiserver::Options::default()).await?;
    server.seed_snapshot_crds().await.map_err(|e| anyhow::anyhow!("snapshot CRDs: {e:?}"))?;
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig)?;
    let config = config(targets, &kubeconfig)?;
    let newest = now() - Duration::minutes(30);
    let mut slots: Vec<DateTime<Utc>> = (0..48).map(|h| newest - Duration::hours(h)).collect();
    slots.extend((2..8).map(|d| newest - Duration::days(d) - Duration::hours(3)));
    for t in 0..targets {
        let (cluster, policy) = (ClusterName::new(format!("c{t:04}"))?, PolicyName::new(format!("p{t:04}"))?);
        for &slot in &slots {
            let id = BackupId::scheduled(&policy, slot);
            let reason = BackupReason::Scheduled { slot };
            let mut record = BackupRecord::requested(id, cluster.clone(), policy.clone(), reason, slot);
            record.state = BackupState::Committed;
            catalog::claim(&state, &record).await?;
        }
    }
    for c in [&counts.reads, &counts.queries, &counts.writes, &counts.deletes, &counts.transactions] {
        c.store(0, Ordering::Relaxed);
    }
    let start = Instant::now();
    let clusters = lifeboat_shared::adapters::kube::KubeconfigConnector::default();
    let deps = prune::PruneDeps {
        state: &state,
        objects: &objects,
        clusters: &clusters,
        replicas: &[],
        replica_retry: Default::default(),
    };
    let report = prune::run(&config, deps, &Options::at(now()), false).await?;
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (queries, reads, writes, deletes) =
        (load(&counts.queries), load(&counts.reads), load(&counts.writes), load(&counts.deletes));
    let transactions = load(&counts.transactions);
    Ok(RequestReport {
        targets,
        entries: targets * slots.len(),
        removed: report.backups.iter().filter(|b| b.removed).count(),
        queries,
        reads,
        writes,
        deletes,
        transactions,
        total: queries + reads + writes + deletes + transactions,
        elapsed_ms,
    })
}

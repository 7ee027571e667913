//! The restore benchmark: a restore of N objects (read the archive, check every digest, plan,
//! apply tier by tier, record progress) against a raw parallel create of the same objects
//! (the plan's own bodies, namespaces first) into a fresh test API server, in the same run and
//! process, alternating which goes first. Prints the rate ratio (restore ÷ raw; target ≥ 0.8)
//! and the RTO the restore recorded.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use futures_util::StreamExt;
use lifeboat_shared::adapters::kube::KubeCluster;
use lifeboat_shared::adapters::local_dir::LocalDirObjectStore;
use lifeboat_shared::adapters::sqlite::{QueueSettings, SqliteQueue, SqliteStateStore};
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::messages::{BackupReason, BackupRequest, Priority, RestorePhase, RestoreRequest};
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::domain::restore::PlannedObject;
use lifeboat_shared::ports::{Cluster, SystemClock};
use lifeboat_shared::workflows::{backup, restore};
use lifeboat_test_apiserver::{Options, Running, TestApiServer};
use serde::Serialize;

use crate::backup::seed;

/// One object count's figures (medians over the runs).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Objects in the backup.
    pub objects: usize,
    /// Objects the restore sent (namespaces included).
    pub applied: u64,
    /// Raw parallel create, seconds.
    pub raw_seconds: f64,
    /// Restore, seconds (from the message to the recorded end).
    pub restore_seconds: f64,
    /// Restore rate ÷ raw rate.
    pub rate_ratio: f64,
    /// The recovery time the restore recorded, seconds.
    pub recorded_rto_seconds: u64,
}

/// Runs the benchmark for each count, `runs` times each.
///
/// # Errors
/// When a server cannot start, the backup does not commit, or a restore does not complete.
pub async fn run(counts: &[usize], runs: usize, parallelism: usize) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &count in counts {
        rows.push(measure(count, runs.max(1), parallelism).await.with_context(|| format!("{count} objects"))?);
    }
    Ok(rows)
}

async fn server(dir: &std::path::Path, name: &str) -> anyhow::Result<(Running, std::path::PathBuf)> {
    let server = TestApiServer::start(Options::default()).await.context("start a test API server")?;
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    server.write_kubeconfig(&kubeconfig).context("write a kubeconfig")?;
    Ok((server, kubeconfig))
}

fn config(source: &std::path::Path, target: &std::path::Path) -> anyhow::Result<Config> {
    let yaml = format!(
        r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: source }}
spec: {{ region: westeurope, kubeconfig: {{ path: "{}" }} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: target }}
spec: {{ region: westeurope, kubeconfig: {{ path: "{}" }} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{ name: bench }}
spec:
  clusters: [source]
  schedule: "0 0 * * * *"
  rpo: 1h
  retention: {{ keepLast: 1 }}
  selection: {{ includeNamespaces: ["bench-*"], clusterScoped: none }}
  restores: [ {{ clusters: [target], namespaces: ["*"] }} ]
"#,
        source.display(),
        target.display()
    );
    Config::from_sources([("bench.yaml", yaml.as_str())]).map_err(|e| anyhow::anyhow!("config: {e:?}"))
}

async fn measure(count: usize, runs: usize, parallelism: usize) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir().context("scratch directory")?;
    let (source, source_kc) = server(dir.path(), "source").await?;
    seed::seed(source.store(), count)?;
    let state = SqliteStateStore::open(&dir.path().join("state.sqlite")).context("state store")?;
    let objects = LocalDirObjectStore::open(dir.path().join("objects")).context("object store")?;
    let clock = Arc::new(SystemClock);
    let bus = SqliteQueue::open(&dir.path().join("queues.sqlite"), clock.clone(), QueueSettings::default())
        .context("queues")?;
    let source_cluster = KubeCluster::from_kubeconfig(Some(&source_kc), None).await.context("connect")?;

    // The backup to restore from.
    let target_kc_placeholder = dir.path().join("unused.kubeconfig");
    let cfg = config(&source_kc, &target_kc_placeholder)?;
    let request = BackupRequest {
        schema_version: 1,
        backup_id: BackupId::parse("bench-1").context("id")?,
        cluster: "source".parse().context("name")?,
        policy: "bench".parse().context("name")?,
        reason: BackupReason::OnDemand { request_id: "bench".into(), requested_by: None },
        priority: Priority::High,
        requested_at: chrono::Utc::now(),
        step: lifeboat_shared::domain::messages::BackupStep::Whole,
    };
    let deps =
        backup::Deps { state: &state, objects: &objects, bus: &bus, cluster: &source_cluster, now: chrono::Utc::now() };
    let outcome = backup::run(&deps, &backup::BackupSettings::default(), &cfg, &request).await.context("backup")?;
    anyhow::ensure!(matches!(outcome, backup::Outcome::Committed { .. }), "the backup did not commit: {outcome:?}");
    eprintln!("restore-bench: {count} objects backed up");

    let (mut raw, mut restored, mut rtos) = (Vec::new(), Vec::new(), Vec::new());
    let mut applied = 0;
    for run in 0..runs {
        for restore_first in if run % 2 == 0 { [false, true] } else { [true, false] } {
            let (target, target_kc) = server(dir.path(), &format!("target-{run}-{restore_first}")).await?;
            let target_cluster = KubeCluster::from_kubeconfig(Some(&target_kc), None).await.context("connect")?;
            let cfg = config(&source_kc, &target_kc)?;
            let mut request: RestoreRequest = serde_json::from_value(serde_json::json!({
                "schemaVersion": 1, "requestId": format!("bench-{run}-{restore_first}"),
                "sourceCluster": "source", "backup": {"kind": "id", "backupId": "bench-1"}, "targetCluster": "target",
            }))
            .context("request")?;
            if restore_first {
                request.dry_run = false;
                let deps = restore::Deps {
                    state: &state,
                    objects: &objects,
                    replicas: &[],
                    bus: &bus,
                    cluster: &target_cluster,
                    clock: clock.as_ref(),
                };
                let settings = restore::RestoreSettings { parallelism, ..Default::default() };
                let started = Instant::now();
                let outcome = restore::run(&deps, &settings, &cfg, &request).await.context("restore")?;
                let seconds = started.elapsed().as_secs_f64();
                let restore::Outcome::Finished { phase: RestorePhase::Completed, counts, rto_seconds, .. } = outcome
                else {
                    anyhow::bail!("the restore did not complete: {outcome:?}");
                };
                eprintln!("restore-bench: {count} objects, restore: {seconds:.3} s ({} sent)", counts.planned);
                applied = counts.planned;
                restored.push(seconds);
                rtos.push(rto_seconds);
            } else {
                let planning = Instant::now();
                let sources = restore::Sources { primary: &objects, replicas: &[] };
                let prepared = restore::prepare(&state, sources, &cfg, &request, &Default::default(), None)
                    .await
                    .context("plan")?;
                eprintln!(
                    "restore-bench: {count} objects, reading, checking and planning alone: {:.3} s \
                     (read and check {:.3} s, plan {:.3} s)",
                    planning.elapsed().as_secs_f64(),
                    prepared.read_time.as_secs_f64(),
                    prepared.plan_time.as_secs_f64()
                );
                let started = Instant::now();
                raw_create(&target_cluster, &prepared.plan.steps, parallelism).await?;
                let seconds = started.elapsed().as_secs_f64();
                eprintln!("restore-bench: {count} objects, raw create: {seconds:.3} s");
                raw.push(seconds);
            }
            target.shutdown().await;
        }
    }
    let (raw_seconds, restore_seconds) = (median(&mut raw), median(&mut restored));
    rtos.sort_unstable();
    Ok(Row {
        objects: count,
        applied,
        raw_seconds,
        restore_seconds,
        rate_ratio: raw_seconds / restore_seconds,
        recorded_rto_seconds: rtos.get(rtos.len() / 2).copied().unwrap_or_default(),
    })
}

/// The baseline: namespaces, then every other object, `parallelism` creates in flight, no
/// reading, checking, ordering or recording.
async fn raw_create(cluster: &KubeCluster, steps: &[PlannedObject], parallelism: usize) -> anyhow::Result<()> {
    let (namespaces, rest): (Vec<&PlannedObject>, Vec<&PlannedObject>) =
        steps.iter().partition(|s| s.kind == "Namespace");
    for batch in [namespaces, rest] {
        let mut creates = futures_util::stream::iter(batch.into_iter().map(|s| async move {
            let resource = restore::resource_of(s);
            cluster.create(&resource, s.namespace.as_deref(), &s.object).await
        }))
        .buffer_unordered(parallelism);
        while let Some(result) = creates.next().await {
            result.context("raw create")?;
        }
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The figures as a table.
pub fn table(rows: &[Row], parallelism: usize) -> String {
    let mut out = format!(
        "restore vs raw parallel create ({parallelism} in flight), medians\n{:>8} {:>8} {:>10} {:>10} {:>12} {:>8}\n",
        "objects", "sent", "raw s", "restore s", "rate ratio", "RTO s"
    );
    for r in rows {
        out.push_str(&format!(
            "{:>8} {:>8} {:>10.3} {:>10.3} {:>11.2}x {:>8}\n",
            r.objects, r.applied, r.raw_seconds, r.restore_seconds, r.rate_ratio, r.recorded_rto_seconds
        ));
    }
    out.push_str("target: rate ratio >= 0.8x\n");
    out
}

//! One measured run, in its own process: connects through the kubeconfig, then either lists
//! every object the export would list (the baseline) or runs the export itself, and reports
//! the time taken and the process's peak RSS.

use std::time::Instant;

use anyhow::Context;
use futures_util::StreamExt;
use lifeboat_shared::adapters::kube::KubeCluster;
use lifeboat_shared::adapters::local_dir::LocalDirObjectStore;
use lifeboat_shared::domain::policy::{ClusterScoped, Selection};
use lifeboat_shared::domain::selection::plan_resources;
use lifeboat_shared::ports::cluster::{ApiResourceInfo, Cluster, ClusterError};
use lifeboat_shared::workflows::backup::export::{ExportOptions, export};
use serde::{Deserialize, Serialize};

use super::args::{ChildArgs, Mode};
use crate::probe::proc_status_kib;

/// The archive's key in the scratch object store.
const ARCHIVE_KEY: &str = "backups/bench/bench-1/resources.tar.zst";

/// What one run measured, printed by the child as one JSON line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub mode: Mode,
    /// Objects listed (baseline) or written to the archive (export).
    pub objects: u64,
    /// From discovery to the last page (baseline) or to the uploaded archive (export).
    pub seconds: f64,
    /// The child's `VmHWM` at the end.
    pub peak_rss_kib: u64,
    /// Archive bytes stored (export only).
    pub stored_bytes: Option<u64>,
}

/// Runs `args.mode` once against the server in `args.kubeconfig`.
///
/// # Errors
///
/// When the kubeconfig cannot be used, a list or the export fails, or `/proc` cannot be read.
pub async fn run(args: &ChildArgs) -> anyhow::Result<Outcome> {
    let cluster = KubeCluster::from_kubeconfig(Some(&args.kubeconfig), None).await.context("connect")?;
    let selection = Selection::default();
    let started = Instant::now();
    let (objects, stored_bytes) = match args.mode {
        Mode::List => (list(&cluster, &selection, args.page_size, args.concurrency).await?, None),
        Mode::Export => {
            let store = LocalDirObjectStore::open(&args.scratch).context("open the scratch object store")?;
            let options =
                ExportOptions { page_size: args.page_size, list_concurrency: args.concurrency, ..Default::default() };
            let result = export(&cluster, &store, ARCHIVE_KEY, &selection, &options).await.context("export")?;
            (result.index.map_or(0, |i| i.count), Some(result.stored_bytes))
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_kib = proc_status_kib(std::process::id(), "VmHWM")?;
    Ok(Outcome { mode: args.mode, objects, seconds, peak_rss_kib, stored_bytes })
}

/// The baseline: the lists the export makes (discovery, namespaces, every planned type across
/// all namespaces with `concurrency` at once, CRDs for `clusterScoped: auto`), through the same
/// port with the same page size; items are counted and dropped.
async fn list(cluster: &dyn Cluster, selection: &Selection, page_size: u32, concurrency: usize) -> anyhow::Result<u64> {
    let discovered = cluster.discover().await.context("discovery")?;
    let plan = plan_resources(&discovered, selection);
    let find = |name: &str| discovered.iter().find(|r| r.group_resource() == name);
    let mut total = 0;
    if let Some(namespaces) = find("namespaces") {
        total += list_pages(cluster, namespaces, page_size).await?;
    }
    let units = plan.namespaced.iter().chain(&plan.cluster_scoped);
    let mut pages =
        futures_util::stream::iter(units.map(|r| list_pages(cluster, r, page_size))).buffer_unordered(concurrency);
    while let Some(count) = pages.next().await {
        total += count?;
    }
    drop(pages);
    if selection.cluster_scoped == ClusterScoped::Auto
        && let Some(crds) = find("customresourcedefinitions.apiextensions.k8s.io")
    {
        total += list_pages(cluster, crds, page_size).await?;
    }
    Ok(total)
}

/// Counts every object of `r`, page by page; types the server refuses count as empty, as the
/// export passes them over.
async fn list_pages(cluster: &dyn Cluster, r: &ApiResourceInfo, page_size: u32) -> anyhow::Result<u64> {
    let mut count = 0;
    let mut token: Option<String> = None;
    loop {
        let page = match cluster.list(r, None, None, page_size, token.as_deref()).await {
            Ok(page) => page,
            Err(ClusterError::Forbidden { .. } | ClusterError::NotFound { .. }) => return Ok(count),
            Err(e) => return Err(e).with_context(|| format!("list {}", r.group_resource())),
        };
        count += page.items.len() as u64;
        match page.continue_token {
            Some(t) => token = Some(t),
            None => return Ok(count),
        }
    }
}

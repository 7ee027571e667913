//! The export: lists the selected objects in parallel (bounded), streams them into the archive
//! on a blocking thread, and uploads the archive while it is written. Memory stays bounded
//! whatever the cluster's size: pages in flight, a bounded queue of objects, and the archive
//! channel's chunks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::archive::{ArchiveOptions, ArchiveSummary, ArchiveWriter, EntryPath, EntryRecord, channel};
use crate::domain::hooks::{PodHooks, pod_hooks};
use crate::domain::policy::{ClusterScoped, Selection};
use crate::domain::resources::ApiResourceInfo;
use crate::domain::selection::{
    BACKUP_ID_LABEL, ClusterRef, cluster_references, crd_names, namespace_selected, plan_resources,
};
use crate::domain::shards::Shard;
use crate::ports::cluster::{Cluster, ClusterError};
use crate::ports::object_store::{ObjectStore, ObjectStoreError, PutOptions};
use crate::workflows::retry::{RetryPolicy, with_retry};

use super::object_index::{self, IndexSinks, ObjectIndex};

/// Tuning of the export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Objects per list page.
    pub page_size: u32,
    /// Lists running at once.
    pub list_concurrency: usize,
    /// Objects waiting for the archive writer, at most.
    pub queue_objects: usize,
    /// Retries of API calls.
    pub retry: RetryPolicy,
    /// Archive format options (compression, encryption recipients).
    pub archive: ArchiveOptions,
    /// The part of a sharded backup this export covers (its namespaces, and cluster-scoped
    /// objects for part 0); `None` exports everything selected.
    pub shard: Option<Shard>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            page_size: 500,
            list_concurrency: 4,
            queue_objects: 256,
            retry: RetryPolicy::default(),
            archive: ArchiveOptions::default(),
            shard: None,
        }
    }
}

/// A bound PVC found in a selected namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PvcRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The bound PV.
    pub volume_name: String,
}

/// What the export wrote and found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportResult {
    /// Every object written, with its digest: streamed to the object index (see
    /// [`super::object_index`]); the manifest gets them from there.
    #[serde(default)]
    pub index: Option<ObjectIndex>,
    /// Every object written, with its digest, as export records made before the object index
    /// held them (read so that a backup in flight across an upgrade still commits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<EntryRecord>,
    /// Objects per resource type.
    pub counts: BTreeMap<String, u64>,
    /// Types passed over, with the reason.
    pub skipped: BTreeMap<String, String>,
    /// Types that could not be read (forbidden, gone), with the reason.
    pub warnings: Vec<String>,
    /// Bound PVCs of the selected namespaces.
    pub pvcs: Vec<PvcRef>,
    /// Selected pods that declare pre- or post-snapshot hooks, by namespace and name.
    #[serde(default)]
    pub hooks: Vec<PodHooks>,
    /// Archive totals.
    pub entries: u64,
    /// Bytes before compression.
    pub uncompressed_bytes: u64,
    /// Bytes stored.
    pub stored_bytes: u64,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The API server failed past retries.
    #[error("reading the cluster failed")]
    Cluster(#[source] ClusterError),
    /// Writing the archive failed.
    #[error("writing the archive failed: {0}")]
    Archive(String),
    /// Uploading the archive failed.
    #[error("uploading the archive failed")]
    Upload(#[source] crate::ports::ObjectStoreError),
    /// The archive writer stopped (because the upload or the writer failed: see those).
    #[error("the archive writer stopped")]
    WriterStopped,
}

impl ExportError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ExportError::Cluster(e) => e.is_transient(),
            ExportError::Archive(_) => false,
            ExportError::Upload(e) => e.is_transient(),
            ExportError::WriterStopped => true,
        }
    }
}

enum Item {
    Object(EntryPath, Vec<u8>),
    Abort(String),
}

/// What listing one unit found besides the objects it sent.
#[derive(Default)]
struct Found {
    counts: BTreeMap<String, u64>,
    refs: BTreeSet<ClusterRef>,
    pvcs: Vec<PvcRef>,
    hooks: Vec<PodHooks>,
    warnings: Vec<String>,
}

impl Found {
    fn merge(&mut self, other: Found) {
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
        self.refs.extend(other.refs);
        self.pvcs.extend(other.pvcs);
        self.hooks.extend(other.hooks);
        self.warnings.extend(other.warnings);
    }
}

struct Lister<'a> {
    cluster: &'a dyn Cluster,
    options: &'a ExportOptions,
    selection: &'a Selection,
    namespaces: &'a BTreeSet<String>,
    tx: mpsc::Sender<Item>,
}

fn entry_path(r: &ApiResourceInfo, object: &Value) -> Option<EntryPath> {
    let name = object.pointer("/metadata/name").and_then(Value::as_str)?;
    match object.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if r.namespaced => EntryPath::namespaced(&r.resource, &r.group, ns, name).ok(),
        _ => EntryPath::cluster_scoped(&r.resource, &r.group, name).ok(),
    }
}

fn is_lifeboats_own(object: &Value) -> bool {
    object.pointer("/metadata/labels").and_then(|l| l.get(BACKUP_ID_LABEL)).is_some()
}

impl Lister<'_> {
    /// Sends one object to the writer, recording what it refers to.
    async fn send(&self, r: &ApiResourceInfo, object: Value, found: &mut Found) -> Result<(), ExportError> {
        if let Some(ns) = object.pointer("/metadata/namespace").and_then(Value::as_str)
            && r.namespaced
            && !self.namespaces.contains(ns)
        {
            return Ok(());
        }
        if is_lifeboats_own(&object) {
            return Ok(());
        }
        let Some(path) = entry_path(r, &object) else {
            found.warnings.push(format!("{}: an object without a usable name was passed over", r.group_resource()));
            return Ok(());
        };
        if r.namespaced {
            found.refs.extend(cluster_references(r, &object));
        }
        if r.group_resource() == "persistentvolumeclaims"
            && object.pointer("/status/phase").and_then(Value::as_str) == Some("Bound")
            && let (Some(ns), Some(name), Some(pv)) = (
                object.pointer("/metadata/namespace").and_then(Value::as_str),
                object.pointer("/metadata/name").and_then(Value::as_str),
                object.pointer("/spec/volumeName").and_then(Value::as_str),
            )
        {
            found.pvcs.push(PvcRef { namespace: ns.into(), name: name.into(), volume_name: pv.into() });
        }
        if r.group_resource() == "pods"
            && let Some(hooks) = pod_hooks(&object)
        {
            found.hooks.push(hooks);
        }
        let bytes = serde_json::to_vec_pretty(&object).map_err(|e| ExportError::Archive(e.to_string()))?;
        *found.counts.entry(r.group_resource()).or_default() += 1;
        self.tx.send(Item::Object(path, bytes)).await.map_err(|_| ExportError::WriterStopped)
    }

    /// Lists every page of `r` in `namespace` (or everywhere).
    async fn list_unit(&self, r: &ApiResourceInfo, namespace: Option<&str>) -> Result<Found, ExportError> {
        let mut found = Found::default();
        let mut token: Option<String> = None;
        let label_selector = if r.namespaced { self.selection.label_selector.as_deref() } else { None };
        loop {
            let page = with_retry(self.options.retry, || {
                self.cluster.list(r, namespace, label_selector, self.options.page_size, token.as_deref())
            })
            .await;
            let page = match page {
                Ok(p) => p,
                Err(e @ (ClusterError::Forbidden { .. } | ClusterError::NotFound { .. })) => {
                    found.warnings.push(format!("{} not backed up: {e}", r.group_resource()));
                    return Ok(found);
                }
                Err(e) => return Err(ExportError::Cluster(e)),
            };
            for object in page.items {
                self.send(r, object, &mut found).await?;
            }
            match page.continue_token {
                Some(t) => token = Some(t),
                None => return Ok(found),
            }
        }
    }
}

/// Exports what `selection` selects from `cluster` into the archive at `key`.
///
/// # Errors
/// [`ExportError`]; nothing is left at `key` when it fails (the upload fails with it).
pub async fn export(
    cluster: &dyn Cluster,
    objects: &dyn ObjectStore,
    key: &str,
    selection: &Selection,
    options: &ExportOptions,
) -> Result<ExportResult, ExportError> {
    // A bad recipient is found before anything is listed or uploaded.
    ArchiveWriter::new(std::io::sink(), &options.archive).map_err(|e| ExportError::Archive(e.to_string()))?;
    let discovered = with_retry(options.retry, || cluster.discover()).await.map_err(ExportError::Cluster)?;
    let plan = plan_resources(&discovered, selection);
    let by_name: BTreeMap<String, &ApiResourceInfo> = discovered.iter().map(|r| (r.group_resource(), r)).collect();
    let namespaces_type = by_name.get("namespaces").copied().cloned();
    let namespace_objects = match &namespaces_type {
        Some(ns_type) => list_everything(cluster, ns_type, options).await.map_err(ExportError::Cluster)?,
        None => Vec::new(),
    };
    let selected: BTreeSet<String> = namespace_objects
        .iter()
        .filter_map(|n| n.pointer("/metadata/name").and_then(Value::as_str))
        .filter(|n| namespace_selected(n, selection))
        .filter(|n| options.shard.is_none_or(|s| s.holds_namespace(n)))
        .map(str::to_owned)
        .collect();

    let (tx, rx) = mpsc::channel(options.queue_objects.max(1));
    let (sink, stream) = channel(8, 256 * 1024);
    let (index_sinks, index_upload) = object_index::start_upload(objects, key, &options.archive.recipients);
    let writer = tokio::task::spawn_blocking({
        let archive_options = options.archive.clone();
        move || write_archive(sink, index_sinks, rx, &archive_options)
    });
    let stored = Arc::new(AtomicU64::new(0));
    let counted = {
        let stored = Arc::clone(&stored);
        Box::pin(stream.inspect_ok(move |chunk| {
            stored.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }))
    };
    let upload =
        objects.put(key, counted, PutOptions { if_absent: false, content_type: Some("application/zstd".into()) });

    let lister = Lister { cluster, options, selection, namespaces: &selected, tx };
    let listing = async move {
        let result =
            list_selected(&lister, &plan.namespaced, &plan.cluster_scoped, &by_name, &namespace_objects, selection)
                .await;
        if let Err(e) = &result {
            // The writer must fail the upload rather than finish a partial archive.
            let _ = lister.tx.send(Item::Abort(e.to_string())).await;
        }
        drop(lister);
        result
    };
    let (listed, uploaded, index_uploaded) = tokio::join!(listing, upload, index_upload);
    let written = writer.await.map_err(|e| ExportError::Archive(e.to_string()))?;
    // One failure stops all three; report the one that started it: the cluster, then the
    // upload (the writer then only saw its consumer go), then the writer.
    let found = match listed {
        Err(ExportError::WriterStopped) => None,
        other => Some(other?),
    };
    first_upload_failure(uploaded, index_uploaded)?;
    let (index, summary) = written?;
    let found = found.ok_or(ExportError::WriterStopped)?;

    let mut pvcs = found.pvcs;
    pvcs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut hooks = found.hooks;
    hooks.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
    Ok(ExportResult {
        index: Some(ObjectIndex::of(key, index.count, index.sealed)),
        objects: Vec::new(),
        counts: found.counts,
        skipped: plan.skipped.into_iter().collect(),
        warnings: found.warnings,
        pvcs,
        hooks,
        entries: summary.entries,
        uncompressed_bytes: summary.uncompressed_bytes,
        stored_bytes: stored.load(Ordering::Relaxed),
    })
}

/// The failure of the archive's or the index's upload, if either failed. When one upload fails
/// the writer fails the other's stream, so the transient failure (the store's) is the one that
/// started it.
pub(crate) fn first_upload_failure(
    archive: Result<crate::ports::ObjectMeta, ObjectStoreError>,
    index: Result<(), ObjectStoreError>,
) -> Result<(), ExportError> {
    match (archive, index) {
        (Ok(_), Ok(_)) => Ok(()),
        (Err(e), _) | (_, Err(e)) if e.is_transient() => Err(ExportError::Upload(e)),
        (Err(e), _) | (_, Err(e)) => Err(ExportError::Upload(e)),
    }
}

async fn list_selected(
    lister: &Lister<'_>,
    namespaced: &[ApiResourceInfo],
    cluster_scoped: &[ApiResourceInfo],
    by_name: &BTreeMap<String, &ApiResourceInfo>,
    namespace_objects: &[Value],
    selection: &Selection,
) -> Result<Found, ExportError> {
    // Every namespace when none is named (one list per type), else each named one; a part of
    // a sharded backup lists its own namespaces only, and the cluster-scoped types in part 0.
    let everywhere = selection.include_namespaces.is_empty() && lister.options.shard.is_none();
    let cluster_scoped = match lister.options.shard {
        Some(shard) if !shard.holds_cluster_scoped() => &[][..],
        _ => cluster_scoped,
    };
    let units: Vec<(&ApiResourceInfo, Option<&str>)> = namespaced
        .iter()
        .flat_map(|r| {
            let scopes: Vec<Option<&str>> =
                if everywhere { vec![None] } else { lister.namespaces.iter().map(|n| Some(n.as_str())).collect() };
            scopes.into_iter().map(move |ns| (r, ns))
        })
        .chain(cluster_scoped.iter().map(|r| (r, None)))
        .collect();
    let mut found = Found::default();
    // Boxed so the future stays Send for any lifetime (stream combinators over borrowing
    // closures otherwise trip rustc's higher-ranked Send check).
    type Unit<'f> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Found, ExportError>> + Send + 'f>>;
    let futures: Vec<Unit<'_>> =
        units.into_iter().map(|(r, ns)| Box::pin(lister.list_unit(r, ns)) as Unit<'_>).collect();
    let mut results = futures_util::stream::iter(futures).buffer_unordered(lister.options.list_concurrency.max(1));
    while let Some(unit) = results.next().await {
        found.merge(unit?);
    }
    drop(results);
    if selection.cluster_scoped == ClusterScoped::Auto {
        let extra = auto_cluster_scoped(lister, by_name, namespace_objects, &found).await?;
        found.merge(extra);
    }
    Ok(found)
}

/// `clusterScoped: auto`: the selected namespaces themselves, and the PVs, storage classes,
/// cluster roles and CRDs their objects need.
async fn auto_cluster_scoped(
    lister: &Lister<'_>,
    by_name: &BTreeMap<String, &ApiResourceInfo>,
    namespace_objects: &[Value],
    found: &Found,
) -> Result<Found, ExportError> {
    let mut extra = Found::default();
    if let Some(ns_type) = by_name.get("namespaces") {
        for ns in namespace_objects {
            let name = ns.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            if lister.namespaces.contains(name) {
                lister.send(ns_type, ns.clone(), &mut extra).await?;
            }
        }
    }
    let mut wanted: BTreeSet<ClusterRef> = found.refs.clone();
    let crd_type = "customresourcedefinitions.apiextensions.k8s.io";
    if let Some(crds) = by_name.get(crd_type) {
        let listed = list_everything(lister.cluster, crds, lister.options).await.map_err(ExportError::Cluster)?;
        let names: BTreeSet<String> = listed
            .iter()
            .filter_map(|c| c.pointer("/metadata/name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        let used: BTreeSet<String> = found.counts.keys().cloned().collect();
        wanted.extend(crd_names(&used, &names));
    }
    for reference in wanted {
        let Some(r) = by_name.get(&reference.group_resource) else { continue };
        let object = with_retry(lister.options.retry, || lister.cluster.get(r, None, &reference.name)).await;
        match object {
            Ok(Some(mut object)) => {
                if let Value::Object(map) = &mut object {
                    map.insert("apiVersion".into(), Value::String(r.api_version()));
                    map.insert("kind".into(), Value::String(r.kind.clone()));
                }
                lister.send(r, object, &mut extra).await?;
            }
            Ok(None) => {}
            Err(e @ ClusterError::Forbidden { .. }) => {
                extra.warnings.push(format!("{} not backed up: {e}", reference.name))
            }
            Err(e) => return Err(ExportError::Cluster(e)),
        }
    }
    Ok(extra)
}

/// Every object of a type (for small types: namespaces, CRDs).
async fn list_everything(
    cluster: &dyn Cluster,
    r: &ApiResourceInfo,
    options: &ExportOptions,
) -> Result<Vec<Value>, ClusterError> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page =
            with_retry(options.retry, || cluster.list(r, None, None, options.page_size, token.as_deref())).await?;
        all.extend(page.items);
        match page.continue_token {
            Some(t) => token = Some(t),
            None => return Ok(all),
        }
    }
}

/// What the writer thread wrote: the index's count and what a sealed index stored, and the
/// archive's totals.
type Written = Result<(object_index::IndexWritten, ArchiveSummary), ExportError>;

/// The writer thread: objects in, archive and object index out; an abort or an error fails
/// every stream.
fn write_archive(
    mut sink: crate::archive::ChannelWriter,
    index_sinks: IndexSinks,
    mut rx: mpsc::Receiver<Item>,
    options: &ArchiveOptions,
) -> Written {
    let index_error = |e: std::io::Error| ExportError::Archive(format!("writing the object index: {e}"));
    let mut index = match index_sinks.into_writer() {
        Ok(index) => index,
        Err(e) => {
            sink.fail(std::io::Error::other(e.to_string()));
            return Err(ExportError::Archive(e.to_string()));
        }
    };
    let result = (|| {
        let mut writer = ArchiveWriter::new(&mut sink, options).map_err(|e| ExportError::Archive(e.to_string()))?;
        while let Some(item) = rx.blocking_recv() {
            match item {
                Item::Object(path, bytes) => {
                    let record =
                        writer.append_object(&path, &bytes).map_err(|e| ExportError::Archive(e.to_string()))?;
                    index.append(&record).map_err(index_error)?;
                }
                Item::Abort(reason) => return Err(ExportError::Archive(format!("aborted: {reason}"))),
            }
        }
        writer.finish().map_err(|e| ExportError::Archive(e.to_string()))
    })();
    match result {
        Ok(summary) => {
            sink.finish().map_err(|e| ExportError::Archive(e.to_string()))?;
            Ok((object_index::finish(index).map_err(index_error)?, summary))
        }
        Err(e) => {
            sink.fail(std::io::Error::other(e.to_string()));
            object_index::fail(index, &e.to_string());
            Err(e)
        }
    }
}

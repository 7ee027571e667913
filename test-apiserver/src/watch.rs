//! Watch: newline-delimited `{"type":…,"object":…}` events from a resourceVersion, with
//! selector transitions (an object leaving a selector is `DELETED`), `BOOKMARK`s, streaming
//! lists (`sendInitialEvents`), `timeoutSeconds`, and 410 `Expired` for compacted versions.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use crate::catalog::ResourceDef;
use crate::list::ListOptions;
use crate::selectors::labels_of;
use crate::status::ApiError;
use crate::storage::{Change, Event};
use crate::store::{Store, gr_of, present};

/// What a watch request asked for.
pub(crate) struct WatchRequest {
    pub def: ResourceDef,
    pub namespace: Option<String>,
    pub opts: ListOptions,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
    pub bookmark_interval: Duration,
}

impl WatchRequest {
    fn selects(&self, obj: &Value) -> bool {
        let ns_ok = self.namespace.as_deref().is_none_or(|ns| obj["metadata"]["namespace"].as_str() == Some(ns));
        ns_ok && self.opts.labels.matches(&labels_of(obj)) && self.opts.fields.matches(obj)
    }

    /// The event to send for a store change, if this watch sees one.
    fn translate(&self, ev: &Event) -> Option<Value> {
        if ev.gr != gr_of(&self.def) {
            return None;
        }
        let now = self.selects(&ev.object);
        let before = ev.prev.as_ref().is_some_and(|p| self.selects(p));
        let kind = match (ev.change, before, now) {
            (Change::Added, _, true) => "ADDED",
            (Change::Modified, true, true) => "MODIFIED",
            (Change::Modified, false, true) => "ADDED",
            (Change::Modified, true, false) => "DELETED",
            (Change::Deleted, true, _) => "DELETED",
            _ => return None,
        };
        Some(json!({"type": kind, "object": present(&self.def, ev.object.clone())}))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"type": "BOOKMARK", "object": {"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": meta}})
    }
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

/// Starts a watch and returns the streaming response.
///
/// # Errors
/// 400/422 for bad options (a compacted version is reported in-stream, as the real server does).
pub(crate) fn start(store: &Store, req: WatchRequest, shutdown: watch::Receiver<bool>) -> Result<Response, ApiError> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let requested = req.opts.rv_number()?.filter(|rv| *rv > 0);
    let mut first: Vec<Value> = Vec::new();
    let (backlog, live, start_rv) = match requested {
        Some(rv) if !req.send_initial_events => match store.storage.watch_from(rv) {
            Ok((backlog, live)) => (backlog, Some(live), rv),
            Err(c) => {
                let status =
                    ApiError::expired(format!("too old resource version: {} ({})", c.requested, c.oldest)).to_status();
                first.push(json!({"type": "ERROR", "object": status}));
                (Vec::new(), None, rv)
            }
        },
        _ => {
            let (objects, rv, live) = store.storage.snapshot_and_subscribe(&gr_of(&req.def));
            for o in objects.into_iter().filter(|o| req.selects(o)) {
                first.push(json!({"type": "ADDED", "object": present(&req.def, o)}));
            }
            if req.send_initial_events {
                first.push(req.bookmark(rv, true));
            }
            (Vec::new(), Some(live), rv)
        }
    };
    tokio::spawn(pump(req, first, backlog, live, start_rv, tx, shutdown));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

async fn pump(
    req: WatchRequest,
    first: Vec<Value>,
    backlog: Vec<Arc<Event>>,
    live: Option<broadcast::Receiver<Arc<Event>>>,
    mut last_rv: u64,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    mut shutdown: watch::Receiver<bool>,
) {
    for v in &first {
        if tx.send(Ok(line(v))).await.is_err() {
            return;
        }
    }
    let Some(mut live) = live else { return };
    for ev in &backlog {
        last_rv = ev.rv;
        if let Some(v) = req.translate(ev)
            && tx.send(Ok(line(&v))).await.is_err()
        {
            return;
        }
    }
    let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut ticker = tokio::time::interval(req.bookmark_interval.max(Duration::from_millis(10)));
    ticker.tick().await;
    loop {
        let timeout = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = timeout => return,
            _ = shutdown.changed() => return,
            _ = ticker.tick(), if req.bookmarks => {
                if tx.send(Ok(line(&req.bookmark(last_rv, false)))).await.is_err() {
                    return;
                }
            }
            got = live.recv() => match got {
                Ok(ev) => {
                    if ev.rv <= last_rv {
                        continue;
                    }
                    last_rv = ev.rv;
                    if let Some(v) = req.translate(&ev)
                        && tx.send(Ok(line(&v))).await.is_err()
                    {
                        return;
                    }
                }
                // A slow watcher is closed, as the real server does; the client watches again.
                Err(_) => return,
            },
            () = tx.closed() => return,
        }
    }
}

//! [`CountingPolicy`]: an Azure SDK pipeline policy (put into
//! [`ClientSettings::policies`](crate::adapters::azure::ClientSettings::policies)) that counts,
//! at the HTTP level, the blob bytes a process downloads and uploads: so a test sees the
//! traffic of every client built with it, the Blob object store's and the server-side copier's
//! alike, whatever port they serve.
//!
//! Counted per request: the body of a successful GET as it streams to the client (a listing,
//! `comp=list`, apart from blob bodies), and the body of a PUT (a blob or block upload). A
//! HEAD reports a blob's length without sending it and counts nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{AsyncRawResponse, Context, Method, Request};
use futures_util::StreamExt;

/// What went through the clients sharing a [`CountingPolicy`] so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpTraffic {
    /// Body bytes of successful GETs of blobs (downloads).
    pub downloaded: u64,
    /// Body bytes of PUTs (uploads of blobs and blocks).
    pub uploaded: u64,
    /// Body bytes of listings.
    pub listed: u64,
    /// Requests sent.
    pub requests: u64,
}

/// Counts blob traffic; cheap to clone into several clients' settings (the counts are shared).
#[derive(Debug, Clone, Default)]
pub struct CountingPolicy {
    downloaded: Arc<AtomicU64>,
    uploaded: Arc<AtomicU64>,
    listed: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

impl CountingPolicy {
    /// The counts so far.
    pub fn traffic(&self) -> HttpTraffic {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        HttpTraffic {
            downloaded: load(&self.downloaded),
            uploaded: load(&self.uploaded),
            listed: load(&self.listed),
            requests: load(&self.requests),
        }
    }
}

#[async_trait]
impl Policy for CountingPolicy {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let method = request.method();
        if method == Method::Put {
            self.uploaded.fetch_add(request.body().len().unwrap_or_default(), Ordering::Relaxed);
        }
        let listing = request.url().query_pairs().any(|(k, v)| k == "comp" && v == "list");
        let Some((policy, rest)) = next.split_first() else {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "the counting policy is the last in the pipeline",
            ));
        };
        let response = policy.send(ctx, request, rest).await?;
        if method != Method::Get || !response.status().is_success() {
            return Ok(response);
        }
        let counter = Arc::clone(if listing { &self.listed } else { &self.downloaded });
        let (status, headers, body) = response.deconstruct();
        let counted = body.inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        });
        Ok(AsyncRawResponse::new(status, headers, Box::pin(counted)))
    }
}

//! The Entra ID token on every request to an AKS API server: fetched for the AKS server
//! application, cached, and fetched again [`REFRESH_MARGIN`] before it expires.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential};
use azure_core::time::{Duration, OffsetDateTime};
use http::HeaderValue;
use http::header::AUTHORIZATION;
use kube::client::Body;
use tower::buffer::Buffer;
use tower::filter::{AsyncFilter, AsyncPredicate};
use tower::{BoxError, Layer, Service};

/// The scope of the AKS server application (the same id in every AKS cluster with Entra ID).
pub const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";

/// Requests that may wait for a token at once before callers queue.
const PENDING_REQUESTS: usize = 64;

/// How long before its expiry a cached token is replaced.
pub const REFRESH_MARGIN: Duration = Duration::minutes(5);

/// Sets `Authorization: Bearer <token>` on each request, from a shared cache.
#[derive(Clone)]
pub(super) struct BearerToken {
    credential: Arc<dyn TokenCredential>,
    cached: Arc<tokio::sync::Mutex<Option<AccessToken>>>,
}

impl BearerToken {
    /// Tokens for [`AKS_SCOPE`] from `credential`.
    pub(super) fn new(credential: Arc<dyn TokenCredential>) -> Self {
        Self { credential, cached: Arc::new(tokio::sync::Mutex::new(None)) }
    }

    /// The header value: the cached token while it is good for more than [`REFRESH_MARGIN`],
    /// else a new one.
    async fn header(&self) -> Result<HeaderValue, BoxError> {
        let mut cached = self.cached.lock().await;
        let fresh = cached.as_ref().filter(|t| t.expires_on - REFRESH_MARGIN > OffsetDateTime::now_utc());
        let token = match fresh {
            Some(token) => token.clone(),
            None => {
                let token = self.credential.get_token(&[AKS_SCOPE], None).await.map_err(|e| {
                    BoxError::from(format!("getting an Entra ID token for the AKS server application: {e}"))
                })?;
                *cached = Some(token.clone());
                token
            }
        };
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.token.secret()))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl<B: Send + 'static> AsyncPredicate<http::Request<B>> for BearerToken {
    type Future = Pin<Box<dyn Future<Output = Result<http::Request<B>, BoxError>> + Send>>;
    type Request = http::Request<B>;

    fn check(&mut self, mut request: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let value = this.header().await?;
            request.headers_mut().insert(AUTHORIZATION, value);
            Ok(request)
        })
    }
}

/// Puts [`BearerToken`] in front of a `kube` service stack (buffered, as the token is awaited
/// before the request goes on).
#[derive(Clone)]
pub(super) struct BearerLayer(pub(super) BearerToken);

impl<S> Layer<S> for BearerLayer
where
    S: Service<http::Request<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send + Sync,
{
    type Service = AsyncFilter<Buffer<http::Request<Body>, S::Future>, BearerToken>;

    fn layer(&self, inner: S) -> Self::Service {
        AsyncFilter::new(Buffer::new(inner, PENDING_REQUESTS), self.0.clone())
    }
}

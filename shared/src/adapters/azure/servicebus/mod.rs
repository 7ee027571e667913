//! [`Bus`] on Azure Service Bus: the REST "Send Message" operation over the `azure_core` 1.x
//! pipeline, authenticated with an Entra ID token for `https://servicebus.azure.net/.default`.
//!
//! Why REST and not an AMQP client: the official `azure_messaging_servicebus` on `azure_core`
//! 1.x is not published; the community AMQP client (`azservicebus`) brings its own older
//! `azure_core` and `reqwest` (two HTTP/TLS/auth stacks in one binary). REST over the pipeline
//! the Blob and Table adapters use keeps one: the same credentials, retries, request ids and
//! redacted logging. Only sending is needed: in Azure the Functions host receives (triggers).
//!
//! The wire format followed is in [`wire`] (with the documentation's addresses). Answers map to
//! the port: 201 sent; 400, 403, 404, 410, 413 [`BusError::Invalid`]; 401
//! [`BusError::Unauthorized`]; 408, 429, 5xx, timeouts and connection failures
//! [`BusError::Unavailable`]. Retrying a send is safe: the message id is deterministic and the
//! entity's duplicate detection drops the second copy.

mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{ClientOptions, Context, Method, Pipeline, PipelineSendOptions, Request, RetryOptions, Url};
use tracing::instrument;

use super::credential::is_loopback;
use crate::ports::bus::{Bus, BusError, OutgoingMessage, validate};

/// The OAuth scope of Service Bus data-plane operations.
pub const SERVICE_BUS_SCOPE: &str = "https://servicebus.azure.net/.default";

/// Client settings.
#[derive(Debug, Clone)]
pub struct ServiceBusSettings {
    /// Retry 408, 429, 5xx and connection failures with the SDK's backoff (off in tests).
    pub retries: bool,
    /// Longest one send may take, retries included; past it the send is `Unavailable`.
    pub timeout: Duration,
}

impl Default for ServiceBusSettings {
    fn default() -> Self {
        Self { retries: true, timeout: Duration::from_secs(60) }
    }
}

/// Why the adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServiceBusSetupError {
    /// The namespace is not a host name such as `name.servicebus.windows.net`.
    #[error("invalid Service Bus namespace {namespace:?}: expected a host name such as <name>.servicebus.windows.net")]
    InvalidNamespace {
        /// The namespace given.
        namespace: String,
    },
    /// The endpoint is not an http(s) URL without query.
    #[error("invalid Service Bus endpoint {endpoint:?}: expected an http(s) URL without query")]
    InvalidEndpoint {
        /// The endpoint given.
        endpoint: String,
    },
    /// A plain-http endpoint off this machine: tokens only travel over https.
    #[error("Service Bus endpoint {endpoint} uses http: tokens need https (http is for loopback tests only)")]
    TokenOverHttp {
        /// The endpoint given.
        endpoint: String,
    },
}

/// Sends messages to Service Bus queues and topics.
#[derive(Debug, Clone)]
pub struct ServiceBusBus {
    pipeline: Pipeline,
    /// The namespace's endpoint, without a trailing slash.
    base: String,
    timeout: Duration,
}

impl ServiceBusBus {
    /// A bus on the namespace `namespace` (`name.servicebus.windows.net`) over https.
    ///
    /// # Errors
    /// [`ServiceBusSetupError::InvalidNamespace`] for anything but a bare host name.
    pub fn for_namespace(
        namespace: &str,
        credential: Arc<dyn TokenCredential>,
        settings: &ServiceBusSettings,
    ) -> Result<Self, ServiceBusSetupError> {
        let host = namespace.trim();
        let label_ok = |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !host.contains('.') || !host.split('.').all(label_ok) {
            return Err(ServiceBusSetupError::InvalidNamespace { namespace: namespace.to_owned() });
        }
        Self::new(&format!("https://{host}"), credential, settings)
    }

    /// A bus on the endpoint `endpoint`: https, or plain http on a loopback address (tests
    /// against a local server).
    ///
    /// # Errors
    /// [`ServiceBusSetupError`] for a malformed endpoint or http off this machine.
    pub fn new(
        endpoint: &str,
        credential: Arc<dyn TokenCredential>,
        settings: &ServiceBusSettings,
    ) -> Result<Self, ServiceBusSetupError> {
        let trimmed = endpoint.trim_end_matches('/');
        let url = Url::parse(trimmed)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none() && u.fragment().is_none())
            .ok_or_else(|| ServiceBusSetupError::InvalidEndpoint { endpoint: endpoint.to_owned() })?;
        // The SDK's bearer policy refuses http outright; on loopback a minimal policy of ours
        // sends the token instead, so tests can use a plain local server.
        let auth: Arc<dyn Policy> = match url.scheme() {
            "https" => Arc::new(BearerTokenAuthorizationPolicy::new(credential, [SERVICE_BUS_SCOPE])),
            _ if is_loopback(trimmed) => Arc::new(LoopbackBearerPolicy { credential }),
            _ => return Err(ServiceBusSetupError::TokenOverHttp { endpoint: trimmed.to_owned() }),
        };
        let retry = if settings.retries { RetryOptions::default() } else { RetryOptions::none() };
        let options = ClientOptions {
            per_try_policies: vec![auth],
            retry,
            transport: Some(super::shared_transport()),
            ..ClientOptions::default()
        };
        let pipeline = Pipeline::new(
            Some(env!("CARGO_PKG_NAME")),
            Some(env!("CARGO_PKG_VERSION")),
            options,
            Vec::new(),
            Vec::new(),
            None,
        );
        Ok(Self { pipeline, base: trimmed.to_owned(), timeout: settings.timeout })
    }

    /// The Send Message request for `message` (validated).
    fn request(&self, message: &OutgoingMessage) -> Result<Request, BusError> {
        let invalid = |reason: String| BusError::Invalid {
            queue: message.queue.clone(),
            message_id: message.message_id.clone(),
            reason,
        };
        validate(message)?;
        if let Some(problem) = message.properties.keys().find_map(|name| wire::property_name_problem(name)) {
            return Err(invalid(problem));
        }
        let url = Url::parse(&format!("{}/{}/messages", self.base, message.queue))
            .map_err(|e| invalid(format!("no URL for the entity: {e}")))?;
        let mut request = Request::new(url, Method::Post);
        request.insert_header("brokerproperties", wire::broker_properties(message));
        let content_type = if message.content_type.is_ascii() && !message.content_type.is_empty() {
            message.content_type.clone()
        } else {
            return Err(invalid(format!("content type {:?} is not an ASCII MIME type", message.content_type)));
        };
        request.insert_header("content-type", content_type);
        for (name, value) in &message.properties {
            request.insert_header(name.clone(), wire::property_value(value));
        }
        request.set_body(azure_core::Bytes::from(message.body.clone()));
        Ok(request)
    }
}

/// The error for Service Bus's answer `status` (not 2xx) with `body`, for `message`.
fn answer_error(message: &OutgoingMessage, status: u16, body: &[u8]) -> BusError {
    let (queue, message_id) = (message.queue.clone(), message.message_id.clone());
    let detail = service_detail(body);
    let reason = format!("Service Bus answered {status}{}", detail.map(|d| format!(": {d}")).unwrap_or_default());
    match status {
        400 | 403 | 404 | 410 | 413 => BusError::Invalid { queue, message_id, reason },
        401 => BusError::Unauthorized { queue, message_id, reason },
        _ => BusError::Unavailable { queue, message_id, source: reason.into() },
    }
}

/// The `<Detail>` of Service Bus's XML error body (else its first line), short and printable.
fn service_detail(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let detail = match (text.find("<Detail>"), text.find("</Detail>")) {
        (Some(start), Some(end)) if start + 8 <= end => text.get(start + 8..end).unwrap_or_default().to_owned(),
        _ => text.lines().next().unwrap_or_default().to_owned(),
    };
    let clean: String = detail.chars().filter(|c| !c.is_control()).take(300).collect();
    let clean = clean.trim().to_owned();
    (!clean.is_empty()).then_some(clean)
}

#[async_trait]
impl Bus for ServiceBusBus {
    #[instrument(skip(self, message), fields(bus.queue = %message.queue, bus.message_id = %message.message_id))]
    async fn send(&self, message: OutgoingMessage) -> Result<(), BusError> {
        let mut request = self.request(&message)?;
        let unavailable = |source: Box<dyn std::error::Error + Send + Sync>| BusError::Unavailable {
            queue: message.queue.clone(),
            message_id: message.message_id.clone(),
            source,
        };
        let options = PipelineSendOptions { skip_checks: true, ..PipelineSendOptions::default() };
        let context = Context::new();
        let sent = self.pipeline.send(&context, &mut request, Some(options));
        let response = match tokio::time::timeout(self.timeout, sent).await {
            Err(_) => return Err(unavailable(format!("no answer within {:?}", self.timeout).into())),
            // Connection failures, and token acquisition (the identity endpoint may recover).
            Ok(Err(e)) => return Err(unavailable(Box::new(e))),
            Ok(Ok(response)) => response,
        };
        let (status, _headers, body) = response.deconstruct();
        let status = u16::from(status);
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body: azure_core::Bytes = body.into();
        Err(answer_error(&message, status, &body))
    }
}

/// Bearer auth for loopback http endpoints, which the SDK's policy refuses: a token per try
/// (the credential caches, where it can), in the `Authorization` header.
#[derive(Debug)]
struct LoopbackBearerPolicy {
    credential: Arc<dyn TokenCredential>,
}

#[async_trait]
impl Policy for LoopbackBearerPolicy {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        let token = self.credential.get_token(&[SERVICE_BUS_SCOPE], None).await?;
        request.insert_header("authorization", format!("Bearer {}", token.token.secret()));
        match next.split_first() {
            Some((policy, rest)) => policy.send(ctx, request, rest).await,
            None => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "the pipeline ends before the transport",
            )),
        }
    }
}

#[cfg(test)]
mod tests;

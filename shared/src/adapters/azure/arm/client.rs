//! [`ArmClient`]: JSON requests to Azure Resource Manager on the `azure_core` pipeline, with
//! ARM's throttling and long-running operations handled here.
//!
//! Retries are ours, not the pipeline's: 408, 429, 5xx and connection failures are tried again
//! up to [`ArmSettings::attempts`] times, waiting the server's `Retry-After` when it sends one
//! (else an exponential backoff). A `Retry-After` longer than [`ArmSettings::max_wait`] is not
//! slept through: the call ends [`ArmError::Throttled`] with it, so a caller polling through
//! scheduled messages can wait that long without holding a function invocation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_core::http::headers::Headers;
use azure_core::http::{ClientOptions, Context, Method, Pipeline, PipelineSendOptions, Request, RetryOptions, Url};
use serde_json::Value;
use tracing::debug;

use super::super::credential::is_loopback;
use super::error::{ArmError, ArmFault};
use super::lro::{Monitor, Poll, parse_retry_after, wait_before_next};

/// The public cloud's ARM endpoint.
pub const ARM_ENDPOINT: &str = "https://management.azure.com";
/// The OAuth scope of ARM.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// How the client talks to ARM.
#[derive(Debug, Clone)]
pub struct ArmSettings {
    /// ARM's endpoint (no trailing slash): [`ARM_ENDPOINT`], a sovereign cloud's, or a
    /// loopback test server over http.
    pub endpoint: String,
    /// Tries per request (1: no retry).
    pub attempts: u32,
    /// First backoff when the server sends no `Retry-After`; doubles per try.
    pub backoff: Duration,
    /// The longest wait (retry or poll) slept through inside a call.
    pub max_wait: Duration,
    /// Longest one HTTP exchange may take.
    pub timeout: Duration,
    /// Longest a long-running operation is polled before the call gives up.
    pub operation_timeout: Duration,
}

impl Default for ArmSettings {
    fn default() -> Self {
        Self {
            endpoint: ARM_ENDPOINT.to_owned(),
            attempts: 4,
            backoff: Duration::from_secs(2),
            max_wait: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
            operation_timeout: Duration::from_secs(300),
        }
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ArmSetupError {
    /// The endpoint is not an https URL (or http on loopback) without path or query.
    #[error("invalid ARM endpoint {endpoint:?}: expected https://host (http only on loopback)")]
    InvalidEndpoint {
        /// The endpoint given.
        endpoint: String,
    },
}

/// A 2xx answer from ARM.
#[derive(Debug)]
pub struct ArmResponse {
    /// HTTP status.
    pub status: u16,
    /// The answer's JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// The long-running operation to follow, if the answer named one.
    monitor: Option<Monitor>,
    /// How long to wait before the first poll (`Retry-After`, capped).
    first_wait: Duration,
}

/// One request: what it does (for errors and logs), to what, and how.
#[derive(Debug, Clone, Copy)]
pub struct ArmCall<'a> {
    /// What Lifeboat is doing, lowercase (`reading snapshot`).
    pub operation: &'static str,
    /// The ARM resource id (path below the endpoint).
    pub resource: &'a str,
    /// The resource provider's API version.
    pub api_version: &'a str,
}

/// A client of Azure Resource Manager.
#[derive(Debug, Clone)]
pub struct ArmClient {
    pipeline: Pipeline,
    base: Url,
    settings: Arc<ArmSettings>,
}

impl ArmClient {
    /// A client authenticating with `credential` (a token for [`ARM_SCOPE`]).
    ///
    /// # Errors
    /// [`ArmSetupError::InvalidEndpoint`] for an endpoint that is not https (or http on a
    /// loopback address), or carries a path or query.
    pub fn new(credential: Arc<dyn TokenCredential>, settings: ArmSettings) -> Result<Self, ArmSetupError> {
        let trimmed = settings.endpoint.trim_end_matches('/');
        let invalid = || ArmSetupError::InvalidEndpoint { endpoint: settings.endpoint.clone() };
        let base = Url::parse(trimmed).map_err(|_| invalid())?;
        let scheme_ok = base.scheme() == "https" || (base.scheme() == "http" && is_loopback(trimmed));
        if !scheme_ok || base.path() != "/" || base.query().is_some() {
            return Err(invalid());
        }
        let options = ClientOptions {
            per_try_policies: vec![super::auth::policy(base.scheme(), credential, ARM_SCOPE)],
            retry: RetryOptions::none(),
            transport: Some(super::super::shared_transport()),
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
        Ok(Self { pipeline, base, settings: Arc::new(settings) })
    }

    /// GET the resource; `None` when it does not exist.
    ///
    /// # Errors
    /// [`ArmError`] for any answer but 2xx and 404.
    pub async fn get(&self, call: ArmCall<'_>) -> Result<Option<Value>, ArmError> {
        match self.send(call, Method::Get, "", None).await {
            Ok(answer) => Ok(Some(answer.body)),
            Err(ArmError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT `body` as the resource. Returns at once: follow the operation with
    /// [`ArmClient::wait`] if the caller needs it finished.
    ///
    /// # Errors
    /// [`ArmError`] for any answer but 2xx.
    pub async fn put(&self, call: ArmCall<'_>, body: &Value) -> Result<ArmResponse, ArmError> {
        self.send(call, Method::Put, "", Some(body)).await
    }

    /// POST the action `action` (`listClusterUserCredential`) on the resource, waiting for
    /// the answer's body.
    ///
    /// # Errors
    /// [`ArmError`] for any answer but 2xx.
    pub async fn post(&self, call: ArmCall<'_>, action: &str, body: Option<&Value>) -> Result<Value, ArmError> {
        Ok(self.send(call, Method::Post, &format!("/{action}"), body).await?.body)
    }

    /// DELETE the resource and wait for the deletion to finish; whether it existed.
    ///
    /// # Errors
    /// [`ArmError`] for any answer but 2xx and 404, or a deletion that fails.
    pub async fn delete(&self, call: ArmCall<'_>) -> Result<bool, ArmError> {
        match self.send(call, Method::Delete, "", None).await {
            Ok(answer) => self.wait(call, &answer).await.map(|()| true),
            Err(ArmError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Follows the long-running operation `answer` started until it ends, waiting
    /// `Retry-After` between polls.
    ///
    /// # Errors
    /// [`ArmError::OperationFailed`] when it ends `Failed` or `Canceled`;
    /// [`ArmError::Unavailable`] past [`ArmSettings::operation_timeout`] or for a poll URL off
    /// ARM's host (the token is not sent elsewhere).
    pub async fn wait(&self, call: ArmCall<'_>, answer: &ArmResponse) -> Result<(), ArmError> {
        let Some(monitor) = &answer.monitor else { return Ok(()) };
        let unavailable = |reason: String| ArmError::Unavailable {
            operation: call.operation,
            resource: call.resource.to_owned(),
            reason,
        };
        let url = Url::parse(monitor.url()).ok().filter(|u| u.origin() == self.base.origin()).ok_or_else(|| {
            unavailable(format!("the operation's status URL {} is not on {}", monitor.url(), self.base))
        })?;
        let deadline = Instant::now() + self.settings.operation_timeout;
        let mut wait = answer.first_wait;
        loop {
            tokio::time::sleep(wait).await;
            let (status, headers, body) = self.exchange(call, Method::Get, url.clone(), None).await?;
            if !(200..300).contains(&status) {
                return Err(ArmError::from_fault(call.operation, call.resource, ArmFault::from_answer(status, &body)));
            }
            match monitor.read(status, &body) {
                Poll::Succeeded => return Ok(()),
                Poll::Failed { status, code, message } => {
                    return Err(ArmError::OperationFailed {
                        operation: call.operation,
                        resource: call.resource.to_owned(),
                        status,
                        code,
                        message,
                    });
                }
                Poll::Running if Instant::now() >= deadline => {
                    return Err(unavailable(format!("still running after {:?}", self.settings.operation_timeout)));
                }
                Poll::Running => {
                    wait = wait_before_next(
                        header(&headers, "retry-after").as_deref(),
                        self.settings.backoff,
                        self.settings.max_wait,
                    );
                }
            }
        }
    }

    /// Sends `method` to `{resource}{suffix}?api-version=…` (retrying as the module says); a
    /// 2xx answer, or the error its status means.
    async fn send(
        &self,
        call: ArmCall<'_>,
        method: Method,
        suffix: &str,
        body: Option<&Value>,
    ) -> Result<ArmResponse, ArmError> {
        let mut url = self.base.join(&format!("{}{suffix}", call.resource)).map_err(|e| ArmError::Unavailable {
            operation: call.operation,
            resource: call.resource.to_owned(),
            reason: format!("no URL for the resource: {e}"),
        })?;
        url.query_pairs_mut().append_pair("api-version", call.api_version);
        let (status, headers, bytes) = self.exchange(call, method, url, body).await?;
        if !(200..300).contains(&status) {
            return Err(ArmError::from_fault(call.operation, call.resource, ArmFault::from_answer(status, &bytes)));
        }
        let monitor = match status {
            201 | 202 => Monitor::from_headers(header(&headers, "azure-asyncoperation"), header(&headers, "location")),
            _ => None,
        };
        let first_wait =
            wait_before_next(header(&headers, "retry-after").as_deref(), self.settings.backoff, self.settings.max_wait);
        Ok(ArmResponse { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), monitor, first_wait })
    }

    /// One request with retries: the last answer (any status but a retried one), or
    /// `Throttled` / `Unavailable` when retries run out.
    async fn exchange(
        &self,
        call: ArmCall<'_>,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(u16, Headers, Vec<u8>), ArmError> {
        let settings = &self.settings;
        let mut backoff = settings.backoff;
        let mut attempt = 1;
        loop {
            let mut request = Request::new(url.clone(), method);
            request.insert_header("accept", "application/json");
            if let Some(body) = body {
                request.insert_header("content-type", "application/json");
                request.set_body(azure_core::Bytes::from(body.to_string()));
            }
            let outcome = self.try_once(&mut request).await;
            let (retry_after, last) = match outcome {
                Ok((status, headers, bytes)) if matches!(status, 408 | 429 | 500..=599) => {
                    let retry_after = parse_retry_after(header(&headers, "retry-after").as_deref());
                    (retry_after, Ok((status, headers, bytes)))
                }
                Ok(answer) => return Ok(answer),
                Err(reason) => (None, Err(reason)),
            };
            let throttled = |retry_after| ArmError::Throttled {
                operation: call.operation,
                resource: call.resource.to_owned(),
                retry_after,
            };
            let status = last.as_ref().ok().map(|(s, _, _)| *s);
            if let Some(asked) = retry_after.filter(|d| *d > settings.max_wait) {
                return Err(throttled(asked));
            }
            if attempt >= settings.attempts {
                return match (status, last) {
                    (Some(429), _) => Err(throttled(retry_after.unwrap_or(backoff))),
                    (_, Ok((status, _, bytes))) => {
                        Err(ArmError::from_fault(call.operation, call.resource, ArmFault::from_answer(status, &bytes)))
                    }
                    (_, Err(reason)) => Err(ArmError::Unavailable {
                        operation: call.operation,
                        resource: call.resource.to_owned(),
                        reason,
                    }),
                };
            }
            let wait = retry_after.unwrap_or(backoff);
            debug!(
                arm.operation = call.operation,
                arm.resource = call.resource,
                ?status,
                ?wait,
                attempt,
                "retrying ARM request"
            );
            tokio::time::sleep(wait).await;
            backoff = backoff.saturating_mul(2).min(settings.max_wait);
            attempt += 1;
        }
    }

    /// One HTTP exchange: the answer, or why none came (connection, token, timeout).
    async fn try_once(&self, request: &mut Request) -> Result<(u16, Headers, Vec<u8>), String> {
        let options = PipelineSendOptions { skip_checks: true, ..PipelineSendOptions::default() };
        let context = Context::new();
        let sent = self.pipeline.send(&context, request, Some(options));
        let response = match tokio::time::timeout(self.settings.timeout, sent).await {
            Err(_) => return Err(format!("no answer within {:?}", self.settings.timeout)),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(response)) => response,
        };
        let (status, headers, body) = response.deconstruct();
        let body: azure_core::Bytes = body.into();
        Ok((u16::from(status), headers, body.to_vec()))
    }
}

/// The header `name` of an answer.
fn header(headers: &Headers, name: &'static str) -> Option<String> {
    headers.get_optional_string(&name.into())
}

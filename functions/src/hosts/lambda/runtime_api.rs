//! A client of the Lambda Runtime API (version 2018-06-01), as documented in "Using the Lambda
//! runtime API for custom runtimes": `GET …/invocation/next` long-polls for an event, then
//! `POST …/invocation/{id}/response` or `…/error` answers it; `POST …/init/error` reports a
//! runtime that cannot start.
//!
//! Spoken over `reqwest`, already in the tree for Azure, rather than through the
//! `lambda_runtime` crate: four plain HTTP calls do not need a second service stack.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const VERSION: &str = "2018-06-01";

/// An invocation to handle.
#[derive(Debug, Clone, PartialEq)]
pub struct NextInvocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms`: when the function times out, in Unix milliseconds.
    pub deadline_ms: Option<u64>,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub function_arn: Option<String>,
    /// The event.
    pub event: Value,
}

impl NextInvocation {
    /// Time left before the deadline (`None` when no deadline was given).
    pub fn remaining(&self) -> Option<Duration> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.deadline_ms.map(|d| Duration::from_millis(d).saturating_sub(now))
    }
}

/// Why a Runtime API call failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    /// The call did not complete.
    #[error("calling the runtime API at {url}")]
    Call {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with an error status.
    #[error("the runtime API answered {status} to {url}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The answer.
        body: String,
    },
    /// An invocation without a request id.
    #[error("the runtime API sent an invocation without Lambda-Runtime-Aws-Request-Id")]
    NoRequestId,
}

/// The Runtime API at `AWS_LAMBDA_RUNTIME_API`.
#[derive(Debug, Clone)]
pub struct RuntimeApi {
    base: String,
    client: reqwest::Client,
}

impl RuntimeApi {
    /// The API at `host_port` (the value of `AWS_LAMBDA_RUNTIME_API`, e.g. `127.0.0.1:9001`).
    pub fn new(host_port: &str) -> Self {
        Self { base: format!("http://{host_port}/{VERSION}/runtime"), client: reqwest::Client::new() }
    }

    /// Waits for the next invocation.
    ///
    /// # Errors
    /// [`RuntimeApiError`] when the API cannot be reached or answers badly.
    pub async fn next(&self) -> Result<NextInvocation, RuntimeApiError> {
        let url = format!("{}/invocation/next", self.base);
        let response =
            self.client.get(&url).send().await.map_err(|source| RuntimeApiError::Call { url: url.clone(), source })?;
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let request_id = header("Lambda-Runtime-Aws-Request-Id");
        let deadline_ms = header("Lambda-Runtime-Deadline-Ms").and_then(|d| d.parse().ok());
        let function_arn = header("Lambda-Runtime-Invoked-Function-Arn");
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|source| RuntimeApiError::Call { url: url.clone(), source })?;
        if !(200..300).contains(&status) {
            return Err(RuntimeApiError::Status { url, status, body: String::from_utf8_lossy(&body).into_owned() });
        }
        let request_id = request_id.ok_or(RuntimeApiError::NoRequestId)?;
        // An event that is not JSON reaches the app as a string, which it refuses as unrecognised.
        let event =
            serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
        Ok(NextInvocation { request_id, deadline_ms, function_arn, event })
    }

    /// Answers invocation `request_id` with `response`.
    ///
    /// # Errors
    /// [`RuntimeApiError`] when the API refuses it.
    pub async fn respond(&self, request_id: &str, response: &Value) -> Result<(), RuntimeApiError> {
        self.post(&format!("{}/invocation/{request_id}/response", self.base), response.to_string(), None).await
    }

    /// Fails invocation `request_id` (Lambda retries asynchronous invocations).
    ///
    /// # Errors
    /// [`RuntimeApiError`] when the API refuses it.
    pub async fn fail(&self, request_id: &str, error_type: &str, message: &str) -> Result<(), RuntimeApiError> {
        let url = format!("{}/invocation/{request_id}/error", self.base);
        self.post(&url, error_body(error_type, message), Some(error_type)).await
    }

    /// Reports that the runtime could not start.
    ///
    /// # Errors
    /// [`RuntimeApiError`] when the API refuses it.
    pub async fn init_failed(&self, error_type: &str, message: &str) -> Result<(), RuntimeApiError> {
        self.post(&format!("{}/init/error", self.base), error_body(error_type, message), Some(error_type)).await
    }

    async fn post(&self, url: &str, body: String, error_type: Option<&str>) -> Result<(), RuntimeApiError> {
        let mut request = self.client.post(url).header("Content-Type", "application/json").body(body);
        if let Some(kind) = error_type {
            request = request.header("Lambda-Runtime-Function-Error-Type", kind);
        }
        let call = |source| RuntimeApiError::Call { url: url.to_owned(), source };
        let response = request.send().await.map_err(call)?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(RuntimeApiError::Status { url: url.to_owned(), status, body })
    }
}

/// The documented error document: `{"errorMessage", "errorType", "stackTrace"}`.
fn error_body(error_type: &str, message: &str) -> String {
    json!({ "errorMessage": message, "errorType": error_type, "stackTrace": [] }).to_string()
}

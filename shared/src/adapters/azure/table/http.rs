//! Sending Table Storage requests through the `azure_core` pipeline, and reading its answers.
//!
//! Answers are checked here, not by the pipeline: a 404, 409 or 412 is an outcome the state
//! store reports (not found, already exists, changed since read), not a failure to send.

use azure_core::Bytes;
use azure_core::http::headers::Headers;
use azure_core::http::{Context, Method, Pipeline, PipelineSendOptions, Request, Url};
use serde_json::Value;

use super::super::errors;
use crate::ports::state_store::StateStoreError;

/// The Table service version spoken (the newest the Table REST API has).
const VERSION: &str = "2019-02-02";
/// JSON with just enough metadata: ETags of queried entities and the types of Int64 values.
pub(super) const ACCEPT: &str = "application/json;odata=minimalmetadata";

/// One request, reusable (sent again after creating a missing table).
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub method: Method,
    /// Path below the account's endpoint, with query.
    pub path: String,
    pub body: Option<(Bytes, String)>,
    pub if_match: Option<String>,
}

impl Call {
    pub(super) fn new(method: Method, path: String) -> Self {
        Self { method, path, body: None, if_match: None }
    }

    pub(super) fn json(mut self, value: &Value) -> Self {
        self.body = Some((Bytes::from(value.to_string()), "application/json".to_owned()));
        self
    }

    pub(super) fn if_match(mut self, etag: impl Into<String>) -> Self {
        self.if_match = Some(etag.into());
        self
    }
}

/// What the service answered.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: u16,
    pub headers: Headers,
    pub body: Bytes,
}

impl Answer {
    pub(super) fn header(&self, name: &'static str) -> Option<String> {
        self.headers.get_optional_string(&name.into())
    }

    /// The service's error code and message (`odata.error`), if the body holds one.
    pub(super) fn error(&self) -> ServiceError {
        let json: Option<Value> = serde_json::from_slice(&self.body).ok();
        let field = |pointer: &str| json.as_ref().and_then(|j| j.pointer(pointer)).and_then(Value::as_str);
        ServiceError {
            status: self.status,
            code: field("/odata.error/code").map(str::to_owned).or_else(|| self.header("x-ms-error-code")),
            message: field("/odata.error/message/value").unwrap_or_default().lines().next().unwrap_or("").to_owned(),
        }
    }

    pub(super) fn is_table_missing(&self) -> bool {
        self.status == 404 && self.error().code.as_deref() == Some("TableNotFound")
    }
}

/// An answer the store could not make sense of as an outcome.
#[derive(Debug, thiserror::Error)]
#[error("table service answered {status} {}: {message}", code.as_deref().unwrap_or("(no code)"))]
pub(crate) struct ServiceError {
    /// HTTP status.
    pub status: u16,
    /// The service's error code.
    pub code: Option<String>,
    /// The first line of its message.
    pub message: String,
}

impl ServiceError {
    pub(super) fn is_transient(&self) -> bool {
        matches!(self.status, 408 | 429 | 500..=599)
    }

    pub(super) fn into_unavailable(self, operation: &'static str, table: &str) -> StateStoreError {
        StateStoreError::Unavailable {
            operation,
            table: table.to_owned(),
            transient: self.is_transient(),
            source: Box::new(self),
        }
    }
}

/// Sends `call` to the account at `base` (no trailing slash).
pub(super) async fn send(
    pipeline: &Pipeline,
    base: &str,
    operation: &'static str,
    table: &str,
    call: &Call,
) -> Result<Answer, StateStoreError> {
    let fail = |source: Box<dyn std::error::Error + Send + Sync>, transient| StateStoreError::Unavailable {
        operation,
        table: table.to_owned(),
        transient,
        source,
    };
    let url = Url::parse(&format!("{base}{}", call.path)).map_err(|e| fail(Box::new(e), false))?;
    let mut request = Request::new(url, call.method);
    request.insert_header("x-ms-version", VERSION);
    request.insert_header("accept", ACCEPT);
    request.insert_header("dataserviceversion", "3.0");
    request.insert_header("maxdataserviceversion", "3.0;NetFx");
    if let Some(etag) = &call.if_match {
        request.insert_header("if-match", etag.clone());
    }
    if let Some((body, content_type)) = &call.body {
        request.insert_header("content-type", content_type.clone());
        if content_type == "application/json" {
            request.insert_header("prefer", "return-no-content");
        }
        request.set_body(body.clone());
    }
    let options = PipelineSendOptions { skip_checks: true, ..PipelineSendOptions::default() };
    let response = pipeline.send(&Context::new(), &mut request, Some(options)).await.map_err(|e| {
        let transient = errors::is_transient(&e);
        fail(Box::new(e), transient)
    })?;
    let (status, headers, body) = response.deconstruct();
    Ok(Answer { status: u16::from(status), headers, body: body.into() })
}

//! Signed requests to one AWS endpoint, and what a failed one answered.

use bytes::Bytes;
use chrono::Utc;

use super::sigv4::{self, Scope};
use super::{AwsCredentials, SetupError};

/// One endpoint (`https://bucket.s3.region.amazonaws.com`, `http://127.0.0.1:5000`), signed for.
#[derive(Debug, Clone)]
pub(crate) struct SignedClient {
    http: reqwest::Client,
    /// Scheme, host and port, no trailing slash.
    origin: String,
    /// The `Host` header as sent.
    host: String,
    credentials: AwsCredentials,
    region: String,
    service: &'static str,
}

/// Attempts of one call, the first included.
pub(crate) const ATTEMPTS: u32 = 3;
/// The wait before the first retry.
pub(crate) const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);

/// A request: the path already URI-encoded, the query not.
#[derive(Debug, Default)]
pub(crate) struct Call {
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

/// A failed call: transport failure, or the service's error answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No answer (connection, timeout, broken body).
    #[error("request failed")]
    Transport(#[from] reqwest::Error),
    /// The service answered with an error.
    #[error("{status} {code}: {message}")]
    Service {
        /// HTTP status.
        status: u16,
        /// The service's error code (`NoSuchKey`, `PreconditionFailed`, ...), or empty.
        code: String,
        /// Its message.
        message: String,
    },
}

impl CallError {
    /// The HTTP status of a service answer.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::Service { status, .. } => Some(*status),
            Self::Transport(_) => None,
        }
    }

    /// The service's error code.
    pub(crate) fn code(&self) -> &str {
        match self {
            Self::Service { code, .. } => code,
            Self::Transport(_) => "",
        }
    }

    /// Throttling, timeouts, server errors and broken connections may pass on a retry.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Service { status, code, .. } => {
                matches!(status, 408 | 429 | 500..=599)
                    || matches!(code.as_str(), "RequestTimeout" | "SlowDown" | "Throttling" | "ThrottlingException")
            }
        }
    }
}

/// The text between `<tag>` and `</tag>` in an XML answer, unescaped.
pub(crate) fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    quick_xml::escape::unescape(&xml[start..end]).ok().map(|s| s.into_owned())
}

/// The error an answer body describes: S3's XML `<Error>`, or SQS's JSON `__type` / `message`.
pub(crate) fn service_error(status: u16, body: &str) -> CallError {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let from_json =
        |field: &str| json.as_ref().and_then(|j| j.get(field)).and_then(serde_json::Value::as_str).map(str::to_owned);
    let code = xml_field(body, "Code")
        .or_else(|| from_json("__type").map(|t| t.rsplit('#').next().unwrap_or_default().to_owned()))
        .unwrap_or_default();
    let message = xml_field(body, "Message")
        .or_else(|| from_json("message"))
        .or_else(|| from_json("Message"))
        .unwrap_or_else(|| body.chars().take(200).collect());
    CallError::Service { status, code, message }
}

impl SignedClient {
    /// A client of `origin` (an http(s) URL with no path beyond `/`).
    pub(crate) fn new(
        origin: &str,
        credentials: AwsCredentials,
        region: &str,
        service: &'static str,
    ) -> Result<Self, SetupError> {
        let invalid = || SetupError::InvalidEndpoint { endpoint: origin.to_owned() };
        let url = reqwest::Url::parse(origin).map_err(|_| invalid())?;
        let host = url.host_str().filter(|_| matches!(url.scheme(), "http" | "https")).ok_or_else(invalid)?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid());
        }
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(SetupError::Client)?;
        Ok(Self {
            http,
            origin: format!("{}://{host}", url.scheme()),
            host,
            credentials,
            region: region.to_owned(),
            service,
        })
    }

    /// Signs and sends `call`, again after a transient failure (throttling, 5xx, a broken
    /// connection) up to [`ATTEMPTS`] times in all, waiting [`FIRST_BACKOFF`] and then four
    /// times longer each time; an answer outside 2xx becomes [`CallError::Service`].
    pub(crate) async fn send(&self, method: reqwest::Method, call: Call) -> Result<reqwest::Response, CallError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.send_once(method.clone(), &call).await {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing::debug!(attempt, "AWS call failed, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff *= 4;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn send_once(&self, method: reqwest::Method, call: &Call) -> Result<reqwest::Response, CallError> {
        let payload_sha256 = sigv4::sha256_hex(&call.body);
        let signing = sigv4::Request {
            method: method.as_str(),
            host: &self.host,
            path: &call.path,
            query: &call.query,
            headers: &call.headers,
            payload_sha256: &payload_sha256,
        };
        let added =
            sigv4::sign(&self.credentials, Scope { region: &self.region, service: self.service }, signing, Utc::now());
        let query = sigv4::canonical_query(&call.query);
        let url = if query.is_empty() {
            format!("{}{}", self.origin, call.path)
        } else {
            format!("{}{}?{query}", self.origin, call.path)
        };
        let mut request = self.http.request(method.clone(), url);
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        for (name, value) in added {
            request = request.header(name, value);
        }
        // `Bytes` clones share the buffer: a retry does not copy the body.
        let response = request.body(call.body.clone()).send().await?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        // HEAD answers carry no body: the status says it all.
        let body = if method == reqwest::Method::HEAD { String::new() } else { response.text().await? };
        Err(service_error(status, &body))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A server that answers `503 SlowDown` `failures` times, then 200; returns its origin and
    /// the count of requests it saw.
    async fn flaky_server(failures: u32) -> (String, Arc<AtomicU32>) {
        let seen = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&seen);
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let counter = Arc::clone(&counter);
            async move {
                assert!(headers.contains_key("authorization"), "every attempt is signed");
                if counter.fetch_add(1, Ordering::SeqCst) < failures {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "<Error><Code>SlowDown</Code></Error>")
                } else {
                    (axum::http::StatusCode::OK, "ok")
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://127.0.0.1:{port}/"), seen)
    }

    #[tokio::test]
    async fn transient_failures_are_retried_a_bounded_number_of_times() {
        let credentials = AwsCredentials::new("AKID", "secret");
        let (origin, seen) = flaky_server(ATTEMPTS - 1).await;
        let client = SignedClient::new(&origin, credentials.clone(), "eu-west-1", "s3").expect("client");
        let body = client.send(reqwest::Method::GET, Call { path: "/k".into(), ..Call::default() }).await;
        assert_eq!(body.expect("the last attempt succeeds").text().await.expect("text"), "ok");
        assert_eq!(seen.load(Ordering::SeqCst), ATTEMPTS);

        let (origin, seen) = flaky_server(u32::MAX).await;
        let client = SignedClient::new(&origin, credentials, "eu-west-1", "s3").expect("client");
        let err = client.send(reqwest::Method::GET, Call { path: "/k".into(), ..Call::default() }).await;
        let err = err.expect_err("always throttled");
        assert_eq!((err.status(), err.code(), err.is_transient()), (Some(503), "SlowDown", true));
        assert_eq!(seen.load(Ordering::SeqCst), ATTEMPTS, "no more than {ATTEMPTS} attempts");
    }

    #[test]
    fn s3_and_sqs_error_answers_are_read() {
        let s3 = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key &amp; so on</Message></Error>";
        let e = service_error(404, s3);
        assert_eq!((e.status(), e.code()), (Some(404), "NoSuchKey"));
        assert!(e.to_string().contains("The key & so on"), "{e}");
        let sqs = r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"no queue"}"#;
        let e = service_error(400, sqs);
        assert_eq!(e.code(), "QueueDoesNotExist");
        assert!(!e.is_transient());
        assert!(service_error(503, "<Error><Code>SlowDown</Code></Error>").is_transient());
    }
}

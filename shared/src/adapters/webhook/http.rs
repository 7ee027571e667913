//! One HTTP POST of a JSON body, through `azure_core`'s HTTP client (the reqwest and rustls
//! already in the tree), with the answer classified for retries.

use std::sync::Arc;

use azure_core::http::{HttpClient, Method, Request, Url};

use crate::ports::AlertSinkError;

/// Posts JSON bodies to one URL.
#[derive(Clone)]
pub(crate) struct Poster {
    sink: String,
    url: Url,
    client: Arc<dyn HttpClient>,
}

impl std::fmt::Debug for Poster {
    // The URL of a Teams or Slack webhook is itself the credential: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster").field("sink", &self.sink).field("url", &"[redacted]").finish()
    }
}

/// The URL failed to parse (its text is not repeated: it may be a secret).
#[derive(Debug, thiserror::Error)]
#[error("the webhook URL of sink {0} is not a valid http(s) URL")]
pub struct BadUrl(pub String);

impl Poster {
    /// A poster for `sink` to `url`.
    pub(crate) fn new(sink: &str, url: &str) -> Result<Self, BadUrl> {
        let url = Url::parse(url).map_err(|_| BadUrl(sink.to_owned()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BadUrl(sink.to_owned()));
        }
        Ok(Self { sink: sink.to_owned(), url, client: azure_core::http::new_http_client(None) })
    }

    /// Posts `body` with the extra `headers`. 2xx is success; 408, 429, 5xx and transport
    /// errors are transient; any other status is a rejection.
    pub(crate) async fn post(&self, body: Vec<u8>, headers: &[(&'static str, String)]) -> Result<(), AlertSinkError> {
        let mut request = Request::new(self.url.clone(), Method::Post);
        request.insert_header("content-type", "application/json");
        for (name, value) in headers {
            request.insert_header(*name, value.clone());
        }
        request.set_body(body);
        let response = self.client.execute_request(&request).await.map_err(|e| AlertSinkError::Unavailable {
            sink: self.sink.clone(),
            // The transport error may quote the URL: keep only its kind.
            source: format!("request failed ({:?})", e.kind()).into(),
        })?;
        let status = u16::from(response.status());
        match status {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => Err(AlertSinkError::Unavailable {
                sink: self.sink.clone(),
                source: format!("answered HTTP {status}").into(),
            }),
            _ => Err(AlertSinkError::Rejected { sink: self.sink.clone(), reason: format!("answered HTTP {status}") }),
        }
    }
}

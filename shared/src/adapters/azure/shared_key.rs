//! Shared Key signing as an `azure_core` pipeline policy: the SDK's blob clients take only a
//! token credential, and Azurite knows only keys and SAS, so the adapters sign requests
//! themselves when given an account key (Azurite's public development key).
//!
//! Blob requests use the full `SharedKey` scheme; Table requests the `SharedKeyLite` one, whose
//! string to sign is just the date and the resource. Each try is signed anew (a fresh
//! `x-ms-date`), so the SDK's retries stay valid. The key never leaves this module: it is held
//! in a [`Secret`], whose `Debug` is redacted.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::Secret;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};

/// An account name and its key.
#[derive(Clone, Debug)]
pub struct SharedKeyCredential {
    account: String,
    key: Secret,
}

impl SharedKeyCredential {
    /// The key (base64, as the portal shows it) of `account`.
    pub fn new(account: impl Into<String>, key: impl Into<String>) -> Self {
        Self { account: account.into(), key: Secret::new(key.into()) }
    }

    /// The account name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The base64 HMAC-SHA256 of `string_to_sign` with the key (Shared Key and SAS signatures).
    pub(crate) fn sign(&self, string_to_sign: &str) -> azure_core::Result<String> {
        azure_core::hmac::hmac_sha256(string_to_sign, &self.key)
    }
}

/// Which scheme a request is signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    /// Blob Storage: `SharedKey`.
    Blob,
    /// Table Storage: `SharedKeyLite`.
    Table,
}

/// Signs every try of a request.
#[derive(Debug)]
pub(crate) struct SharedKeyPolicy {
    credential: SharedKeyCredential,
    service: Service,
}

impl SharedKeyPolicy {
    pub(crate) fn new(credential: SharedKeyCredential, service: Service) -> Self {
        Self { credential, service }
    }
}

#[async_trait]
impl Policy for SharedKeyPolicy {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        request.insert_header("x-ms-date", date.clone());
        let (scheme, string_to_sign) = match self.service {
            Service::Blob => ("SharedKey", blob_string_to_sign(request, &self.credential.account)),
            Service::Table => ("SharedKeyLite", table_string_to_sign(request, &date, &self.credential.account)),
        };
        let signature = azure_core::hmac::hmac_sha256(&string_to_sign, &self.credential.key)?;
        request.insert_header("authorization", format!("{scheme} {}:{signature}", self.credential.account));
        match next.split_first() {
            Some((policy, rest)) => policy.send(ctx, request, rest).await,
            None => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "shared key policy is the last in the pipeline",
            )),
        }
    }
}

fn header<'a>(request: &'a Request, name: &'static str) -> &'a str {
    request.headers().get_optional_str(&name.into()).unwrap_or("")
}

/// `SharedKeyLite` for Table Storage: date, then the canonicalized resource (with `?comp=`).
fn table_string_to_sign(request: &Request, date: &str, account: &str) -> String {
    let url = request.url();
    let mut resource = format!("{date}\n/{account}{}", url.path());
    if let Some((_, comp)) = url.query_pairs().find(|(k, _)| k.eq_ignore_ascii_case("comp")) {
        resource.push_str("?comp=");
        resource.push_str(&comp);
    }
    resource
}

/// Full `SharedKey` for Blob Storage (service version 2015-02-21 or later).
fn blob_string_to_sign(request: &Request, account: &str) -> String {
    let length = match header(request, "content-length") {
        "" => request.body().len().filter(|n| *n > 0).map(|n| n.to_string()).unwrap_or_default(),
        "0" => String::new(),
        given => given.to_owned(),
    };
    let mut out = format!(
        "{}\n{}\n{}\n{length}\n{}\n{}\n\n{}\n{}\n{}\n{}\n{}\n",
        request.method().as_str(),
        header(request, "content-encoding"),
        header(request, "content-language"),
        header(request, "content-md5"),
        header(request, "content-type"),
        header(request, "if-modified-since"),
        header(request, "if-match"),
        header(request, "if-none-match"),
        header(request, "if-unmodified-since"),
        header(request, "range"),
    );
    let mut ms_headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_ascii_lowercase(), value.as_str()))
        .filter(|(name, _)| name.starts_with("x-ms-"))
        .map(|(name, value)| (name, value.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    ms_headers.sort();
    for (name, value) in ms_headers {
        out.push_str(&format!("{name}:{value}\n"));
    }
    out.push_str(&format!("/{account}{}", request.url().path()));
    let mut params: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for (name, value) in request.url().query_pairs() {
        params.entry(name.to_ascii_lowercase()).or_default().push(value.into_owned());
    }
    for (name, mut values) in params {
        values.sort();
        out.push_str(&format!("\n{name}:{}", values.join(",")));
    }
    out
}

#[cfg(test)]
mod tests {
    use azure_core::http::{Method, Url};

    use super::*;

    #[test]
    fn blob_string_to_sign_follows_the_documented_layout() {
        let url = Url::parse("http://127.0.0.1:10000/acct/c/a%20b?comp=block&blockid=QQ%3D%3D&timeout=5").expect("url");
        let mut request = Request::new(url, Method::Put);
        request.insert_header("x-ms-date", "Mon, 01 Jan 2026 00:00:00 GMT");
        request.insert_header("x-ms-version", "2025-11-05");
        request.insert_header("content-type", "application/octet-stream");
        request.insert_header("if-none-match", "*");
        request.set_body(azure_core::Bytes::from_static(b"abc"));
        let expected = "PUT\n\n\n3\n\napplication/octet-stream\n\n\n\n*\n\n\n\
                        x-ms-date:Mon, 01 Jan 2026 00:00:00 GMT\nx-ms-version:2025-11-05\n\
                        /acct/acct/c/a%20b\nblockid:QQ==\ncomp:block\ntimeout:5";
        assert_eq!(blob_string_to_sign(&request, "acct"), expected);
    }

    #[test]
    fn an_empty_body_signs_an_empty_length() {
        let url = Url::parse("http://127.0.0.1:10000/acct/c/b").expect("url");
        let mut request = Request::new(url, Method::Put);
        request.insert_header("content-length", "0");
        assert!(blob_string_to_sign(&request, "acct").starts_with("PUT\n\n\n\n"));
    }

    #[test]
    fn table_string_to_sign_keeps_only_comp() {
        let url = Url::parse("http://h/acct/t()?$filter=x&comp=acl").expect("url");
        let request = Request::new(url, Method::Get);
        assert_eq!(table_string_to_sign(&request, "D", "acct"), "D\n/acct/acct/t()?comp=acl");
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let credential = SharedKeyCredential::new("acct", "c2VjcmV0");
        assert!(!format!("{credential:?}").contains("c2VjcmV0"));
    }
}

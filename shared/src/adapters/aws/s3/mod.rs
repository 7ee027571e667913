//! [`ObjectStore`] on S3 (and S3-compatible emulators such as moto), over signed REST calls.
//!
//! - `put` streams: a body that fits one part of [`PART_SIZE`] goes up as one PutObject; a
//!   larger one as a multipart upload, one part in memory at a time (so memory stays bounded
//!   whatever the object's size), made visible at once by CompleteMultipartUpload. A body that
//!   fails part-way aborts the upload: nothing becomes visible. `if_absent` sends
//!   `If-None-Match: *` (S3's conditional write; 412 means the key is taken).
//! - `get` streams the object, or a byte range of it (`Range`); `head` reads its metadata.
//! - `list` is ListObjectsV2, its continuation token passed through.
//! - `delete` asks HeadObject first: S3 answers DeleteObject with 204 whether or not the key
//!   existed, and the port reports which it was. (A concurrent writer between the two calls may
//!   make the answer stale; deletion itself stays idempotent.)
//! - A missing bucket is `Unavailable` for `get`, `list` and `put` (S3 names it in the error
//!   body); HeadObject answers carry no body, so `head` and `delete` cannot tell it from a missing
//!   object.
//! - `head` reads Object Lock: `x-amz-object-lock-retain-until-date` is `immutable_until`, and
//!   a legal hold (`x-amz-object-lock-legal-hold: ON`) makes it [`DateTime::<Utc>::MAX_UTC`].
//!   `get`, `put` and `list` leave it `None`.
//!
//! The bucket is not created here (on AWS it is infrastructure); [`S3ObjectStore::create_bucket`]
//! exists for emulators.

mod list;
mod upload;

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use reqwest::Method;
use tracing::instrument;

use super::http::{Call, CallError, SignedClient};
use super::sigv4::uri_encode;
use super::{AwsCredentials, SetupError};
use crate::ports::object_store::{
    ByteStream, ObjectMeta, ObjectPage, ObjectStore, ObjectStoreError, PutOptions, stream_from_bytes, validate_key,
};

/// Size of one part of a multipart upload (S3 wants at least 5 MiB for all but the last), and
/// the largest body sent as a single PutObject.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Where the bucket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The bucket.
    pub bucket: String,
    /// Its region (`AWS_REGION` on Lambda).
    pub region: String,
    /// An endpoint other than AWS's (moto: `http://127.0.0.1:5000`): addressed path-style.
    /// `None`: `https://<bucket>.s3.<region>.amazonaws.com` (virtual-hosted style).
    pub endpoint: Option<String>,
}

/// Objects in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: SignedClient,
    bucket: String,
    region: String,
    /// `/<bucket>` when addressed path-style, empty when virtual-hosted.
    path_prefix: String,
}

fn validate_bucket(name: &str) -> Result<(), SetupError> {
    let ok = (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(SetupError::InvalidBucket { bucket: name.to_owned() }) }
}

pub(crate) fn unavailable(operation: &'static str, key: &str, e: CallError) -> ObjectStoreError {
    ObjectStoreError::Unavailable { operation, key: key.to_owned(), transient: e.is_transient(), source: Box::new(e) }
}

fn not_found_or(operation: &'static str, key: &str, e: CallError) -> ObjectStoreError {
    if e.status() == Some(404) && e.code() != "NoSuchBucket" {
        ObjectStoreError::NotFound { key: key.to_owned() }
    } else {
        unavailable(operation, key, e)
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// An HTTP date (`Last-Modified`, `Date`).
fn http_date(text: Option<&str>) -> DateTime<Utc> {
    text.and_then(|t| DateTime::parse_from_rfc2822(t).ok()).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

/// Until when Object Lock keeps the object (a legal hold: for ever).
fn immutable_until(response: &reqwest::Response) -> Option<DateTime<Utc>> {
    if header(response, "x-amz-object-lock-legal-hold").is_some_and(|h| h.eq_ignore_ascii_case("ON")) {
        return Some(DateTime::<Utc>::MAX_UTC);
    }
    header(response, "x-amz-object-lock-retain-until-date")
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn range_error(key: &str, range: &Range<u64>, size: u64) -> ObjectStoreError {
    ObjectStoreError::InvalidKey {
        key: key.to_owned(),
        reason: format!("range {}..{} is outside the object's {size} bytes", range.start, range.end),
    }
}

impl S3ObjectStore {
    /// A store of `settings.bucket`, signing with `credentials`.
    ///
    /// # Errors
    /// An invalid bucket name or endpoint.
    pub fn new(settings: &S3Settings, credentials: AwsCredentials) -> Result<Self, SetupError> {
        validate_bucket(&settings.bucket)?;
        let (origin, path_prefix) = match &settings.endpoint {
            Some(endpoint) => (endpoint.trim_end_matches('/').to_owned(), format!("/{}", settings.bucket)),
            None => (format!("https://{}.s3.{}.amazonaws.com", settings.bucket, settings.region), String::new()),
        };
        let client = SignedClient::new(&format!("{origin}/"), credentials, &settings.region, "s3")?;
        Ok(Self { client, bucket: settings.bucket.clone(), region: settings.region.clone(), path_prefix })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket (for emulators; on AWS the bucket is provisioned with the function).
    /// An existing bucket of ours is fine.
    ///
    /// # Errors
    /// `Unavailable` when the service refuses.
    pub async fn create_bucket(&self) -> Result<(), ObjectStoreError> {
        let body = if self.region == super::DEFAULT_REGION {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            ))
        };
        let call = Call { path: self.bucket_path(), body, ..Call::default() };
        match self.client.send(Method::PUT, call).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == "BucketAlreadyOwnedByYou" => Ok(()),
            Err(e) => Err(unavailable("create bucket", &self.bucket, e)),
        }
    }

    fn bucket_path(&self) -> String {
        if self.path_prefix.is_empty() { "/".to_owned() } else { self.path_prefix.clone() }
    }

    fn object_path(&self, key: &str) -> String {
        format!("{}/{}", self.path_prefix, uri_encode(key, true))
    }

    async fn call(&self, method: Method, key: &str, call: Call) -> Result<reqwest::Response, CallError> {
        let call = Call { path: self.object_path(key), ..call };
        self.client.send(method, call).await
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    #[instrument(skip(self, body, options), fields(s3.bucket = %self.bucket, s3.key = %key))]
    async fn put(&self, key: &str, body: ByteStream, options: PutOptions) -> Result<ObjectMeta, ObjectStoreError> {
        validate_key(key)?;
        self.upload(key, body, &options).await
    }

    #[instrument(skip(self), fields(s3.bucket = %self.bucket, s3.key = %key))]
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<(ObjectMeta, ByteStream), ObjectStoreError> {
        validate_key(key)?;
        if let Some(r) = &range
            && r.start >= r.end
        {
            // An empty range cannot be written as a `Range` header: answer it from the metadata.
            let meta = self.head(key).await?;
            if r.start > r.end || r.end > meta.size {
                return Err(range_error(key, r, meta.size));
            }
            return Ok((meta, stream_from_bytes(Bytes::new())));
        }
        let headers = range.iter().map(|r| ("range".to_owned(), format!("bytes={}-{}", r.start, r.end - 1))).collect();
        let response = self.call(Method::GET, key, Call { headers, ..Call::default() }).await.map_err(|e| {
            if e.status() == Some(416) {
                ObjectStoreError::InvalidKey { key: key.to_owned(), reason: "range starts past the end".into() }
            } else {
                not_found_or("get", key, e)
            }
        })?;
        let length = header(&response, "content-length").and_then(|l| l.parse().ok());
        let size = header(&response, "content-range")
            .and_then(|r| r.rsplit_once('/'))
            .and_then(|(_, total)| total.parse().ok())
            .or(length)
            .unwrap_or_default();
        if let Some(r) = &range
            && r.end > size
        {
            return Err(range_error(key, r, size));
        }
        let last_modified = http_date(header(&response, "last-modified"));
        let meta = ObjectMeta { key: key.to_owned(), size, last_modified, immutable_until: None };
        Ok((meta, Box::pin(response.bytes_stream().map_err(std::io::Error::other))))
    }

    #[instrument(skip(self), fields(s3.bucket = %self.bucket, s3.key = %key))]
    async fn head(&self, key: &str) -> Result<ObjectMeta, ObjectStoreError> {
        validate_key(key)?;
        let response = self.call(Method::HEAD, key, Call::default()).await.map_err(|e| not_found_or("head", key, e))?;
        let size = header(&response, "content-length").and_then(|l| l.parse().ok()).unwrap_or_default();
        let last_modified = http_date(header(&response, "last-modified"));
        Ok(ObjectMeta { key: key.to_owned(), size, last_modified, immutable_until: immutable_until(&response) })
    }

    #[instrument(skip(self), fields(s3.bucket = %self.bucket, s3.prefix = %prefix))]
    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage, ObjectStoreError> {
        let mut query =
            vec![("list-type".to_owned(), "2".to_owned()), ("max-keys".to_owned(), limit.clamp(1, 1000).to_string())];
        if !prefix.is_empty() {
            query.push(("prefix".to_owned(), prefix.to_owned()));
        }
        if let Some(token) = continuation {
            query.push(("continuation-token".to_owned(), token.to_owned()));
        }
        let call = Call { path: self.bucket_path(), query, ..Call::default() };
        let response = self.client.send(Method::GET, call).await.map_err(|e| match e.status() {
            Some(400) if continuation.is_some() => ObjectStoreError::InvalidKey {
                key: prefix.to_owned(),
                reason: format!("continuation token refused: {e}"),
            },
            _ => unavailable("list", prefix, e),
        })?;
        let xml = response.text().await.map_err(|e| unavailable("list", prefix, e.into()))?;
        list::parse(&xml).map_err(|reason| {
            unavailable(
                "list",
                prefix,
                CallError::Service { status: 200, code: "MalformedListing".to_owned(), message: reason },
            )
        })
    }

    #[instrument(skip(self), fields(s3.bucket = %self.bucket, s3.key = %key))]
    async fn delete(&self, key: &str) -> Result<bool, ObjectStoreError> {
        validate_key(key)?;
        let existed = match self.head(key).await {
            Ok(_) => true,
            Err(ObjectStoreError::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        self.call(Method::DELETE, key, Call::default()).await.map_err(|e| unavailable("delete", key, e))?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(headers: &[(&str, &str)]) -> reqwest::Response {
        let mut builder = http::Response::builder().status(200);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        reqwest::Response::from(builder.body(Vec::<u8>::new()).expect("response"))
    }

    #[test]
    fn object_lock_headers_give_the_immutability_end() {
        let until = response(&[("x-amz-object-lock-retain-until-date", "2026-12-01T00:00:00.000Z")]);
        assert_eq!(immutable_until(&until).map(|t| t.to_rfc3339()), Some("2026-12-01T00:00:00+00:00".to_owned()));
        let held = response(&[
            ("x-amz-object-lock-retain-until-date", "2026-12-01T00:00:00.000Z"),
            ("x-amz-object-lock-legal-hold", "ON"),
        ]);
        assert_eq!(immutable_until(&held), Some(DateTime::<Utc>::MAX_UTC));
        assert_eq!(immutable_until(&response(&[("x-amz-object-lock-legal-hold", "OFF")])), None);
    }
}

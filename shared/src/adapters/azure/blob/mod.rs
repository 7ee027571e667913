//! [`ObjectStore`] on Azure Blob Storage, through the official `azure_storage_blob` 1.x client.
//!
//! - `put` streams: the body is cut into blocks of [`BLOCK_SIZE`], staged at most
//!   [`STAGING_IN_FLIGHT`] at a time (so memory stays bounded whatever the object's size), and
//!   made visible at once by committing the block list. A body that fits one block goes up as
//!   one Put Blob. Staged blocks that are never committed (a body that fails part-way) stay
//!   invisible and the service discards them. `if_absent` sends `If-None-Match: *`.
//! - `get` streams the blob, or a byte range of it, through the SDK's partitioned download
//!   (pinned to the first response's ETag, so a concurrent replace cannot mix two versions).
//! - The container is created on the first write that finds it missing.

mod copier;
mod sas;
mod upload;

pub use copier::BlobObjectCopier;

use std::num::NonZero;
use std::ops::Range;

use async_trait::async_trait;
use azure_storage_blob::models::{
    BlobClientDownloadOptions, BlobClientGetPropertiesResultHeaders, BlobContainerClientListBlobsOptions,
};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions, BlockBlobClient};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::TryStreamExt;
use tracing::instrument;

use super::{ClientSettings, SetupError, StorageAuth, endpoint_url, errors, shared_key};
use crate::ports::object_store::{
    ByteStream, ObjectMeta, ObjectPage, ObjectStore, ObjectStoreError, PutOptions, validate_key,
};

/// Size of one staged block (and the largest body sent as one Put Blob).
pub const BLOCK_SIZE: usize = 4 * 1024 * 1024;
/// Most blocks being staged at once by one `put`.
pub const STAGING_IN_FLIGHT: usize = 4;
/// Parallel range requests of one `get`.
const DOWNLOAD_PARALLEL: usize = 2;

/// Objects as block blobs in one container.
pub struct BlobObjectStore {
    container: BlobContainerClient,
    name: String,
}

impl std::fmt::Debug for BlobObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobObjectStore").field("container", &self.container.url().as_str()).finish()
    }
}

fn unavailable(operation: &'static str, key: &str, e: azure_core::Error) -> ObjectStoreError {
    ObjectStoreError::Unavailable {
        operation,
        key: key.to_owned(),
        transient: errors::is_transient(&e),
        source: Box::new(e),
    }
}

fn is_missing(e: &azure_core::Error) -> bool {
    errors::status(e) == Some(404)
}

fn container_missing(e: &azure_core::Error) -> bool {
    errors::code(e) == Some("ContainerNotFound")
}

fn to_chrono(t: Option<azure_core::time::OffsetDateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond())).unwrap_or_default()
}

/// Checks a container name against Blob Storage's rules.
fn validate_container(name: &str) -> Result<(), SetupError> {
    let ok = (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok { Ok(()) } else { Err(SetupError::InvalidContainer { container: name.to_owned() }) }
}

impl BlobObjectStore {
    /// A store on the container `container` of the Blob service at `endpoint` (e.g.
    /// `https://acct.blob.core.windows.net`, or Azurite's `http://127.0.0.1:10000/devstoreaccount1`).
    ///
    /// # Errors
    /// [`SetupError`] for a malformed endpoint or container name, or a token over plain http.
    pub fn new(
        endpoint: &str,
        container: &str,
        auth: &StorageAuth,
        settings: &ClientSettings,
    ) -> Result<Self, SetupError> {
        validate_container(container)?;
        let mut url = endpoint_url(endpoint, auth)?;
        url.path_segments_mut()
            .map_err(|()| SetupError::InvalidEndpoint { endpoint: endpoint.to_owned() })?
            .push(container);
        let mut options = BlobContainerClientOptions {
            client_options: settings.client_options(auth, shared_key::Service::Blob),
            ..BlobContainerClientOptions::default()
        };
        if let Some(version) = &settings.blob_service_version {
            options.version.clone_from(version);
        }
        // The bearer policy is already among the client options: the SDK's own is not needed.
        let client = BlobContainerClient::new(url, None, Some(options)).map_err(|source| SetupError::Client {
            service: "blob",
            endpoint: endpoint.to_owned(),
            source: Box::new(source),
        })?;
        Ok(Self { container: client, name: container.to_owned() })
    }

    /// The container's name.
    pub fn container(&self) -> &str {
        &self.name
    }

    fn block_blob(&self, key: &str) -> BlockBlobClient {
        self.container.blob_client(key).block_blob_client()
    }
}

/// The blob's total size from a (ranged) download's headers.
fn total_size(headers: &azure_core::http::headers::Headers, fallback: Option<u64>) -> Option<u64> {
    headers
        .get_optional_str(&"content-range".into())
        .and_then(|r| r.rsplit_once('/'))
        .and_then(|(_, total)| total.parse().ok())
        .or(fallback)
}

fn range_error(key: &str, range: &Range<u64>, size: u64) -> ObjectStoreError {
    ObjectStoreError::InvalidKey {
        key: key.to_owned(),
        reason: format!("range {}..{} is outside the object's {size} bytes", range.start, range.end),
    }
}

#[async_trait]
impl ObjectStore for BlobObjectStore {
    #[instrument(skip(self, body, options), fields(blob.container = %self.name, blob.key = %key))]
    async fn put(&self, key: &str, body: ByteStream, options: PutOptions) -> Result<ObjectMeta, ObjectStoreError> {
        validate_key(key)?;
        self.upload(key, body, &options).await
    }

    #[instrument(skip(self), fields(blob.container = %self.name, blob.key = %key))]
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<(ObjectMeta, ByteStream), ObjectStoreError> {
        validate_key(key)?;
        if let Some(r) = &range
            && r.start >= r.end
        {
            // An empty range is not a request the service takes: answer it from the metadata.
            let meta = self.head(key).await?;
            if r.start > r.end || r.end > meta.size {
                return Err(range_error(key, r, meta.size));
            }
            return Ok((meta, crate::ports::object_store::stream_from_bytes(Bytes::new())));
        }
        let options = BlobClientDownloadOptions {
            range: range.clone().map(Into::into),
            parallel: NonZero::new(DOWNLOAD_PARALLEL),
            partition_size: NonZero::new(BLOCK_SIZE),
            ..BlobClientDownloadOptions::default()
        };
        let result =
            self.container.blob_client(key).download(Some(options)).await.map_err(|e| match errors::status(&e) {
                Some(404) => ObjectStoreError::NotFound { key: key.to_owned() },
                Some(416) => {
                    ObjectStoreError::InvalidKey { key: key.to_owned(), reason: "range starts past the end".into() }
                }
                _ => unavailable("get", key, e),
            })?;
        let props = &result.properties;
        let size = total_size(&result.headers, props.content_length).unwrap_or_default();
        if let Some(r) = &range
            && r.end > size
        {
            return Err(range_error(key, r, size));
        }
        let meta = ObjectMeta {
            key: key.to_owned(),
            size,
            last_modified: to_chrono(props.last_modified),
            immutable_until: None,
        };
        let body = result.body.map_err(std::io::Error::other);
        Ok((meta, Box::pin(body)))
    }

    #[instrument(skip(self), fields(blob.container = %self.name, blob.key = %key))]
    async fn head(&self, key: &str) -> Result<ObjectMeta, ObjectStoreError> {
        validate_key(key)?;
        let response = self.container.blob_client(key).get_properties(None).await.map_err(|e| {
            if is_missing(&e) {
                ObjectStoreError::NotFound { key: key.to_owned() }
            } else {
                unavailable("head", key, e)
            }
        })?;
        let size = response.content_length().map_err(|e| unavailable("head", key, e))?.unwrap_or_default();
        let last_modified = to_chrono(response.last_modified().map_err(|e| unavailable("head", key, e))?);
        // A legal hold keeps the blob until it is lifted; a version-level immutability policy
        // until its expiry. (Container-level policies are not reported per blob: a delete then
        // fails, and prune leaves the backup for a later run.)
        let legal_hold = response.legal_hold().map_err(|e| unavailable("head", key, e))?.unwrap_or(false);
        let policy_until = response
            .immutability_policy_expires_on()
            .map_err(|e| unavailable("head", key, e))?
            .map(|t| to_chrono(Some(t)));
        let immutable_until = if legal_hold { Some(DateTime::<Utc>::MAX_UTC) } else { policy_until };
        Ok(ObjectMeta { key: key.to_owned(), size, last_modified, immutable_until })
    }

    #[instrument(skip(self), fields(blob.container = %self.name, blob.prefix = %prefix))]
    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage, ObjectStoreError> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            marker: continuation.map(str::to_owned),
            maxresults: Some(i32::try_from(limit.clamp(1, 5000)).unwrap_or(5000)),
            ..BlobContainerClientListBlobsOptions::default()
        };
        let pager = self.container.list_blobs(Some(options)).map_err(|e| unavailable("list", prefix, e))?;
        let page = match pager.into_pages().try_next().await {
            Ok(Some(page)) => page.into_model().map_err(|e| unavailable("list", prefix, e))?,
            Ok(None) => return Ok(ObjectPage::default()),
            Err(e) if container_missing(&e) => return Ok(ObjectPage::default()),
            Err(e) if errors::status(&e) == Some(400) && continuation.is_some() => {
                return Err(ObjectStoreError::InvalidKey {
                    key: prefix.to_owned(),
                    reason: "the continuation token was not issued by this store".into(),
                });
            }
            Err(e) => return Err(unavailable("list", prefix, e)),
        };
        let objects = page
            .blob_items
            .into_iter()
            .filter_map(|item| {
                let props = item.properties.unwrap_or_default();
                Some(ObjectMeta {
                    key: item.name?,
                    size: props.content_length.unwrap_or_default(),
                    last_modified: to_chrono(props.last_modified),
                    immutable_until: None,
                })
            })
            .collect();
        Ok(ObjectPage { objects, continuation: page.next_marker.filter(|m| !m.is_empty()) })
    }

    #[instrument(skip(self), fields(blob.container = %self.name, blob.key = %key))]
    async fn delete(&self, key: &str) -> Result<bool, ObjectStoreError> {
        validate_key(key)?;
        match self.container.blob_client(key).delete(None).await {
            Ok(_) => Ok(true),
            Err(e) if is_missing(&e) => Ok(false),
            Err(e) => Err(unavailable("delete", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_blob_rules() {
        assert!(validate_container("lifeboat-backups").is_ok());
        for bad in ["ab", "Upper", "a--b", "-a", "a-", "a_b"] {
            assert!(validate_container(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn total_size_reads_the_content_range() {
        let mut headers = azure_core::http::headers::Headers::new();
        headers.insert("content-range", "bytes 2-4/10");
        assert_eq!(total_size(&headers, Some(3)), Some(10));
        assert_eq!(total_size(&azure_core::http::headers::Headers::new(), Some(3)), Some(3));
    }
}

//! [`ObjectCopier`] between two Blob Storage containers (two accounts, two regions) with Copy
//! Blob from URL: the target account reads the source blob itself, authorised by a short-lived
//! read-only SAS on the source blob's URL (a user-delegation SAS with an Entra ID identity, a
//! service SAS with an account key on Azurite). No blob byte passes through this process, so
//! [`ObjectCopier::traffic`] stays zero. Fingerprints are the blob's size and Content-MD5 (the
//! service keeps one for blobs written in one Put Blob; Copy Blob carries it along).

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::Secret;
use azure_core::http::RequestContent;
use azure_storage_blob::models::{
    BlobClientGetPropertiesResultHeaders, BlobClientStartCopyFromUrlResultHeaders, CopyStatus, KeyInfo,
};
use azure_storage_blob::{BlobServiceClient, BlobServiceClientOptions};
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use tracing::instrument;

use super::sas::{self, DelegationKeyInfo, SasScope};
use super::{BlobObjectStore, is_missing, unavailable};
use crate::adapters::azure::{ClientSettings, SetupError, SharedKeyCredential, StorageAuth, endpoint_url, errors};
use crate::ports::object_copier::{ObjectCopier, ObjectCopyState, ObjectFingerprint, TargetObject, Traffic};
use crate::ports::object_store::{ObjectStoreError, validate_key};

/// How long a source SAS is valid: long enough for the service to read a large blob.
const SAS_LIFETIME: chrono::Duration = chrono::Duration::hours(2);
/// How long a user delegation key is asked for (it signs many SAS tokens).
const KEY_LIFETIME: chrono::Duration = chrono::Duration::hours(6);

/// A user delegation key, its secret and when it expires.
type CachedKey = Mutex<Option<(DelegationKeyInfo, Secret, DateTime<Utc>)>>;

/// How source SAS tokens are signed.
enum Signer {
    /// Service SAS with the account key.
    Key(SharedKeyCredential),
    /// User-delegation SAS with a key fetched with the identity's token, cached.
    Delegation { service: Box<BlobServiceClient>, key: CachedKey },
}

/// Copies blobs from a source container to a target container server-side.
pub struct BlobObjectCopier {
    source: Arc<BlobObjectStore>,
    target: Arc<BlobObjectStore>,
    source_account: String,
    signer: Signer,
}

impl std::fmt::Debug for BlobObjectCopier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobObjectCopier")
            .field("source", &self.source)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The account of a Blob endpoint: path style (`http://127.0.0.1:10000/acct`) or host style
/// (`https://acct.blob.core.windows.net`).
fn account_of(url: &azure_core::http::Url) -> Option<String> {
    let host = url.host_str()?;
    let path_style = host.parse::<std::net::IpAddr>().is_ok() || host == "localhost";
    if path_style {
        url.path_segments()?.find(|s| !s.is_empty()).map(str::to_owned)
    } else {
        host.split('.').next().map(str::to_owned)
    }
}

impl BlobObjectCopier {
    /// Copies from `source` (at `source_endpoint`, authorised by `source_auth`) into `target`.
    ///
    /// # Errors
    /// [`SetupError`] for a malformed endpoint or when the service client cannot be built.
    pub fn new(
        source: Arc<BlobObjectStore>,
        source_endpoint: &str,
        source_auth: &StorageAuth,
        target: Arc<BlobObjectStore>,
        settings: &ClientSettings,
    ) -> Result<Self, SetupError> {
        let url = endpoint_url(source_endpoint, source_auth)?;
        let invalid = || SetupError::InvalidEndpoint { endpoint: source_endpoint.to_owned() };
        let signer = match source_auth {
            StorageAuth::SharedKey(key) => Signer::Key(key.clone()),
            StorageAuth::Token(_) => {
                let mut options = BlobServiceClientOptions {
                    client_options: settings.client_options(source_auth, super::super::shared_key::Service::Blob),
                    ..BlobServiceClientOptions::default()
                };
                if let Some(version) = &settings.blob_service_version {
                    options.version.clone_from(version);
                }
                let service = BlobServiceClient::new(url.clone(), None, Some(options)).map_err(|e| {
                    SetupError::Client { service: "blob", endpoint: source_endpoint.to_owned(), source: Box::new(e) }
                })?;
                Signer::Delegation { service: Box::new(service), key: Mutex::new(None) }
            }
        };
        let source_account = match &signer {
            Signer::Key(key) => key.account().to_owned(),
            Signer::Delegation { .. } => account_of(&url).ok_or_else(invalid)?,
        };
        Ok(Self { source, target, source_account, signer })
    }

    /// The source blob's URL with a read-only SAS valid for [`SAS_LIFETIME`].
    async fn source_url(&self, key: &str) -> Result<String, ObjectStoreError> {
        let mut url = self.source.container.blob_client(key).url().clone();
        let now = Utc::now();
        let scope = SasScope {
            canonical_resource: format!("/blob/{}/{}/{key}", self.source_account, self.source.name),
            start: now - chrono::Duration::minutes(5),
            expiry: now + SAS_LIFETIME,
        };
        let sign_failed = |e: azure_core::Error| unavailable("sign a SAS for", key, e);
        let (query, signature) = match &self.signer {
            Signer::Key(credential) => {
                (sas::query(&scope, None), credential.sign(&sas::service_string_to_sign(&scope)).map_err(sign_failed)?)
            }
            Signer::Delegation { service, key: cache } => {
                let (info, secret) = self.delegation_key(service, cache, key).await?;
                let string = sas::delegation_string_to_sign(&scope, &info);
                (sas::query(&scope, Some(&info)), azure_core::hmac::hmac_sha256(&string, &secret).map_err(sign_failed)?)
            }
        };
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &query {
                pairs.append_pair(name, value);
            }
            pairs.append_pair("sig", &signature);
        }
        Ok(url.to_string())
    }

    /// A user delegation key, fetched anew when the cached one expires within the SAS lifetime.
    async fn delegation_key(
        &self,
        service: &BlobServiceClient,
        cache: &CachedKey,
        key: &str,
    ) -> Result<(DelegationKeyInfo, Secret), ObjectStoreError> {
        let mut cached = cache.lock().await;
        let now = Utc::now();
        if let Some((info, secret, expiry)) = cached.as_ref()
            && *expiry > now + SAS_LIFETIME
        {
            return Ok((info.clone(), secret.clone()));
        }
        let failed = |e: azure_core::Error| unavailable("get a user delegation key for", key, e);
        let expiry = now + KEY_LIFETIME;
        let to_offset = |t: DateTime<Utc>| azure_core::time::OffsetDateTime::from_unix_timestamp(t.timestamp()).ok();
        let info = KeyInfo {
            start: to_offset(now - chrono::Duration::minutes(5)),
            expiry: to_offset(expiry),
            ..KeyInfo::default()
        };
        let content: RequestContent<KeyInfo, _> = info.try_into().map_err(failed)?;
        let response = service.get_user_delegation_key(content, None).await.map_err(failed)?;
        let udk = response.into_model().map_err(failed)?;
        let time = |t: Option<azure_core::time::OffsetDateTime>| {
            t.and_then(|t| DateTime::from_timestamp(t.unix_timestamp(), 0))
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        };
        let info = DelegationKeyInfo {
            object_id: udk.signed_oid.unwrap_or_default(),
            tenant_id: udk.signed_tid.unwrap_or_default(),
            start: time(udk.signed_start),
            expiry: time(udk.signed_expiry),
            service: udk.signed_service.unwrap_or_else(|| "b".to_owned()),
            version: udk.signed_version.unwrap_or_else(|| sas::SAS_VERSION.to_owned()),
        };
        let secret = Secret::new(azure_core::base64::encode(udk.value.unwrap_or_default()));
        *cached = Some((info.clone(), secret.clone(), expiry));
        Ok((info, secret))
    }

    async fn fingerprint(
        store: &BlobObjectStore,
        key: &str,
    ) -> Result<Option<(ObjectFingerprint, Option<ObjectCopyState>)>, ObjectStoreError> {
        validate_key(key)?;
        let response = match store.container.blob_client(key).get_properties(None).await {
            Ok(r) => r,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(unavailable("head", key, e)),
        };
        let failed = |e| unavailable("head", key, e);
        let size = response.content_length().map_err(failed)?.unwrap_or_default();
        let checksum = response.content_md5().map_err(failed)?.map(azure_core::base64::encode);
        let copy = response.copy_status().map_err(failed)?.map(|status| match status {
            CopyStatus::Pending => ObjectCopyState::Pending,
            CopyStatus::Success => ObjectCopyState::Succeeded,
            CopyStatus::Aborted | CopyStatus::Failed => ObjectCopyState::Failed {
                reason: response.copy_status_description().ok().flatten().unwrap_or_else(|| format!("{status:?}")),
            },
        });
        Ok(Some((ObjectFingerprint { size, checksum }, copy)))
    }
}

#[async_trait]
impl ObjectCopier for BlobObjectCopier {
    #[instrument(skip(self), fields(blob.container = %self.source.name, blob.key = %key))]
    async fn source_fingerprint(&self, key: &str) -> Result<ObjectFingerprint, ObjectStoreError> {
        match Self::fingerprint(&self.source, key).await? {
            Some((fingerprint, _)) => Ok(fingerprint),
            None => Err(ObjectStoreError::NotFound { key: key.to_owned() }),
        }
    }

    #[instrument(skip(self), fields(blob.container = %self.target.name, blob.key = %key))]
    async fn inspect_target(&self, key: &str) -> Result<Option<TargetObject>, ObjectStoreError> {
        Ok(Self::fingerprint(&self.target, key).await?.map(|(fingerprint, copy)| TargetObject { fingerprint, copy }))
    }

    #[instrument(skip(self), fields(blob.container = %self.target.name, blob.key = %key))]
    async fn start_copy(&self, key: &str) -> Result<ObjectCopyState, ObjectStoreError> {
        validate_key(key)?;
        let source = self.source_url(key).await?;
        let blob = self.target.container.blob_client(key);
        let response = match blob.start_copy_from_url(source.clone(), None).await {
            Ok(r) => r,
            Err(e) if super::container_missing(&e) => {
                self.target.create_container(key).await?;
                blob.start_copy_from_url(source, None).await.map_err(|e| copy_error(key, e))?
            }
            Err(e) => return Err(copy_error(key, e)),
        };
        Ok(match response.copy_status().map_err(|e| unavailable("copy", key, e))? {
            Some(CopyStatus::Success) => ObjectCopyState::Succeeded,
            Some(CopyStatus::Aborted | CopyStatus::Failed) => ObjectCopyState::Failed { reason: "copy refused".into() },
            _ => ObjectCopyState::Pending,
        })
    }

    fn traffic(&self) -> Traffic {
        // Copy Blob from URL moves no byte through this process.
        Traffic::default()
    }
}

fn copy_error(key: &str, e: azure_core::Error) -> ObjectStoreError {
    if errors::status(&e) == Some(404) {
        ObjectStoreError::NotFound { key: key.to_owned() }
    } else {
        unavailable("copy", key, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_comes_from_the_host_or_the_path() {
        let url = |s| azure_core::http::Url::parse(s).unwrap();
        assert_eq!(account_of(&url("https://acct.blob.core.windows.net")).as_deref(), Some("acct"));
        assert_eq!(account_of(&url("http://127.0.0.1:10000/devstoreaccount1")).as_deref(), Some("devstoreaccount1"));
    }
}

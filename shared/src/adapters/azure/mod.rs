//! Azure adapters: [`BlobObjectStore`] (Blob Storage, through the official
//! `azure_storage_blob` 1.x client), [`TableStateStore`] (Table Storage, through a small
//! client of our own on the `azure_core` 1.x HTTP pipeline: no maintained Table crate exists on
//! the current `azure_core`) and [`ServiceBusBus`] (sending to Service Bus with its REST API on
//! the same pipeline, see [`servicebus`] for why). [`arm`] is a small Azure Resource Manager
//! client (snapshot copies), and [`aks`] reaches AKS clusters with Entra ID tokens.
//!
//! Both authenticate with a [`StorageAuth`]: an Entra ID [`TokenCredential`] in Azure (managed
//! identity, workload identity or an Azure CLI login, see [`credential`]), or Shared Key
//! signing with an account key, meant for Azurite and its public development key. Both run on
//! the `azure_core` pipeline, so retries, request ids and logging (with secrets redacted) are the
//! SDK's.

pub mod aks;
pub mod arm;
pub mod blob;
pub mod credential;
mod errors;
pub mod servicebus;
pub mod shared_key;
pub mod table;

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{ClientOptions, RetryOptions};

pub use blob::{BlobObjectCopier, BlobObjectStore};
pub use credential::{AzureAuthMode, CredentialError};
pub use servicebus::{ServiceBusBus, ServiceBusSettings};
pub use shared_key::SharedKeyCredential;
pub use table::TableStateStore;

/// The development account every Azurite knows.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// The public key of [`AZURITE_ACCOUNT`] (documented by Microsoft; not a secret).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The newest Blob service version Azurite 3.35 accepts (the SDK's default is newer).
pub const AZURITE_BLOB_VERSION: &str = "2025-11-05";

/// The OAuth scope of Azure Storage.
const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// How requests to Azure Storage are authorised.
#[derive(Clone, Debug)]
pub enum StorageAuth {
    /// An Entra ID token (bearer): managed identity, workload identity, Azure CLI. Needs https.
    Token(Arc<dyn TokenCredential>),
    /// Shared Key signing with an account key: for Azurite (its public development key).
    SharedKey(SharedKeyCredential),
}

impl StorageAuth {
    /// Shared Key auth with Azurite's development account.
    pub fn azurite() -> Self {
        Self::SharedKey(SharedKeyCredential::new(AZURITE_ACCOUNT, AZURITE_KEY))
    }
}

/// Client settings shared by both adapters.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Retry transient failures (408, 429, 5xx, connection errors) with the SDK's exponential
    /// backoff. Tests turn this off so that a failure shows at once.
    pub retries: bool,
    /// The Blob service version to ask for (`None`: the SDK's default). Azurite needs
    /// [`AZURITE_BLOB_VERSION`] unless started with `--skipApiVersionCheck`.
    pub blob_service_version: Option<String>,
    /// Further pipeline policies, run once per call before retries and signing (none by
    /// default; tests count traffic with one, see `testing::counting_policy`).
    pub policies: Vec<Arc<dyn Policy>>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self { retries: true, blob_service_version: None, policies: Vec::new() }
    }
}

impl ClientSettings {
    /// Settings for Azurite: its service version, no retries.
    pub fn azurite() -> Self {
        Self { retries: false, blob_service_version: Some(AZURITE_BLOB_VERSION.to_owned()), policies: Vec::new() }
    }

    /// Pipeline options carrying the auth policy for `service` (blob or table signing).
    fn client_options(&self, auth: &StorageAuth, service: shared_key::Service) -> ClientOptions {
        let policy: Arc<dyn Policy> = match auth {
            StorageAuth::Token(credential) => {
                Arc::new(BearerTokenAuthorizationPolicy::new(Arc::clone(credential), [STORAGE_SCOPE]))
            }
            StorageAuth::SharedKey(key) => Arc::new(shared_key::SharedKeyPolicy::new(key.clone(), service)),
        };
        let retry = if self.retries { RetryOptions::default() } else { RetryOptions::none() };
        ClientOptions {
            per_call_policies: self.policies.clone(),
            per_try_policies: vec![policy],
            retry,
            transport: Some(shared_transport()),
            ..ClientOptions::default()
        }
    }
}

/// The one HTTP transport every Azure client of the process uses. Building one loads the
/// system's root certificates (about 5 ms): once per process, not once per client.
pub(crate) fn shared_transport() -> azure_core::http::Transport {
    static TRANSPORT: std::sync::OnceLock<azure_core::http::Transport> = std::sync::OnceLock::new();
    TRANSPORT.get_or_init(|| azure_core::http::Transport::new(azure_core::http::new_http_client(None))).clone()
}

/// Why an adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The endpoint is not an http(s) URL without query.
    #[error("invalid storage endpoint {endpoint:?}: expected an http(s) URL without query")]
    InvalidEndpoint {
        /// The endpoint given.
        endpoint: String,
    },
    /// A token credential was given for a plain-http endpoint (bearer tokens need https).
    #[error("storage endpoint {endpoint} uses http: token credentials need https")]
    TokenOverHttp {
        /// The endpoint given.
        endpoint: String,
    },
    /// The container name breaks Blob Storage's rules.
    #[error("invalid container name {container:?}: 3 to 63 lowercase letters, digits and single dashes")]
    InvalidContainer {
        /// The name given.
        container: String,
    },
    /// The SDK refused to build a client.
    #[error("building the {service} client for {endpoint} failed")]
    Client {
        /// `blob` or `table`.
        service: &'static str,
        /// The endpoint.
        endpoint: String,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
}

/// A storage service URL without a trailing slash (the SDK would double it).
fn endpoint_url(endpoint: &str, auth: &StorageAuth) -> Result<azure_core::http::Url, SetupError> {
    let trimmed = endpoint.trim_end_matches('/');
    let url = azure_core::http::Url::parse(trimmed)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none() && u.fragment().is_none())
        .ok_or_else(|| SetupError::InvalidEndpoint { endpoint: endpoint.to_owned() })?;
    if matches!(auth, StorageAuth::Token(_)) && url.scheme() != "https" {
        return Err(SetupError::TokenOverHttp { endpoint: trimmed.to_owned() });
    }
    Ok(url)
}

//! Choosing how to authenticate to Azure Storage, by configuration: an Entra ID identity in
//! Azure, and Azurite's public development key on a developer's machine. Account keys are never
//! read from settings: a leaked app setting must not be a leaked storage account.

use std::str::FromStr;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzureCliCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential,
};

use super::{AZURITE_ACCOUNT, AZURITE_KEY, SharedKeyCredential, StorageAuth};

/// How the function app proves who it is to Azure Storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureAuthMode {
    /// The app's managed identity: system-assigned, or the user-assigned one with this client id.
    ManagedIdentity {
        /// Client id of a user-assigned identity (`None`: the system-assigned one).
        client_id: Option<String>,
    },
    /// Workload identity federation (AKS, or anywhere `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
    /// `AZURE_FEDERATED_TOKEN_FILE` are set).
    WorkloadIdentity,
    /// The developer's `az login`.
    AzureCli,
    /// Shared Key with Azurite's public development account (`devstoreaccount1`): loopback only.
    DevKey,
}

impl FromStr for AzureAuthMode {
    type Err = CredentialError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "managed-identity" => Ok(Self::ManagedIdentity { client_id: None }),
            "workload-identity" => Ok(Self::WorkloadIdentity),
            "azure-cli" => Ok(Self::AzureCli),
            "dev-key" => Ok(Self::DevKey),
            other => Err(CredentialError::UnknownMode { mode: other.to_owned() }),
        }
    }
}

/// Why no credential could be built.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The mode is not one of the known ones.
    #[error("unknown Azure auth mode {mode:?}: expected managed-identity, workload-identity, azure-cli or dev-key")]
    UnknownMode {
        /// The mode given.
        mode: String,
    },
    /// `dev-key` was asked for an endpoint that is not on this machine.
    #[error("dev-key auth is for Azurite on this machine, but endpoint {endpoint} is not a loopback address")]
    DevKeyOffLoopback {
        /// The endpoint.
        endpoint: String,
    },
    /// `dev-key` was asked for a service that only takes Entra ID tokens (Service Bus).
    #[error(
        "dev-key auth is for Azurite's storage only: {service} needs managed-identity, workload-identity or azure-cli"
    )]
    KeyNotAccepted {
        /// The service.
        service: &'static str,
    },
    /// The identity library refused the configuration.
    #[error("building the {mode} credential failed")]
    Identity {
        /// The mode.
        mode: &'static str,
        /// The cause.
        #[source]
        source: Box<azure_core::Error>,
    },
}

impl AzureAuthMode {
    /// The auth for the storage `endpoints` (checked: `dev-key` only on loopback).
    ///
    /// # Errors
    /// [`CredentialError`] when the identity cannot be configured, or `dev-key` leaves the machine.
    pub fn storage_auth(&self, endpoints: &[&str]) -> Result<StorageAuth, CredentialError> {
        if *self == Self::DevKey {
            if let Some(endpoint) = endpoints.iter().find(|e| !is_loopback(e)) {
                return Err(CredentialError::DevKeyOffLoopback { endpoint: (*endpoint).to_owned() });
            }
            return Ok(StorageAuth::SharedKey(SharedKeyCredential::new(AZURITE_ACCOUNT, AZURITE_KEY)));
        }
        self.token_credential("Azure Storage").map(StorageAuth::Token)
    }

    /// The Entra ID credential of this mode, for `service` (named in errors): every mode but
    /// `dev-key`, which is a storage key and no identity.
    ///
    /// # Errors
    /// [`CredentialError`] when the identity cannot be configured, or the mode is `dev-key`.
    pub fn token_credential(&self, service: &'static str) -> Result<Arc<dyn TokenCredential>, CredentialError> {
        let identity = |mode: &'static str| move |e| CredentialError::Identity { mode, source: Box::new(e) };
        let credential: Arc<dyn TokenCredential> = match self {
            Self::DevKey => return Err(CredentialError::KeyNotAccepted { service }),
            Self::ManagedIdentity { client_id } => {
                let options = ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options: azure_core::http::ClientOptions {
                        transport: Some(super::shared_transport()),
                        ..azure_core::http::ClientOptions::default()
                    },
                };
                ManagedIdentityCredential::new(Some(options)).map_err(identity("managed-identity"))?
            }
            Self::WorkloadIdentity => WorkloadIdentityCredential::new(None).map_err(identity("workload-identity"))?,
            Self::AzureCli => AzureCliCredential::new(None).map_err(identity("azure-cli"))?,
        };
        Ok(credential)
    }
}

/// Whether `endpoint`'s host is this machine.
pub(crate) fn is_loopback(endpoint: &str) -> bool {
    azure_core::http::Url::parse(endpoint).ok().and_then(|u| u.host_str().map(str::to_owned)).is_some_and(|host| {
        host == "localhost"
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_unknown_ones_are_named() {
        assert_eq!("azure-cli".parse::<AzureAuthMode>().ok(), Some(AzureAuthMode::AzureCli));
        let err = "key".parse::<AzureAuthMode>().expect_err("unknown");
        assert!(err.to_string().contains("\"key\""), "{err}");
    }

    #[test]
    fn the_dev_key_stays_on_this_machine() {
        let ok = AzureAuthMode::DevKey.storage_auth(&["http://127.0.0.1:10000/devstoreaccount1", "http://localhost:1"]);
        assert!(matches!(ok, Ok(StorageAuth::SharedKey(_))));
        let err = AzureAuthMode::DevKey.storage_auth(&["https://acct.blob.core.windows.net"]);
        assert!(matches!(err, Err(CredentialError::DevKeyOffLoopback { .. })));
    }
}

//! How the app reaches clusters, chosen with the storage: in Azure (`LIFEBOAT_STORAGE=azure`
//! with an Entra ID identity) the [`AksConnector`] (AKS clusters by ARM resource id, others by
//! kubeconfig); on the embedded defaults, and with Azurite's development key, kubeconfigs only.

use std::sync::Arc;

use anyhow::Context;
use lifeboat_shared::adapters::azure::AzureAuthMode;
use lifeboat_shared::adapters::azure::aks::AksConnector;
use lifeboat_shared::adapters::azure::arm::{ArmClient, ArmSettings};
use lifeboat_shared::adapters::kube::KubeconfigConnector;
use lifeboat_shared::ports::ClusterConnector;

use crate::replicas::ARM_ENDPOINT_VAR;
use crate::storage::Storage;

/// The cluster connector for `storage`, from the process environment.
///
/// # Errors
/// See [`connector_from_lookup`].
pub fn connector(storage: &Storage) -> anyhow::Result<Arc<dyn ClusterConnector>> {
    connector_from_lookup(storage, |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

/// The cluster connector for `storage`, with [`ARM_ENDPOINT_VAR`] read from `get`.
///
/// # Errors
/// An identity that cannot be built, or a malformed ARM endpoint, named.
pub fn connector_from_lookup(
    storage: &Storage,
    get: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Arc<dyn ClusterConnector>> {
    let Some(auth) = aks_identity(storage) else { return Ok(Arc::new(KubeconfigConnector::default())) };
    let credential = auth.token_credential("AKS").context("setting up the identity for AKS clusters")?;
    let mut settings = ArmSettings::default();
    if let Some(endpoint) = get(ARM_ENDPOINT_VAR) {
        settings.endpoint = endpoint;
    }
    let arm = ArmClient::new(Arc::clone(&credential), settings).context(ARM_ENDPOINT_VAR)?;
    Ok(Arc::new(AksConnector::new(arm, credential)))
}

/// The identity AKS clusters are reached with: the storage's, when it is an Entra ID one.
fn aks_identity(storage: &Storage) -> Option<&AzureAuthMode> {
    match storage {
        Storage::Azure(azure) if azure.auth != AzureAuthMode::DevKey => Some(&azure.auth),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::AzureStorage;

    use super::*;

    fn azure(auth: AzureAuthMode) -> Storage {
        Storage::Azure(AzureStorage {
            blob_endpoint: "https://acct.blob.core.windows.net".into(),
            container: "lifeboat".into(),
            table_endpoint: "https://acct.table.core.windows.net".into(),
            auth,
            replica: None,
        })
    }

    #[test]
    fn azure_with_an_identity_reaches_aks_and_the_rest_uses_kubeconfigs() {
        let managed = azure(AzureAuthMode::ManagedIdentity { client_id: None });
        assert_eq!(aks_identity(&managed), Some(&AzureAuthMode::ManagedIdentity { client_id: None }));
        assert!(connector_from_lookup(&managed, |_| None).is_ok());
        assert_eq!(aks_identity(&Storage::Embedded), None);
        assert_eq!(aks_identity(&azure(AzureAuthMode::DevKey)), None);
    }

    #[test]
    fn a_bad_arm_endpoint_is_named() {
        let managed = azure(AzureAuthMode::ManagedIdentity { client_id: None });
        let err = connector_from_lookup(&managed, |_| Some("ftp://arm.example".to_owned())).err().expect("refused");
        assert!(format!("{err:#}").contains(ARM_ENDPOINT_VAR), "{err:#}");
    }
}

//! [`AksConnector`]: reaches AKS clusters from their ARM resource id, and other clusters
//! through their kubeconfig ([`KubeconfigConnector`]).
//!
//! For an AKS cluster it reads the managed cluster from ARM ([`AksCluster`]: FQDN, version,
//! tags, node pools; the connected cluster serves them, read again, as its
//! [`Cluster::platform`](crate::ports::cluster::Cluster::platform), for the manifest), takes the API server's address and CA from `listClusterUserCredential`
//! (`format=exec`: the user part is an exec plugin, ignored) and builds a `kube` client whose
//! every request carries an Entra ID token for the AKS server application ([`AKS_SCOPE`]),
//! cached and renewed [`REFRESH_MARGIN`] before it expires. The identity needs the "Azure
//! Kubernetes Service Cluster User Role" on the cluster, and Kubernetes RBAC inside it.

mod cluster;
mod info;
mod token;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use kube::config::{AuthInfo, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedContext};

pub use info::{AksCluster, AksNodePool};
pub use token::{AKS_SCOPE, REFRESH_MARGIN};

use self::cluster::AksKubeCluster;
use super::arm::{ArmCall, ArmClient, ArmError};
use crate::adapters::kube::{KubeCluster, KubeconfigConnector};
use crate::domain::policy::{Cluster as ClusterDecl, ClusterConnection};
use crate::ports::cluster::{Cluster, ClusterConnector, ClusterError};

/// The `Microsoft.ContainerService` API version Lifeboat speaks.
pub const AKS_API_VERSION: &str = "2024-09-01";

/// Connects to AKS clusters with Entra ID, and to other clusters with their kubeconfig, caching
/// one client per cluster name.
pub struct AksConnector {
    arm: ArmClient,
    credential: Arc<dyn TokenCredential>,
    kubeconfig: KubeconfigConnector,
    cache: tokio::sync::Mutex<HashMap<String, (KubeCluster, AksCluster)>>,
}

impl std::fmt::Debug for AksConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AksConnector").field("arm", &self.arm).finish_non_exhaustive()
    }
}

impl AksConnector {
    /// Reads clusters through `arm` and signs in to their API servers with `credential`.
    pub fn new(arm: ArmClient, credential: Arc<dyn TokenCredential>) -> Self {
        Self { arm, credential, kubeconfig: KubeconfigConnector::default(), cache: tokio::sync::Mutex::default() }
    }

    /// What ARM said about the AKS cluster named `name`, once connected.
    pub async fn aks_cluster(&self, name: &str) -> Option<AksCluster> {
        self.cache.lock().await.get(name).map(|(_, aks)| aks.clone())
    }

    /// Reads the managed cluster `resource_id` from ARM.
    ///
    /// # Errors
    /// [`ClusterError::Forbidden`] when the identity may not read it, [`ClusterError::Invalid`]
    /// when it does not exist, [`ClusterError::Unavailable`] or `Throttled` otherwise.
    pub async fn read_cluster(&self, resource_id: &str) -> Result<AksCluster, ClusterError> {
        read_cluster(&self.arm, resource_id).await
    }

    /// A client for the API server of `aks`, from its user credential.
    async fn client(&self, aks: &AksCluster) -> Result<KubeCluster, ClusterError> {
        let resource_id = aks.resource_id.as_str();
        let call = ArmCall {
            operation: "listing AKS cluster user credentials",
            resource: resource_id,
            api_version: AKS_API_VERSION,
        };
        let answer = match self.arm.post(call, "listClusterUserCredential?format=exec", None).await {
            Ok(answer) => answer,
            Err(ArmError::NotFound { .. }) => return Err(not_found(call.operation, resource_id)),
            Err(e) => return Err(classify(e)),
        };
        let invalid =
            |message: String| ClusterError::Invalid { what: format!("{} {resource_id}", call.operation), message };
        let kubeconfig = info::user_kubeconfig(&answer).map_err(invalid)?;
        let config = kube::Config::from_custom_kubeconfig(without_user(kubeconfig)?, &KubeConfigOptions::default())
            .await
            .map_err(|e| invalid(e.to_string()))?;
        let bearer = token::BearerLayer(token::BearerToken::new(Arc::clone(&self.credential)));
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| invalid(e.to_string()))?
            .with_layer(&bearer)
            .build();
        Ok(KubeCluster::new(client))
    }
}

/// Reads the managed cluster `resource_id` through `arm`.
async fn read_cluster(arm: &ArmClient, resource_id: &str) -> Result<AksCluster, ClusterError> {
    let call = ArmCall { operation: "reading AKS cluster", resource: resource_id, api_version: AKS_API_VERSION };
    match arm.get(call).await {
        Ok(Some(body)) => Ok(AksCluster::from_arm(resource_id, &body)),
        Ok(None) => Err(not_found(call.operation, resource_id)),
        Err(e) => Err(classify(e)),
    }
}

/// The first cluster of `kubeconfig` with a user of no credentials of its own (the token is
/// set per request): AKS's exec plugin (kubelogin) is not run.
fn without_user(kubeconfig: Kubeconfig) -> Result<Kubeconfig, ClusterError> {
    let cluster = kubeconfig.clusters.into_iter().next().ok_or_else(|| ClusterError::Invalid {
        what: "AKS user credential".into(),
        message: "the kubeconfig names no cluster".into(),
    })?;
    let user = "lifeboat".to_owned();
    let context = Context { cluster: cluster.name.clone(), user: Some(user.clone()), ..Context::default() };
    Ok(Kubeconfig {
        current_context: Some(user.clone()),
        contexts: vec![NamedContext { name: user.clone(), context: Some(context), other: Default::default() }],
        auth_infos: vec![NamedAuthInfo { name: user, auth_info: Some(AuthInfo::default()), other: Default::default() }],
        clusters: vec![cluster],
        ..Kubeconfig::default()
    })
}

fn not_found(operation: &str, resource_id: &str) -> ClusterError {
    ClusterError::Invalid {
        what: format!("{operation} {resource_id}"),
        message: "no such AKS cluster (check the resourceId, and that the identity can see its resource group)".into(),
    }
}

fn classify(error: ArmError) -> ClusterError {
    match error {
        ArmError::Denied { operation, resource, fault } => {
            ClusterError::Forbidden { what: format!("{operation} {resource}"), message: fault.to_string() }
        }
        ArmError::Throttled { operation, resource, retry_after } => {
            ClusterError::Throttled { what: format!("{operation} {resource}"), retry_after: Some(retry_after) }
        }
        ArmError::Rejected { operation, resource, fault } => {
            ClusterError::Invalid { what: format!("{operation} {resource}"), message: fault.to_string() }
        }
        other => ClusterError::Unavailable { what: "AKS cluster".into(), message: other.to_string() },
    }
}

#[async_trait]
impl ClusterConnector for AksConnector {
    async fn connect(&self, cluster: &ClusterDecl) -> Result<Arc<dyn Cluster>, ClusterError> {
        let resource_id = match &cluster.spec.connection {
            ClusterConnection::Aks { resource_id } => resource_id,
            _ => return self.kubeconfig.connect(cluster).await,
        };
        let mut cache = self.cache.lock().await;
        if let Some((kube, aks)) = cache.get(cluster.name.as_str()) {
            return Ok(Arc::new(AksKubeCluster { kube: kube.clone(), arm: self.arm.clone(), connected: aks.clone() }));
        }
        let aks = self.read_cluster(resource_id).await?;
        let client = self.client(&aks).await?;
        tracing::info!(
            cluster = %cluster.name,
            resource_id = %resource_id,
            fqdn = aks.fqdn.as_deref().unwrap_or("-"),
            version = aks.kubernetes_version.as_deref().unwrap_or("-"),
            "connected to AKS cluster"
        );
        let connected = AksKubeCluster { kube: client.clone(), arm: self.arm.clone(), connected: aks.clone() };
        cache.insert(cluster.name.to_string(), (client, aks));
        Ok(Arc::new(connected))
    }
}

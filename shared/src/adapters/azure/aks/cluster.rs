//! [`AksKubeCluster`]: the `kube` client of an AKS cluster, which also answers
//! [`Cluster::platform`] from ARM, so that a backup records the cluster's tags, version and node
//! pools without knowing about ARM. ARM is read again on each call (a backup asks once): the
//! tags say which release built the cluster, and an upgrade changes version and pools while a
//! host keeps its connection. When that read fails, the answer is what ARM said at connection
//! time, with a warning: the backup does not fail for want of a description.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::info::AksCluster;
use crate::adapters::azure::arm::ArmClient;
use crate::adapters::kube::KubeCluster;
use crate::domain::platform::{NodePool, PlatformInfo};
use crate::ports::cluster::{ApiResourceInfo, Cluster, ClusterError, ExecOutput, ListPage};

/// An AKS cluster's API server, and ARM to describe it.
#[derive(Clone)]
pub(super) struct AksKubeCluster {
    /// The API server.
    pub kube: KubeCluster,
    /// Where the description comes from.
    pub arm: ArmClient,
    /// What ARM said when connecting.
    pub connected: AksCluster,
}

impl From<&AksCluster> for PlatformInfo {
    fn from(aks: &AksCluster) -> Self {
        PlatformInfo {
            resource_id: aks.resource_id.clone(),
            fqdn: aks.fqdn.clone(),
            kubernetes_version: aks.kubernetes_version.clone(),
            tags: aks.tags.clone(),
            node_pools: aks
                .node_pools
                .iter()
                .map(|p| NodePool {
                    name: p.name.clone(),
                    count: p.count,
                    vm_size: p.vm_size.clone(),
                    mode: p.mode.clone(),
                })
                .collect(),
        }
    }
}

#[async_trait]
impl Cluster for AksKubeCluster {
    async fn version(&self) -> Result<String, ClusterError> {
        self.kube.version().await
    }

    async fn platform(&self) -> Result<Option<PlatformInfo>, ClusterError> {
        let resource_id = self.connected.resource_id.as_str();
        let aks = match super::read_cluster(&self.arm, resource_id).await {
            Ok(aks) => aks,
            Err(e) => {
                tracing::warn!(
                    resource_id,
                    error = %e,
                    "reading the AKS cluster from ARM failed: describing it as it was when connecting"
                );
                self.connected.clone()
            }
        };
        Ok(Some(PlatformInfo::from(&aks)))
    }

    async fn discover(&self) -> Result<Vec<ApiResourceInfo>, ClusterError> {
        self.kube.discover().await
    }

    async fn list(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        limit: u32,
        continue_token: Option<&str>,
    ) -> Result<ListPage, ClusterError> {
        self.kube.list(resource, namespace, label_selector, limit, continue_token).await
    }

    async fn get(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        self.kube.get(resource, namespace, name).await
    }

    async fn create(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, ClusterError> {
        self.kube.create(resource, namespace, object).await
    }

    async fn replace(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, ClusterError> {
        self.kube.replace(resource, namespace, object).await
    }

    async fn delete(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ClusterError> {
        self.kube.delete(resource, namespace, name).await
    }

    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, ClusterError> {
        self.kube.exec(namespace, pod, container, command, timeout).await
    }
}

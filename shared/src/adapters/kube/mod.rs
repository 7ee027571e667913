//! [`Cluster`] on the `kube` client: any API server reached through a kubeconfig (AKS clusters
//! by ARM resource id: `adapters::azure::aks::AksConnector`, which builds a [`KubeCluster`] too).
//!
//! Requests are built with `kube::core::Request` and answered as raw JSON, so objects reach the
//! archive exactly as the server sent them.

mod exec;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::Request;
use kube::core::params::{DeleteParams, GetParams, ListParams, PostParams};
use kube::discovery::{Discovery, Scope};
use serde_json::Value;

use crate::domain::policy::ClusterConnection;
use crate::ports::cluster::{ApiResourceInfo, Cluster, ClusterConnector, ClusterError, ExecOutput, ListPage};

/// A cluster behind a `kube::Client`.
#[derive(Clone)]
pub struct KubeCluster {
    client: kube::Client,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster").finish_non_exhaustive()
    }
}

impl KubeCluster {
    /// Wraps a client.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// A client from a kubeconfig file (the default one when `path` is `None`) and context
    /// (the current one when `None`).
    ///
    /// # Errors
    /// [`ClusterError::Invalid`] when the kubeconfig cannot be read or used.
    pub async fn from_kubeconfig(path: Option<&Path>, context: Option<&str>) -> Result<Self, ClusterError> {
        let invalid = |message: String| ClusterError::Invalid { what: "kubeconfig".into(), message };
        let kubeconfig = match path {
            Some(p) => Kubeconfig::read_from(p).map_err(|e| invalid(format!("{}: {e}", p.display())))?,
            None => Kubeconfig::read().map_err(|e| invalid(e.to_string()))?,
        };
        let options = KubeConfigOptions { context: context.map(str::to_owned), ..KubeConfigOptions::default() };
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|e| invalid(e.to_string()))?;
        let client = kube::Client::try_from(config).map_err(|e| invalid(e.to_string()))?;
        Ok(Self { client })
    }

    async fn request(
        &self,
        what: &str,
        request: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    ) -> Result<Value, ClusterError> {
        let request = request.map_err(|e| ClusterError::Invalid { what: what.to_owned(), message: e.to_string() })?;
        self.client.request::<Value>(request).await.map_err(|e| classify(what, e))
    }
}

/// `/api/v1[/namespaces/{ns}]/{plural}` or `/apis/{group}/{version}[/namespaces/{ns}]/{plural}`.
fn url_path(r: &ApiResourceInfo, namespace: Option<&str>) -> String {
    let base =
        if r.group.is_empty() { format!("/api/{}", r.version) } else { format!("/apis/{}/{}", r.group, r.version) };
    match namespace {
        Some(ns) if r.namespaced => format!("{base}/namespaces/{ns}/{}", r.resource),
        _ => format!("{base}/{}", r.resource),
    }
}

fn classify(what: &str, error: kube::Error) -> ClusterError {
    let what = what.to_owned();
    match error {
        kube::Error::Api(status) => {
            let message = status.message.clone();
            match status.code {
                404 => ClusterError::NotFound { what },
                409 if status.reason == "AlreadyExists" => ClusterError::AlreadyExists { what },
                409 if status.reason == "Conflict" => ClusterError::Conflict { what },
                401 | 403 => ClusterError::Forbidden { what, message },
                429 => ClusterError::Throttled { what, retry_after: None },
                500..=599 => ClusterError::Unavailable { what, message },
                _ => ClusterError::Invalid { what, message },
            }
        }
        other => ClusterError::Unavailable { what, message: other.to_string() },
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn version(&self) -> Result<String, ClusterError> {
        self.client.apiserver_version().await.map(|v| v.git_version).map_err(|e| classify("server version", e))
    }

    async fn discover(&self) -> Result<Vec<ApiResourceInfo>, ClusterError> {
        let discovery = match Discovery::new(self.client.clone()).run_aggregated().await {
            Ok(d) => d,
            // Servers before 1.26 have no aggregated discovery: ask group by group.
            Err(_) => Discovery::new(self.client.clone()).run().await.map_err(|e| classify("discovery", e))?,
        };
        let mut resources = Vec::new();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                resources.push(ApiResourceInfo {
                    group: ar.group,
                    version: ar.version,
                    resource: ar.plural,
                    kind: ar.kind,
                    namespaced: matches!(caps.scope, Scope::Namespaced),
                    verbs: caps.operations,
                });
            }
        }
        Ok(resources)
    }

    async fn list(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        limit: u32,
        continue_token: Option<&str>,
    ) -> Result<ListPage, ClusterError> {
        let what = format!("listing {} in {}", resource.group_resource(), namespace.unwrap_or("all namespaces"));
        let params = ListParams {
            label_selector: label_selector.map(str::to_owned),
            limit: Some(limit),
            continue_token: continue_token.map(str::to_owned),
            ..ListParams::default()
        };
        let list = self.request(&what, Request::new(url_path(resource, namespace)).list(&params)).await?;
        let continue_token =
            list.pointer("/metadata/continue").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let mut items = match list.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        };
        // Items of a typed list come without apiVersion and kind: put them back.
        for item in &mut items {
            if let Value::Object(map) = item {
                map.insert("apiVersion".into(), Value::String(resource.api_version()));
                map.insert("kind".into(), Value::String(resource.kind.clone()));
            }
        }
        Ok(ListPage { items, continue_token })
    }

    async fn get(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let what = format!("{} {}/{name}", resource.group_resource(), namespace.unwrap_or("-"));
        match self.request(&what, Request::new(url_path(resource, namespace)).get(name, &GetParams::default())).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, ClusterError> {
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("(generated)");
        let what = format!("creating {} {}/{name}", resource.group_resource(), namespace.unwrap_or("-"));
        let body = serde_json::to_vec(object)
            .map_err(|e| ClusterError::Invalid { what: what.clone(), message: e.to_string() })?;
        self.request(&what, Request::new(url_path(resource, namespace)).create(&PostParams::default(), body)).await
    }

    async fn replace(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, ClusterError> {
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let what = format!("replacing {} {}/{name}", resource.group_resource(), namespace.unwrap_or("-"));
        let body = serde_json::to_vec(object)
            .map_err(|e| ClusterError::Invalid { what: what.clone(), message: e.to_string() })?;
        let request = Request::new(url_path(resource, namespace)).replace(name, &PostParams::default(), body);
        self.request(&what, request).await
    }

    async fn delete(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ClusterError> {
        let what = format!("deleting {} {}/{name}", resource.group_resource(), namespace.unwrap_or("-"));
        let params = DeleteParams::background();
        let request = Request::new(url_path(resource, namespace)).delete(name, &params);
        match self.request(&what, request).await {
            Ok(_) => Ok(true),
            Err(ClusterError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: &[String],
        timeout: std::time::Duration,
    ) -> Result<ExecOutput, ClusterError> {
        exec::exec(&self.client, namespace, pod, container, command, timeout).await
    }
}

/// Connects to clusters declared with a kubeconfig, caching one client per cluster.
#[derive(Debug, Default)]
pub struct KubeconfigConnector {
    cache: tokio::sync::Mutex<std::collections::HashMap<String, KubeCluster>>,
}

#[async_trait]
impl ClusterConnector for KubeconfigConnector {
    async fn connect(&self, cluster: &crate::domain::policy::Cluster) -> Result<Arc<dyn Cluster>, ClusterError> {
        let mut cache = self.cache.lock().await;
        if let Some(client) = cache.get(cluster.name.as_str()) {
            return Ok(Arc::new(client.clone()));
        }
        let client = match &cluster.spec.connection {
            ClusterConnection::Kubeconfig { path, context, .. } => {
                KubeCluster::from_kubeconfig(path.as_deref().map(Path::new), context.as_deref()).await?
            }
            ClusterConnection::Aks { resource_id } => {
                return Err(ClusterError::Invalid {
                    what: format!("cluster {}", cluster.name),
                    message: format!(
                        "{resource_id} is reached with an Azure identity (the AKS connector, in Azure mode); declare a kubeconfig to reach it here"
                    ),
                });
            }
        };
        cache.insert(cluster.name.to_string(), client.clone());
        Ok(Arc::new(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(group: &str, resource: &str, namespaced: bool) -> ApiResourceInfo {
        ApiResourceInfo {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            kind: "X".into(),
            namespaced,
            verbs: vec![],
        }
    }

    #[test]
    fn paths_follow_the_api_layout() {
        assert_eq!(url_path(&r("", "pods", true), Some("a")), "/api/v1/namespaces/a/pods");
        assert_eq!(url_path(&r("", "pods", true), None), "/api/v1/pods");
        assert_eq!(url_path(&r("apps", "deployments", true), Some("a")), "/apis/apps/v1/namespaces/a/deployments");
        assert_eq!(url_path(&r("", "persistentvolumes", false), Some("a")), "/api/v1/persistentvolumes");
    }
}

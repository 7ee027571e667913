//! What ARM says about a managed cluster (`Microsoft.ContainerService/managedClusters`), and the
//! API server's address and CA from its user credential.

use std::collections::BTreeMap;

use serde_json::Value;

/// A managed cluster as ARM describes it (for the manifest's tags and reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AksCluster {
    /// Its ARM resource id.
    pub resource_id: String,
    /// The API server's host name (`properties.fqdn`, or `privateFQDN` for a private cluster).
    pub fqdn: Option<String>,
    /// The Kubernetes version running (`currentKubernetesVersion`, else `kubernetesVersion`).
    pub kubernetes_version: Option<String>,
    /// Its Azure tags.
    pub tags: BTreeMap<String, String>,
    /// Its node pools.
    pub node_pools: Vec<AksNodePool>,
}

/// One node pool (`agentPoolProfiles[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AksNodePool {
    /// Its name.
    pub name: String,
    /// How many nodes it has.
    pub count: Option<u64>,
    /// The VM size of its nodes (`Standard_D4s_v5`).
    pub vm_size: Option<String>,
    /// `System` or `User`.
    pub mode: Option<String>,
}

impl AksCluster {
    /// Reads ARM's answer to a managed cluster GET.
    pub fn from_arm(resource_id: &str, body: &Value) -> Self {
        let text = |pointer: &str| body.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
        let tags = body
            .get("tags")
            .and_then(Value::as_object)
            .map(|tags| tags.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
            .unwrap_or_default();
        let node_pools = body
            .pointer("/properties/agentPoolProfiles")
            .and_then(Value::as_array)
            .map(|pools| {
                pools
                    .iter()
                    .map(|pool| AksNodePool {
                        name: pool.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        count: pool.get("count").and_then(Value::as_u64),
                        vm_size: pool.get("vmSize").and_then(Value::as_str).map(str::to_owned),
                        mode: pool.get("mode").and_then(Value::as_str).map(str::to_owned),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            resource_id: resource_id.to_owned(),
            fqdn: text("/properties/fqdn").or_else(|| text("/properties/privateFQDN")),
            kubernetes_version: text("/properties/currentKubernetesVersion")
                .or_else(|| text("/properties/kubernetesVersion")),
            tags,
            node_pools,
        }
    }
}

/// The first kubeconfig of a `listClusterUserCredential` answer
/// (`{"kubeconfigs":[{"name","value":<base64 YAML>}]}`), decoded.
///
/// # Errors
/// A message saying what is missing or malformed.
pub(super) fn user_kubeconfig(answer: &Value) -> Result<kube::config::Kubeconfig, String> {
    let value = answer
        .pointer("/kubeconfigs/0/value")
        .and_then(Value::as_str)
        .ok_or("the answer holds no kubeconfigs[0].value")?;
    let yaml = azure_core::base64::decode(value).map_err(|e| format!("kubeconfigs[0].value is not base64: {e}"))?;
    let yaml = String::from_utf8(yaml).map_err(|_| "kubeconfigs[0].value is not UTF-8 text".to_owned())?;
    kube::config::Kubeconfig::from_yaml(&yaml).map_err(|e| format!("kubeconfigs[0].value is not a kubeconfig: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_managed_cluster_reads_fqdn_version_tags_and_pools() {
        let body = json!({
            "tags": { "env": "prod", "owner": "team-a" },
            "properties": {
                "kubernetesVersion": "1.30",
                "currentKubernetesVersion": "1.30.4",
                "privateFQDN": "prod-abc.privatelink.westeurope.azmk8s.io",
                "agentPoolProfiles": [
                    { "name": "system", "count": 3, "vmSize": "Standard_D4s_v5", "mode": "System" },
                    { "name": "user", "vmSize": "Standard_E8s_v5", "mode": "User" }
                ]
            }
        });
        let cluster = AksCluster::from_arm("/subscriptions/s/x", &body);
        assert_eq!(cluster.fqdn.as_deref(), Some("prod-abc.privatelink.westeurope.azmk8s.io"));
        assert_eq!(cluster.kubernetes_version.as_deref(), Some("1.30.4"));
        assert_eq!(cluster.tags.get("owner").map(String::as_str), Some("team-a"));
        assert_eq!(cluster.node_pools.len(), 2);
        assert_eq!(cluster.node_pools[0].count, Some(3));
        assert_eq!(cluster.node_pools[1].count, None);
        assert_eq!(cluster.node_pools[1].mode.as_deref(), Some("User"));
    }

    #[test]
    fn a_credential_answer_without_a_kubeconfig_says_so() {
        let err = user_kubeconfig(&json!({ "kubeconfigs": [] })).expect_err("no kubeconfig");
        assert!(err.contains("kubeconfigs[0].value"), "{err}");
        let err = user_kubeconfig(&json!({ "kubeconfigs": [{ "value": "%%%" }] })).expect_err("not base64");
        assert!(err.contains("not base64"), "{err}");
    }
}

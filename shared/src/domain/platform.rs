//! What the cloud platform says about a cluster (for AKS, its managed cluster resource in ARM):
//! the release that built it shows in its tags (`git_tag=release-v1.3.5`), its Kubernetes
//! version and its node pools. A backup records it in its manifest; [`cluster_tags`] merges the
//! platform's tags with the ones the Cluster document declares.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The platform's description of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformInfo {
    /// The cluster's resource id on the platform (AKS: the managed cluster's ARM id).
    pub resource_id: String,
    /// The API server's host name, as the platform reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    /// The Kubernetes version the platform reports (AKS: `currentKubernetesVersion`, e.g.
    /// `1.33.2`; the manifest's `clusterVersion` is the API server's own `gitVersion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// The platform's tags on the cluster resource, as read (the manifest's `clusterTags` holds
    /// them merged with the Cluster document's, see [`cluster_tags`]).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The node pools.
    #[serde(default)]
    pub node_pools: Vec<NodePool>,
}

/// One node pool of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePool {
    /// Its name.
    pub name: String,
    /// How many nodes it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The machine size of its nodes (AKS: the VM size, `Standard_D4s_v5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    /// Its role (AKS: `System` or `User`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// The tags a backup records for its cluster: the platform's, then the Cluster document's
/// `spec.tags`, which win where both name the same tag.
pub fn cluster_tags(declared: &BTreeMap<String, String>, platform: Option<&PlatformInfo>) -> BTreeMap<String, String> {
    let mut tags = platform.map(|p| p.tags.clone()).unwrap_or_default();
    tags.extend(declared.iter().map(|(k, v)| (k.clone(), v.clone())));
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_documents_tags_win_over_the_platforms_and_both_are_kept() {
        let platform =
            PlatformInfo { tags: map(&[("git_tag", "release-v1.3.5"), ("env", "prod")]), ..PlatformInfo::default() };
        let declared = map(&[("env", "production"), ("team", "payments")]);
        assert_eq!(
            cluster_tags(&declared, Some(&platform)),
            map(&[("env", "production"), ("git_tag", "release-v1.3.5"), ("team", "payments")])
        );
        assert_eq!(cluster_tags(&declared, None), declared, "no platform: the document's tags alone");
    }

    #[test]
    fn unknown_fields_default_and_empty_ones_are_left_out() {
        let info: PlatformInfo = serde_json::from_str(r#"{"resourceId":"/subscriptions/s/x"}"#).expect("minimal");
        assert_eq!(info, PlatformInfo { resource_id: "/subscriptions/s/x".into(), ..PlatformInfo::default() });
        let pool = NodePool { name: "system".into(), count: Some(3), ..NodePool::default() };
        assert_eq!(serde_json::to_string(&pool).expect("json"), r#"{"name":"system","count":3}"#);
    }
}

//! The ARM resource id of an AKS managed cluster, as events name it.
//!
//! ARM ids compare case-insensitively (`resourceGroups` and `resourcegroups` are one segment;
//! Azure's own samples mix both), so a [`ManagedClusterId`] is kept in one canonical, lowercase
//! spelling: `/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.containerservice/managedclusters/{name}`.

use std::fmt;

/// The canonical (lowercase) ARM id of one AKS managed cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagedClusterId(String);

impl ManagedClusterId {
    /// Finds a managed cluster's id in `text`: an id of the cluster itself or of anything
    /// beneath it (`…/managedClusters/aks1/scheduledEvents/…`, `…/agentPools/…`). `None` when
    /// `text` names no managed cluster.
    ///
    /// ```
    /// use lifeboat_shared::domain::upgrade_events::ManagedClusterId;
    /// let a = ManagedClusterId::find_in("/subscriptions/S1/resourceGroups/RG/providers/Microsoft.ContainerService/managedClusters/aks1/agentPools/np1");
    /// let b = ManagedClusterId::find_in("/subscriptions/s1/resourcegroups/rg/providers/microsoft.containerservice/managedclusters/AKS1");
    /// assert_eq!(a, b);
    /// assert!(ManagedClusterId::find_in("aks1").is_none());
    /// ```
    pub fn find_in(text: &str) -> Option<Self> {
        let path = text.trim().split(['?', '#']).next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        const SHAPE: [Option<&str>; 8] = [
            Some("subscriptions"),
            None,
            Some("resourcegroups"),
            None,
            Some("providers"),
            Some("microsoft.containerservice"),
            Some("managedclusters"),
            None,
        ];
        (0..segments.len()).find_map(|start| {
            let window = segments.get(start..start + SHAPE.len())?;
            let fits = window.iter().zip(SHAPE).all(|(segment, expected)| match expected {
                Some(literal) => segment.eq_ignore_ascii_case(literal),
                None => is_name(segment),
            });
            fits.then(|| Self(format!("/{}", window.join("/").to_ascii_lowercase())))
        })
    }

    /// The canonical spelling.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cluster's name (the last segment).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }
}

/// A segment that can be a subscription, group or cluster name (not a placeholder with
/// spaces or an empty string).
fn is_name(segment: &str) -> bool {
    !segment.is_empty() && !segment.chars().any(char::is_whitespace)
}

impl fmt::Display for ManagedClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANONICAL: &str =
        "/subscriptions/0000/resourcegroups/rg-prod/providers/microsoft.containerservice/managedclusters/aks-prod";

    #[test]
    fn ids_in_any_case_and_below_the_cluster_are_one_cluster() {
        for text in [
            "/subscriptions/0000/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod",
            "/subscriptions/0000/resourcegroups/RG-PROD/providers/Microsoft.ContainerService/managedClusters/aks-prod/",
            "/subscriptions/0000/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod/scheduledEvents/e1",
            "https://management.azure.com/subscriptions/0000/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod?api-version=2024-01-01",
        ] {
            let id = ManagedClusterId::find_in(text);
            assert_eq!(id.as_ref().map(ManagedClusterId::as_str), Some(CANONICAL), "{text}");
        }
        assert_eq!(ManagedClusterId::find_in(CANONICAL).unwrap().name(), "aks-prod");
    }

    #[test]
    fn other_resources_and_bare_names_are_not_clusters() {
        for text in [
            "aks-prod",
            "/subscriptions/0000",
            "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
            "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters",
            "",
        ] {
            assert_eq!(ManagedClusterId::find_in(text), None, "{text}");
        }
    }
}

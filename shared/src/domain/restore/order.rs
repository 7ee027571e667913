//! Ordering classes: each tier is applied after the previous one, so that what an object
//! refers to exists first (the architecture's list, which is Velero's priority list).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// An ordering class. Declaration order is apply order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Tier {
    /// CustomResourceDefinitions, each waited on until established.
    CustomResourceDefinitions,
    /// Namespaces (archived or generated for a target namespace).
    Namespaces,
    /// StorageClasses.
    StorageClasses,
    /// VolumeSnapshotClasses.
    VolumeSnapshotClasses,
    /// VolumeSnapshotContents (generated from the backup's snapshot records).
    VolumeSnapshotContents,
    /// VolumeSnapshots (generated), each waited on until ready.
    VolumeSnapshots,
    /// PersistentVolumes (those no restored claim replaces).
    PersistentVolumes,
    /// PersistentVolumeClaims.
    PersistentVolumeClaims,
    /// ServiceAccounts.
    ServiceAccounts,
    /// Secrets.
    Secrets,
    /// ConfigMaps.
    ConfigMaps,
    /// LimitRanges and ResourceQuotas: in place before any Pod is admitted.
    LimitRanges,
    /// Every other built-in type: RBAC, Services, workloads, …
    BuiltIn,
    /// Custom resources: their CRDs are established by now.
    CustomResources,
}

impl Tier {
    /// Every tier, in apply order.
    pub const ALL: [Tier; 14] = [
        Tier::CustomResourceDefinitions,
        Tier::Namespaces,
        Tier::StorageClasses,
        Tier::VolumeSnapshotClasses,
        Tier::VolumeSnapshotContents,
        Tier::VolumeSnapshots,
        Tier::PersistentVolumes,
        Tier::PersistentVolumeClaims,
        Tier::ServiceAccounts,
        Tier::Secrets,
        Tier::ConfigMaps,
        Tier::LimitRanges,
        Tier::BuiltIn,
        Tier::CustomResources,
    ];

    /// Its position in apply order, from 0.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// API groups Kubernetes serves itself: anything else is a custom resource.
const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// The tier of an object of `resource` in `group`; `crd_groups` are the groups the backup's
/// CRDs define (a custom resource is one of those, or of any group Kubernetes does not serve).
pub fn tier_of(group: &str, resource: &str, crd_groups: &BTreeSet<String>) -> Tier {
    match (group, resource) {
        ("apiextensions.k8s.io", "customresourcedefinitions") => Tier::CustomResourceDefinitions,
        ("", "namespaces") => Tier::Namespaces,
        ("storage.k8s.io", "storageclasses") => Tier::StorageClasses,
        ("snapshot.storage.k8s.io", "volumesnapshotclasses") => Tier::VolumeSnapshotClasses,
        ("snapshot.storage.k8s.io", "volumesnapshotcontents") => Tier::VolumeSnapshotContents,
        ("snapshot.storage.k8s.io", "volumesnapshots") => Tier::VolumeSnapshots,
        ("", "persistentvolumes") => Tier::PersistentVolumes,
        ("", "persistentvolumeclaims") => Tier::PersistentVolumeClaims,
        ("", "serviceaccounts") => Tier::ServiceAccounts,
        ("", "secrets") => Tier::Secrets,
        ("", "configmaps") => Tier::ConfigMaps,
        ("", "limitranges" | "resourcequotas") => Tier::LimitRanges,
        _ if crd_groups.contains(group) || !BUILT_IN_GROUPS.contains(&group) => Tier::CustomResources,
        _ => Tier::BuiltIn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_the_architecture_s_list() {
        let none = BTreeSet::new();
        let order = [
            ("apiextensions.k8s.io", "customresourcedefinitions"),
            ("", "namespaces"),
            ("storage.k8s.io", "storageclasses"),
            ("snapshot.storage.k8s.io", "volumesnapshotclasses"),
            ("snapshot.storage.k8s.io", "volumesnapshotcontents"),
            ("snapshot.storage.k8s.io", "volumesnapshots"),
            ("", "persistentvolumes"),
            ("", "persistentvolumeclaims"),
            ("", "serviceaccounts"),
            ("", "secrets"),
            ("", "configmaps"),
            ("", "limitranges"),
            ("apps", "deployments"),
            ("example.lifeboat.io", "widgets"),
        ];
        let tiers: Vec<Tier> = order.iter().map(|(g, r)| tier_of(g, r, &none)).collect();
        assert_eq!(tiers, Tier::ALL);
        assert!(tiers.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(tier_of("", "resourcequotas", &none), Tier::LimitRanges);
        assert_eq!(tier_of("rbac.authorization.k8s.io", "rolebindings", &none), Tier::BuiltIn);
        assert_eq!(Tier::CustomResources.index(), 13);
        assert_eq!(serde_json::to_value(Tier::BuiltIn).unwrap(), "builtIn");
    }

    #[test]
    fn groups_defined_by_archived_crds_are_custom_even_under_k8s_io() {
        let gateway = "gateway.networking.k8s.io";
        assert_eq!(tier_of(gateway, "httproutes", &BTreeSet::new()), Tier::CustomResources);
        let crds = BTreeSet::from(["policy".to_owned()]);
        assert_eq!(tier_of("policy", "poddisruptionbudgets", &crds), Tier::CustomResources);
        assert_eq!(tier_of("policy", "poddisruptionbudgets", &BTreeSet::new()), Tier::BuiltIn);
    }
}

//! What a backup takes: which resource types (discovery minus a justified skip list, filtered by
//! the policy), which namespaces (globs), and which cluster-scoped objects.

use std::collections::BTreeSet;

use serde_json::Value;

use super::policy::{ClusterScoped, Selection};
use super::resources::ApiResourceInfo;

/// Resource types never backed up, each with the reason. Velero skips most of these too.
pub const SKIPPED: &[(&str, &str)] = &[
    ("events", "records of what happened, expiring within an hour; stale after a restore"),
    ("events.events.k8s.io", "the same events through the events.k8s.io API"),
    (
        "endpoints",
        "derived from Services and Pods by the endpoints controller; restored ones would point at dead pod IPs",
    ),
    ("endpointslices.discovery.k8s.io", "derived from Services and Pods by the endpointslice controller"),
    (
        "leases.coordination.k8s.io",
        "leader election and node heartbeats; restored leases would stall controllers and nodes",
    ),
    ("nodes", "node-local: the kubelet registers the nodes that exist"),
    ("csinodes.storage.k8s.io", "node-local: CSI drivers register them for the nodes that exist"),
    ("volumeattachments.storage.k8s.io", "node-local attachment state, recreated by the CSI attacher"),
    ("componentstatuses", "computed on read, not stored (and deprecated)"),
    ("controllerrevisions.apps", "history derived by the DaemonSet and StatefulSet controllers"),
    (
        "certificatesigningrequests.certificates.k8s.io",
        "one-shot requests bound to the identities of nodes that existed",
    ),
    ("pods.metrics.k8s.io", "live metrics, not stored"),
    ("nodes.metrics.k8s.io", "live metrics, not stored"),
];

/// The label Lifeboat puts on what it creates (VolumeSnapshots): never backed up as objects,
/// they are recorded in the manifest's snapshot list instead.
pub const BACKUP_ID_LABEL: &str = "lifeboat.io/backup-id";

/// The reason `resource` is never backed up, if it is on the skip list.
pub fn skip_reason(resource: &ApiResourceInfo) -> Option<&'static str> {
    let name = resource.group_resource();
    SKIPPED.iter().find(|(n, _)| *n == name).map(|(_, why)| *why)
}

/// The resource types a backup lists, and those it passes over with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourcePlan {
    /// Namespaced types to list in each selected namespace.
    pub namespaced: Vec<ApiResourceInfo>,
    /// Cluster-scoped types to list whole (`clusterScoped: all`).
    pub cluster_scoped: Vec<ApiResourceInfo>,
    /// Types passed over, with the reason (for the manifest).
    pub skipped: Vec<(String, String)>,
}

fn matches_resource(filter: &str, r: &ApiResourceInfo) -> bool {
    let f = filter.to_ascii_lowercase();
    f == r.resource || f == r.group_resource() || f == r.kind.to_ascii_lowercase()
}

/// Plans which types to list from what discovery found.
pub fn plan_resources(discovered: &[ApiResourceInfo], selection: &Selection) -> ResourcePlan {
    let mut plan = ResourcePlan::default();
    for r in discovered {
        if r.resource.contains('/') {
            continue; // subresources are not objects
        }
        let skip = |plan: &mut ResourcePlan, why: &str| plan.skipped.push((r.group_resource(), why.to_owned()));
        if !(r.allows("list") && r.allows("get")) {
            continue; // create-only APIs (reviews, bindings): nothing to back up
        }
        if let Some(why) = skip_reason(r) {
            skip(&mut plan, why);
            continue;
        }
        let included = selection.include_resources.is_empty()
            || selection.include_resources.iter().any(|f| matches_resource(f, r));
        if !included || selection.exclude_resources.iter().any(|f| matches_resource(f, r)) {
            skip(&mut plan, "excluded by the policy's resource filter");
            continue;
        }
        if r.namespaced {
            plan.namespaced.push(r.clone());
        } else {
            match selection.cluster_scoped {
                ClusterScoped::All => plan.cluster_scoped.push(r.clone()),
                // Auto takes the objects the namespaced ones refer to, found after listing.
                ClusterScoped::Auto => {}
                ClusterScoped::None => skip(&mut plan, "cluster-scoped objects are excluded by the policy"),
            }
        }
    }
    plan.namespaced.sort_by_key(ApiResourceInfo::group_resource);
    plan.cluster_scoped.sort_by_key(ApiResourceInfo::group_resource);
    plan
}

/// Shell-style glob: `*` any run, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether a namespace is selected by the policy's include and exclude globs.
pub fn namespace_selected(name: &str, selection: &Selection) -> bool {
    let included =
        selection.include_namespaces.is_empty() || selection.include_namespaces.iter().any(|g| glob_match(g, name));
    included && !selection.exclude_namespaces.iter().any(|g| glob_match(g, name))
}

/// A cluster-scoped object a namespaced object needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterRef {
    /// `persistentvolumes`, `clusterroles.rbac.authorization.k8s.io`, …
    pub group_resource: String,
    /// Its name.
    pub name: String,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The cluster-scoped objects `object` (of type `resource`) needs restored with it.
pub fn cluster_references(resource: &ApiResourceInfo, object: &Value) -> Vec<ClusterRef> {
    let r = |gr: &str, name: &str| ClusterRef { group_resource: gr.to_owned(), name: name.to_owned() };
    let mut refs = Vec::new();
    match resource.group_resource().as_str() {
        "persistentvolumeclaims" => {
            if let Some(pv) = str_at(object, "/spec/volumeName") {
                refs.push(r("persistentvolumes", pv));
            }
            if let Some(sc) = str_at(object, "/spec/storageClassName") {
                refs.push(r("storageclasses.storage.k8s.io", sc));
            }
        }
        "rolebindings.rbac.authorization.k8s.io" => {
            if str_at(object, "/roleRef/kind") == Some("ClusterRole")
                && let Some(role) = str_at(object, "/roleRef/name")
            {
                refs.push(r("clusterroles.rbac.authorization.k8s.io", role));
            }
        }
        _ => {}
    }
    refs
}

/// The CRDs behind the custom resources found: `{resource}.{group}` of every listed type that a
/// CRD of that name serves.
pub fn crd_names(found: &BTreeSet<String>, crds: &BTreeSet<String>) -> Vec<ClusterRef> {
    found
        .iter()
        .filter(|gr| crds.contains(*gr))
        .map(|gr| ClusterRef {
            group_resource: "customresourcedefinitions.apiextensions.k8s.io".into(),
            name: gr.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(group: &str, resource: &str, namespaced: bool) -> ApiResourceInfo {
        ApiResourceInfo {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            kind: resource.trim_end_matches('s').into(),
            namespaced,
            verbs: vec!["list".into(), "get".into(), "create".into()],
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("payments-*", "payments-eu"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("payments-*", "payment"));
        assert!(glob_match("*-prod-*", "eu-prod-1"));
        assert!(!glob_match("kube-*", "default"));
    }

    #[test]
    fn namespaces_follow_include_then_exclude() {
        let sel = Selection {
            include_namespaces: vec!["team-*".into()],
            exclude_namespaces: vec!["team-scratch".into()],
            ..Selection::default()
        };
        assert!(namespace_selected("team-a", &sel));
        assert!(!namespace_selected("team-scratch", &sel));
        assert!(!namespace_selected("default", &sel));
        assert!(namespace_selected("anything", &Selection::default()));
    }

    #[test]
    fn the_plan_skips_derived_and_node_local_types_with_reasons() {
        let discovered = vec![
            res("", "pods", true),
            res("", "events", true),
            res("apps", "deployments", true),
            res("coordination.k8s.io", "leases", true),
            res("", "nodes", false),
            res("", "persistentvolumes", false),
            res("", "pods/log", true),
            ApiResourceInfo {
                verbs: vec!["create".into()],
                ..res("authorization.k8s.io", "subjectaccessreviews", false)
            },
        ];
        let plan = plan_resources(&discovered, &Selection::default());
        let names: Vec<_> = plan.namespaced.iter().map(ApiResourceInfo::group_resource).collect();
        assert_eq!(names, ["deployments.apps", "pods"]);
        assert!(plan.cluster_scoped.is_empty(), "auto mode lists no cluster-scoped type whole");
        let skipped: Vec<_> = plan.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(skipped, ["events", "leases.coordination.k8s.io", "nodes"]);
        let all = Selection { cluster_scoped: ClusterScoped::All, ..Selection::default() };
        let plan = plan_resources(&discovered, &all);
        assert_eq!(
            plan.cluster_scoped.iter().map(ApiResourceInfo::group_resource).collect::<Vec<_>>(),
            ["persistentvolumes"]
        );
    }

    #[test]
    fn resource_filters_accept_plural_group_resource_or_kind() {
        let discovered = vec![res("", "configmaps", true), res("", "secrets", true), res("apps", "deployments", true)];
        let sel = Selection { exclude_resources: vec!["secrets".into(), "Deployment".into()], ..Selection::default() };
        let plan = plan_resources(&discovered, &sel);
        assert_eq!(plan.namespaced.iter().map(|r| r.resource.as_str()).collect::<Vec<_>>(), ["configmaps"]);
    }

    #[test]
    fn references_of_pvcs_and_rolebindings() {
        let pvc = serde_json::json!({"spec": {"volumeName": "pv-1", "storageClassName": "managed-csi"}});
        let refs = cluster_references(&res("", "persistentvolumeclaims", true), &pvc);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0], ClusterRef { group_resource: "persistentvolumes".into(), name: "pv-1".into() });
        let rb = serde_json::json!({"roleRef": {"kind": "ClusterRole", "name": "view"}});
        let refs = cluster_references(&res("rbac.authorization.k8s.io", "rolebindings", true), &rb);
        assert_eq!(refs[0].name, "view");
        let rb_role = serde_json::json!({"roleRef": {"kind": "Role", "name": "local"}});
        assert!(cluster_references(&res("rbac.authorization.k8s.io", "rolebindings", true), &rb_role).is_empty());
    }
}

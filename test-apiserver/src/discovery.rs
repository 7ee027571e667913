//! Discovery documents: `/api`, `/api/v1`, `/apis`, `/apis/{group}`, `/apis/{group}/{version}`,
//! and aggregated discovery (`apidiscovery.k8s.io` `v2` and `v2beta1`), all generated from the
//! catalog so that built-ins match the embedded real documents and CRDs appear once established.

use serde_json::{Value, json};

use crate::catalog::{Catalog, GroupVersion, ResourceDef};

/// The discovery format a request's `Accept` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryFormat {
    /// Legacy per-group documents.
    Legacy,
    /// `APIGroupDiscoveryList` in `apidiscovery.k8s.io/<version>`.
    Aggregated(&'static str),
}

/// Picks the first media type in `accept` the server can produce (`None`: nothing acceptable).
pub fn negotiate(accept: Option<&str>) -> Option<DiscoveryFormat> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Some(DiscoveryFormat::Legacy) };
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |k: &str| params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        if !matches!(media, "application/json" | "application/*" | "*/*") {
            continue;
        }
        match (param("as"), param("g"), param("v")) {
            (None, _, _) => return Some(DiscoveryFormat::Legacy),
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                return Some(DiscoveryFormat::Aggregated("v2"));
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2beta1")) => {
                return Some(DiscoveryFormat::Aggregated("v2beta1"));
            }
            _ => continue,
        }
    }
    None
}

/// The Content-Type of an aggregated discovery answer.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

/// The `APIResourceList` of a group version.
pub fn resource_list(gv: &GroupVersion) -> Value {
    let mut entries: Vec<Value> = Vec::new();
    for r in &gv.resources {
        let mut e = json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                           "kind": r.kind, "verbs": r.verbs});
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        if let Some(h) = &r.storage_version_hash {
            e["storageVersionHash"] = json!(h);
        }
        entries.push(e);
        for s in &r.subresources {
            let mut e = json!({"name": format!("{}/{}", r.plural, s.name), "singularName": "",
                               "namespaced": r.namespaced, "kind": s.kind, "verbs": s.verbs});
            if let Some(g) = &s.group {
                e["group"] = json!(g);
            }
            if let Some(v) = &s.version {
                e["version"] = json!(v);
            }
            entries.push(e);
        }
    }
    entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let group_version = if gv.group.is_empty() { gv.version.clone() } else { format!("{}/{}", gv.group, gv.version) };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries})
}

fn group_entry(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    let preferred = vs.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": vs, "preferredVersion": preferred})
}

/// `/apis`.
pub fn group_list(cat: &Catalog) -> Value {
    let groups: Vec<Value> =
        cat.groups().iter().filter(|(g, _)| !g.is_empty()).map(|(g, vs)| group_entry(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn group(cat: &Catalog, name: &str) -> Option<Value> {
    let (_, vs) = cat.groups().into_iter().find(|(g, _)| g == name)?;
    let mut v = group_entry(name, &vs);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

fn aggregated_resource(r: &ResourceDef) -> Value {
    let mut e = json!({
        "resource": r.plural,
        "responseKind": {"group": "", "kind": r.kind, "version": ""},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|s| {
                json!({"subresource": s.name, "verbs": s.verbs, "responseKind": {
                    "group": s.group.clone().unwrap_or_default(),
                    "kind": s.kind,
                    "version": s.version.clone().unwrap_or_default()}})
            })
            .collect();
        e["subresources"] = Value::Array(subs);
    }
    e
}

/// `APIGroupDiscoveryList` for the core group (`core` = true, served at `/api`) or all named groups.
pub fn aggregated(cat: &Catalog, core: bool, version: &str) -> Value {
    let mut items = Vec::new();
    for (g, vs) in cat.groups() {
        if g.is_empty() != core {
            continue;
        }
        let versions: Vec<Value> = vs
            .iter()
            .filter_map(|v| cat.group_version(&g, v))
            .map(|gv| {
                let mut rs: Vec<&ResourceDef> = gv.resources.iter().collect();
                rs.sort_by(|a, b| a.plural.cmp(&b.plural));
                let resources: Vec<Value> = rs.into_iter().map(aggregated_resource).collect();
                json!({"version": gv.version, "resources": resources, "freshness": "Current"})
            })
            .collect();
        let mut meta = json!({"creationTimestamp": null});
        if !core {
            meta["name"] = json!(g);
        }
        items.push(json!({"metadata": meta, "versions": versions}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded(text: &str) -> Value {
        serde_json::from_str(text).expect("embedded document parses")
    }

    #[test]
    fn resource_lists_reproduce_the_real_documents() {
        let cat = Catalog::new(&[]);
        let docs = [
            ("", "v1", include_str!("../data/discovery/api__v1.json")),
            ("apps", "v1", include_str!("../data/discovery/apis__apps__v1.json")),
            ("batch", "v1", include_str!("../data/discovery/apis__batch__v1.json")),
            ("storage.k8s.io", "v1", include_str!("../data/discovery/apis__storage.k8s.io__v1.json")),
            (
                "rbac.authorization.k8s.io",
                "v1",
                include_str!("../data/discovery/apis__rbac.authorization.k8s.io__v1.json"),
            ),
        ];
        for (g, v, text) in docs {
            let mut real = embedded(text);
            real["apiVersion"] = json!("v1");
            let ours = resource_list(cat.group_version(g, v).expect("served"));
            assert_eq!(ours, real, "{g}/{v}");
        }
    }

    #[test]
    fn aggregated_groups_match_the_real_document() {
        let real = embedded(include_str!("../data/discovery/aggregated_v2.json"));
        let ours = aggregated(&Catalog::new(&[]), false, "v2");
        for name in ["apps", "batch", "rbac.authorization.k8s.io", "apiextensions.k8s.io"] {
            let find = |doc: &Value| {
                doc["items"].as_array().and_then(|items| items.iter().find(|i| i["metadata"]["name"] == name).cloned())
            };
            let (r, o) = (find(&real).expect("real has group"), find(&ours).expect("we serve group"));
            assert_eq!(o["versions"][0]["resources"], r["versions"][0]["resources"], "{name}");
        }
    }

    #[test]
    fn negotiation_prefers_the_first_acceptable_type() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(Some(kubectl)), Some(DiscoveryFormat::Aggregated("v2")));
        assert_eq!(
            negotiate(Some(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            )),
            Some(DiscoveryFormat::Aggregated("v2beta1"))
        );
        assert_eq!(negotiate(Some("application/json")), Some(DiscoveryFormat::Legacy));
        assert_eq!(negotiate(None), Some(DiscoveryFormat::Legacy));
        assert_eq!(negotiate(Some("application/vnd.kubernetes.protobuf")), None);
    }
}

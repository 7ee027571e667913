//! The served resources: the built-in ones, read from real `APIResourceList` documents embedded
//! in the crate (see `data/README.md`), plus those of established CustomResourceDefinitions.

use std::sync::OnceLock;

use serde_json::Value;

/// The embedded built-in `APIResourceList` documents, one per served group version.
const BUILTIN: &[&str] = &[
    include_str!("../data/discovery/api__v1.json"),
    include_str!("../data/discovery/apis__apps__v1.json"),
    include_str!("../data/discovery/apis__autoscaling__v2.json"),
    include_str!("../data/discovery/apis__batch__v1.json"),
    include_str!("../data/discovery/apis__networking.k8s.io__v1.json"),
    include_str!("../data/discovery/apis__rbac.authorization.k8s.io__v1.json"),
    include_str!("../data/discovery/apis__storage.k8s.io__v1.json"),
    include_str!("../data/discovery/apis__apiextensions.k8s.io__v1.json"),
];

/// A subresource such as `status` or `scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubresourceDef {
    /// `status`, `scale`, ...
    pub name: String,
    /// Kind returned by the subresource.
    pub kind: String,
    /// Group of that kind when it differs from the parent's.
    pub group: Option<String>,
    /// Version of that kind when it differs from the parent's.
    pub version: Option<String>,
    /// Allowed verbs.
    pub verbs: Vec<String>,
}

/// One served resource in one group version.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDef {
    /// API group (`""` for core).
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `deployments`.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Allowed verbs on the resource itself.
    pub verbs: Vec<String>,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Subresources.
    pub subresources: Vec<SubresourceDef>,
    /// `storageVersionHash`, when the source document has one.
    pub storage_version_hash: Option<String>,
    /// Whether a CustomResourceDefinition defines it.
    pub custom: bool,
    /// The CRD version's `openAPIV3Schema` (custom resources only).
    pub schema: Option<Value>,
}

impl ResourceDef {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
    /// Whether `verb` is allowed on the resource.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
    /// The named subresource.
    pub fn subresource(&self, name: &str) -> Option<&SubresourceDef> {
        self.subresources.iter().find(|s| s.name == name)
    }
    /// Whether the resource has a `status` subresource (status is then written only through it).
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }
}

/// A served group version with its resources.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupVersion {
    /// API group (`""` for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Resources, in document order.
    pub resources: Vec<ResourceDef>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Parses an `APIResourceList` into a group version.
pub(crate) fn parse_resource_list(doc: &Value) -> Option<GroupVersion> {
    let gv = doc.get("groupVersion")?.as_str()?;
    let (group, version) = match gv.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), gv.to_string()),
    };
    let mut resources: Vec<ResourceDef> = Vec::new();
    for r in doc.get("resources")?.as_array()? {
        let name = str_of(r, "name");
        if let Some((parent, sub)) = name.split_once('/') {
            let def = SubresourceDef {
                name: sub.to_string(),
                kind: str_of(r, "kind"),
                group: r.get("group").and_then(Value::as_str).map(String::from),
                version: r.get("version").and_then(Value::as_str).map(String::from),
                verbs: strings(&r["verbs"]),
            };
            if let Some(p) = resources.iter_mut().find(|p| p.plural == parent) {
                p.subresources.push(def);
            }
            continue;
        }
        resources.push(ResourceDef {
            group: group.clone(),
            version: version.clone(),
            plural: name,
            singular: str_of(r, "singularName"),
            kind: str_of(r, "kind"),
            namespaced: r.get("namespaced").and_then(Value::as_bool).unwrap_or(false),
            verbs: strings(&r["verbs"]),
            short_names: strings(&r["shortNames"]),
            categories: strings(&r["categories"]),
            subresources: Vec::new(),
            storage_version_hash: r.get("storageVersionHash").and_then(Value::as_str).map(String::from),
            custom: false,
            schema: None,
        });
    }
    Some(GroupVersion { group, version, resources })
}

/// The built-in group versions, parsed once.
pub fn builtin() -> &'static [GroupVersion] {
    static CELL: OnceLock<Vec<GroupVersion>> = OnceLock::new();
    CELL.get_or_init(|| {
        BUILTIN
            .iter()
            .filter_map(|text| serde_json::from_str::<Value>(text).ok())
            .filter_map(|doc| parse_resource_list(&doc))
            .collect()
    })
}

/// The verbs every custom resource supports.
const CUSTOM_VERBS: &[&str] = &["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"];

/// The group versions an established CRD serves.
pub(crate) fn from_crd(crd: &Value) -> Vec<GroupVersion> {
    let spec = &crd["spec"];
    let group = str_of(spec, "group");
    let names = &spec["names"];
    let namespaced = spec["scope"].as_str() == Some("Namespaced");
    let mut out = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"].as_bool() != Some(true) {
            continue;
        }
        let version = str_of(v, "name");
        let mut subresources = Vec::new();
        if v["subresources"].get("status").is_some() {
            subresources.push(SubresourceDef {
                name: "status".into(),
                kind: str_of(names, "kind"),
                group: None,
                version: None,
                verbs: vec!["get".into(), "patch".into(), "update".into()],
            });
        }
        if v["subresources"].get("scale").is_some() {
            subresources.push(SubresourceDef {
                name: "scale".into(),
                kind: "Scale".into(),
                group: Some("autoscaling".into()),
                version: Some("v1".into()),
                verbs: vec!["get".into(), "patch".into(), "update".into()],
            });
        }
        let plural = str_of(names, "plural");
        let singular =
            names["singular"].as_str().map(String::from).unwrap_or_else(|| str_of(names, "kind").to_lowercase());
        out.push(GroupVersion {
            group: group.clone(),
            version: version.clone(),
            resources: vec![ResourceDef {
                group: group.clone(),
                version,
                plural,
                singular,
                kind: str_of(names, "kind"),
                namespaced,
                verbs: CUSTOM_VERBS.iter().map(|s| s.to_string()).collect(),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                subresources,
                storage_version_hash: None,
                custom: true,
                schema: v["schema"].get("openAPIV3Schema").cloned(),
            }],
        });
    }
    out
}

/// Everything served right now: built-ins, then CRD group versions merged by group version.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Served group versions.
    pub versions: Vec<GroupVersion>,
}

impl Catalog {
    /// The catalog for the given established CRDs.
    pub fn new(crds: &[Value]) -> Self {
        let mut versions: Vec<GroupVersion> = builtin().to_vec();
        for crd in crds {
            for gv in from_crd(crd) {
                match versions.iter_mut().find(|x| x.group == gv.group && x.version == gv.version) {
                    Some(existing) => existing.resources.extend(gv.resources),
                    None => versions.push(gv),
                }
            }
        }
        Self { versions }
    }

    /// The resource at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.group_version(group, version)?.resources.iter().find(|r| r.plural == plural)
    }

    /// The served group version.
    pub fn group_version(&self, group: &str, version: &str) -> Option<&GroupVersion> {
        self.versions.iter().find(|gv| gv.group == group && gv.version == version)
    }

    /// The resource for an `apiVersion` and `kind`.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceDef> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.group_version(group, version)?.resources.iter().find(|r| r.kind == kind)
    }

    /// Any served version of `group/plural` (the store keeps one copy across versions).
    pub fn find_any_version(&self, group: &str, plural: &str) -> Option<&ResourceDef> {
        self.versions
            .iter()
            .filter(|gv| gv.group == group)
            .flat_map(|gv| gv.resources.iter())
            .find(|r| r.plural == plural)
    }

    /// Served groups in discovery order, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for gv in &self.versions {
            match out.iter_mut().find(|(g, _)| *g == gv.group) {
                Some((_, vs)) => vs.push(gv.version.clone()),
                None => out.push((gv.group.clone(), vec![gv.version.clone()])),
            }
        }
        for (_, vs) in &mut out {
            vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out
    }
}

/// Kubernetes version priority: GA > beta > alpha, then higher numbers first.
pub(crate) fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else { return (0, 0, 0) };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (stage, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (stage, major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_with_subresources() {
        let cat = Catalog::new(&[]);
        let deploy = cat.find("apps", "v1", "deployments").expect("deployments served");
        assert_eq!(deploy.kind, "Deployment");
        assert!(deploy.namespaced && deploy.has_status());
        assert_eq!(deploy.subresource("scale").and_then(|s| s.group.clone()).as_deref(), Some("autoscaling"));
        let ns = cat.find("", "v1", "namespaces").expect("namespaces served");
        assert!(!ns.allows("deletecollection"));
        assert_eq!(cat.find_kind("rbac.authorization.k8s.io/v1", "Role").map(|r| r.plural.as_str()), Some("roles"));
    }

    #[test]
    fn versions_sort_by_kubernetes_priority() {
        let mut v = vec!["v1beta1", "v1alpha1", "v2", "v1", "v2beta2"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v2", "v1", "v2beta2", "v1beta1", "v1alpha1"]);
    }
}

//! Namespace mapping applied to an object's body, and the Namespace objects generated for
//! target namespaces the archive does not hold.

use serde_json::{Map, Value, json};

use super::filter::Filters;

/// The label the API server sets on every Namespace to its name.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Points `object` at its target namespace: `metadata.namespace` for namespaced objects, the
/// name (and its name label) for a Namespace, and the subjects of RoleBindings and
/// ClusterRoleBindings whose namespace is mapped (as Velero does).
pub(super) fn retarget(object: &mut Value, group: &str, resource: &str, namespace: Option<&str>, filters: &Filters) {
    if let Some(ns) = namespace
        && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("namespace".into(), Value::String(filters.target(ns).to_owned()));
    }
    match (group, resource) {
        ("", "namespaces") => rename_namespace(object, filters),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => map_subjects(object, filters),
        _ => {}
    }
}

fn rename_namespace(object: &mut Value, filters: &Filters) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let Some(source) = meta.get("name").and_then(Value::as_str).map(str::to_owned) else { return };
    let target = filters.target(&source).to_owned();
    if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut)
        && labels.contains_key(NAME_LABEL)
    {
        labels.insert(NAME_LABEL.into(), Value::String(target.clone()));
    }
    meta.insert("name".into(), Value::String(target));
}

fn map_subjects(object: &mut Value, filters: &Filters) {
    for subject in object.get_mut("subjects").and_then(Value::as_array_mut).into_iter().flatten() {
        let Some(s) = subject.as_object_mut() else { continue };
        if let Some(ns) = s.get("namespace").and_then(Value::as_str) {
            let target = filters.target(ns).to_owned();
            s.insert("namespace".into(), Value::String(target));
        }
    }
}

/// A Namespace to create for a target namespace the archive does not hold.
pub(super) fn generated(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": Map::new()}})
}

//! Admission and validation the real server applies to every write: name and label rules,
//! namespace lifecycle, CustomResourceDefinition checks, and create-time defaults.

use serde_json::{Value, json};

use crate::catalog::ResourceDef;
use crate::meta::{self, meta_str};
use crate::selectors::validate_key;
use crate::status::{ApiError, Cause};
use crate::storage::{GroupResource, Inner, ObjectKey};

/// Validates the object's name, labels and (for CRDs) spec.
pub(crate) fn validate_object(def: &ResourceDef, obj: &Value, name: &str) -> Result<(), ApiError> {
    let mut causes = meta::validate_name(meta::name_rule(&def.group, &def.plural), name, "metadata.name");
    if let Some(labels) = obj["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            if validate_key(k).is_err() {
                causes.push(Cause::invalid("metadata.labels", k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
            }
            let value = v.as_str().unwrap_or_default();
            let ok = value.is_empty()
                || (value.len() <= 63
                    && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    && value.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
            if !ok {
                causes.push(Cause::invalid("metadata.labels", value, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
            }
        }
    }
    if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
        causes.extend(validate_crd(obj, name));
    }
    if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid(&def.group, &def.kind, name, &causes)) }
}

fn validate_crd(obj: &Value, name: &str) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut causes = Vec::new();
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    if group.is_empty() {
        causes.push(Cause::required("spec.group", ""));
    } else if !group.contains('.') {
        causes.push(Cause::invalid("spec.group", group, "should be a domain with at least one dot"));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural", ""));
    }
    if spec["names"]["kind"].as_str().unwrap_or_default().is_empty() {
        causes.push(Cause::required("spec.names.kind", ""));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group"));
    }
    match spec["scope"].as_str() {
        Some("Namespaced" | "Cluster") => {}
        Some(other) => causes.push(Cause::unsupported("spec.scope", other, &["Cluster", "Namespaced"])),
        None => causes.push(Cause::required("spec.scope", "")),
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::invalid("spec.versions", "null", "must have exactly one version marked as storage version"));
    } else if versions.iter().filter(|v| v["storage"].as_bool() == Some(true)).count() != 1 {
        causes.push(Cause::invalid("spec.versions", "", "must have exactly one version marked as storage version"));
    }
    causes
}

/// Objects go only into namespaces that exist and are not terminating (NamespaceLifecycle).
pub(crate) fn check_namespace_open(state: &Inner, def: &ResourceDef, ns: &str, name: &str) -> Result<(), ApiError> {
    if ns.is_empty() {
        let c = Cause::required("metadata.namespace", "");
        return Err(ApiError::invalid(&def.group, &def.kind, name, &[c]));
    }
    let Some(nsobj) = state.get(&GroupResource::new("", "namespaces"), &ObjectKey::new("", ns)) else {
        return Err(ApiError::not_found("", "namespaces", ns));
    };
    if !meta_str(nsobj, "deletionTimestamp").is_empty() {
        let why = format!("unable to create new content in namespace {ns} because it is being terminated");
        let mut e = ApiError::forbidden(&def.group, &def.plural, name, &why);
        if let Some(d) = e.details.as_mut().and_then(Value::as_object_mut) {
            d.insert(
                "causes".into(),
                json!([{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]),
            );
        }
        return Err(e);
    }
    Ok(())
}

/// Fields the real server sets on create for the built-in types we serve.
pub(crate) fn defaults_on_create(def: &ResourceDef, obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            o.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
            o.insert("status".into(), json!({"phase": "Active"}));
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                let name = m.get("name").cloned().unwrap_or(Value::Null);
                let labels = m.entry("labels").or_insert_with(|| json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), name);
                }
            }
        }
        ("", "pods") => {
            o.insert("status".into(), json!({"phase": "Pending", "qosClass": "BestEffort"}));
        }
        ("", "persistentvolumeclaims") => {
            o.insert("status".into(), json!({"phase": "Pending"}));
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                mirror_data_source(spec);
            }
        }
        ("", "persistentvolumes") => {
            o.insert("status".into(), json!({"phase": "Pending"}));
        }
        ("", "services") => {
            let spec = o.entry("spec").or_insert_with(|| json!({}));
            if let Some(s) = spec.as_object_mut() {
                s.entry("type").or_insert_with(|| json!("ClusterIP"));
                s.entry("sessionAffinity").or_insert_with(|| json!("None"));
            }
        }
        ("", "secrets") => {
            o.entry("type").or_insert_with(|| json!("Opaque"));
        }
        _ => {}
    }
}

/// A claim's `dataSource` and `dataSourceRef` are kept equal when only one is given (the real
/// server's `NormalizeDataSources`; a `dataSourceRef` into another namespace is not mirrored).
pub(crate) fn mirror_data_source(spec: &mut serde_json::Map<String, Value>) {
    let source = spec.get("dataSource").filter(|v| v.is_object()).cloned();
    let reference = spec.get("dataSourceRef").filter(|v| v.is_object()).cloned();
    match (source, reference) {
        (Some(s), None) => {
            spec.insert("dataSourceRef".into(), s);
        }
        (None, Some(r)) if r["namespace"].as_str().is_none_or(str::is_empty) => {
            let mut s = r;
            if let Some(m) = s.as_object_mut() {
                m.remove("namespace");
            }
            spec.insert("dataSource".into(), s);
        }
        _ => {}
    }
}

/// Whether an object marked for deletion has no finalizers left (and so goes away).
pub(crate) fn deletion_complete(gr: &GroupResource, obj: &Value) -> bool {
    if meta_str(obj, "deletionTimestamp").is_empty() {
        return false;
    }
    let empty = |v: &Value| v.as_array().is_none_or(Vec::is_empty);
    let spec_done = !(gr.group.is_empty() && gr.resource == "namespaces") || empty(&obj["spec"]["finalizers"]);
    empty(&obj["metadata"]["finalizers"]) && spec_done
}

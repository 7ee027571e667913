//! Fields the real server refuses to change on update, with its messages: a claim's spec (but
//! for `resources.requests`, and `volumeName` while unset), a workload's `spec.selector`, a
//! StatefulSet's spec but for the fields it may change, and a Job's selector and template.
//! A restore with conflict policy `update` meets these on a live cluster.

use serde_json::Value;

use crate::catalog::ResourceDef;
use crate::status::{ApiError, Cause};

const STS_MUTABLE: [&str; 6] =
    ["replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds"];

fn without(spec: &Value, keys: &[&str]) -> Value {
    let mut v = spec.clone();
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

fn immutable_field(field: &str, value: &Value) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        field: field.into(),
        message: format!("Invalid value: {value}: field is immutable"),
    }
}

/// The causes for which `new` may not replace `old` (empty: allowed).
fn causes(def: &ResourceDef, old: &Value, new: &Value) -> Vec<Cause> {
    let (o, n) = (&old["spec"], &new["spec"]);
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "persistentvolumeclaims") => {
            let mut allowed = vec!["resources", "volumeAttributesClassName"];
            if o["volumeName"].as_str().is_none_or(str::is_empty) {
                allowed.push("volumeName");
            }
            let resources_rest = |v: &Value| {
                let mut r = v["resources"].clone();
                if let Some(m) = r.as_object_mut() {
                    m.remove("requests");
                }
                r
            };
            if without(o, &allowed) != without(n, &allowed) || resources_rest(o) != resources_rest(n) {
                return vec![Cause::forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                )];
            }
            Vec::new()
        }
        ("apps", "statefulsets") => {
            if without(o, &STS_MUTABLE) != without(n, &STS_MUTABLE) {
                return vec![Cause::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                )];
            }
            Vec::new()
        }
        ("apps", "deployments" | "daemonsets" | "replicasets") if o["selector"] != n["selector"] => {
            vec![immutable_field("spec.selector", &n["selector"])]
        }
        ("batch", "jobs") => {
            let mut out = Vec::new();
            if o["selector"] != n["selector"] {
                out.push(immutable_field("spec.selector", &n["selector"]));
            }
            if o["template"] != n["template"] {
                out.push(immutable_field("spec.template", &n["template"]));
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Refuses an update that changes an immutable field, as the real server does (422 `Invalid`).
pub(crate) fn check(def: &ResourceDef, old: &Value, new: &Value, name: &str) -> Result<(), ApiError> {
    let causes = causes(def, old, new);
    if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid(&def.group, &def.kind, name, &causes)) }
}

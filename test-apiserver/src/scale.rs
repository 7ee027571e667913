//! The `scale` subresource (`autoscaling/v1` `Scale`) of Deployments, ReplicaSets,
//! StatefulSets, ReplicationControllers and custom resources that declare it.

use serde_json::{Value, json};

use crate::catalog::ResourceDef;
use crate::meta::meta_str;
use crate::patch::{json_patch, merge_patch};
use crate::patch_write::PatchType;
use crate::status::ApiError;
use crate::store::{Store, WriteOptions};

/// JSON paths (dotted) of replicas and selector for a resource.
fn paths(def: &ResourceDef) -> (&'static str, &'static str, &'static str) {
    if def.custom {
        // The CRD declares the paths; the conventional ones are assumed.
        return ("spec.replicas", "status.replicas", "status.selector");
    }
    ("spec.replicas", "status.replicas", "spec.selector")
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |cur, p| &cur[p])
}

fn selector_string(sel: &Value) -> String {
    if let Some(s) = sel.as_str() {
        return s.to_string();
    }
    let labels = sel.get("matchLabels").unwrap_or(sel);
    let mut parts: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    parts.sort();
    parts.join(",")
}

/// The `Scale` view of an object.
pub(crate) fn to_scale(def: &ResourceDef, obj: &Value) -> Value {
    let (spec, status, selector) = paths(def);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta_str(obj, "name"), "namespace": meta_str(obj, "namespace"), "uid": meta_str(obj, "uid"),
            "resourceVersion": meta_str(obj, "resourceVersion"), "creationTimestamp": obj["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": at(obj, spec).as_i64().unwrap_or(1)},
        "status": {"replicas": at(obj, status).as_i64().unwrap_or(0), "selector": selector_string(at(obj, selector))},
    })
}

fn replicas_of(scale: &Value) -> Result<i64, ApiError> {
    let n = scale["spec"]["replicas"].as_i64().unwrap_or(0);
    if n < 0 {
        let c = crate::status::Cause::invalid("spec.replicas", &n.to_string(), "must be greater than or equal to 0");
        return Err(ApiError::invalid("autoscaling", "Scale", meta_str(scale, "name"), &[c]));
    }
    Ok(n)
}

impl Store {
    /// Reads the `Scale` of an object.
    ///
    /// # Errors
    /// 404 when absent.
    pub(crate) fn get_scale(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.get_in(def, ns, name).map(|o| to_scale(def, &o))
    }

    /// Replaces (`patch` = `None`) or patches the `Scale` of an object and writes its replicas.
    ///
    /// # Errors
    /// 404 when absent, 409 on a stale resourceVersion, 422 for negative replicas.
    pub(crate) fn write_scale(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        body: Value,
        patch: Option<PatchType>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let live = self.get_in(def, ns, name)?;
        let current = to_scale(def, &live);
        let scale = match patch {
            None => body,
            Some(PatchType::Json) => json_patch(&current, &body)?,
            Some(_) => merge_patch(&current, &body),
        };
        let replicas = replicas_of(&scale)?;
        let mut obj = live;
        let rv = meta_str(&scale, "resourceVersion").to_string();
        obj["metadata"]["resourceVersion"] = json!(rv);
        obj["spec"]["replicas"] = json!(replicas);
        let written = self.update_in(def, ns, name, obj, opts, None)?;
        Ok(to_scale(def, &written))
    }
}

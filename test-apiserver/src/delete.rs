//! Delete and deletecollection: preconditions, propagation policy, finalizers (objects with
//! finalizers get a `deletionTimestamp` and stay until the last one is removed), and namespace
//! and CRD termination, finished by the controllers.

use serde_json::{Value, json};

use crate::admission::deletion_complete;
use crate::catalog::ResourceDef;
use crate::list::ListOptions;
use crate::meta::{self, meta_str};
use crate::status::{ApiError, Cause};
use crate::storage::{ObjectKey, Tx};
use crate::store::{Store, gr_of, present};

/// The finalizer the apiextensions server puts on a CRD being deleted.
pub(crate) const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// `DeleteOptions` from the body and query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `propagationPolicy`: `Orphan`, `Background` (default) or `Foreground`.
    pub propagation: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads the options from a `DeleteOptions` body (may be empty) and query parameters.
    ///
    /// # Errors
    /// 400 for a malformed body, 422 for an unknown propagation policy.
    pub fn parse(body: &[u8], query: &std::collections::BTreeMap<String, String>) -> Result<Self, ApiError> {
        let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
        };
        let s = |x: &Value| x.as_str().filter(|s| !s.is_empty()).map(String::from);
        let orphan = v["orphanDependents"].as_bool().or_else(|| query.get("orphanDependents").map(|s| s == "true"));
        let propagation = s(&v["propagationPolicy"])
            .or_else(|| query.get("propagationPolicy").cloned())
            .or_else(|| (orphan == Some(true)).then(|| "Orphan".to_string()));
        if let Some(p) = &propagation
            && !["Orphan", "Background", "Foreground"].contains(&p.as_str())
        {
            let c = Cause::unsupported("propagationPolicy", p, &["Foreground", "Background", "Orphan", "nil"]);
            return Err(ApiError::invalid("meta.k8s.io", "DeleteOptions", "", &[c]));
        }
        let dry_run = v["dryRun"].as_array().is_some_and(|a| !a.is_empty()) || query.contains_key("dryRun");
        Ok(Self {
            propagation,
            uid: s(&v["preconditions"]["uid"]),
            resource_version: s(&v["preconditions"]["resourceVersion"]),
            dry_run,
        })
    }
}

/// Pods, services, custom resources and objects that stay for finalizers are returned whole;
/// other resources answer a `Success` Status, as the real registries do.
fn returns_object(def: &ResourceDef) -> bool {
    def.custom || (def.group.is_empty() && matches!(def.plural.as_str(), "pods" | "services" | "namespaces"))
}

fn success_status(def: &ResourceDef, obj: &Value) -> Value {
    let mut details = json!({"name": meta_str(obj, "name"), "kind": def.plural, "uid": meta_str(obj, "uid")});
    if !def.group.is_empty() {
        details["group"] = json!(def.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

impl Store {
    /// Deletes one object.
    ///
    /// # Errors
    /// 404 when absent, 409 when a precondition fails.
    pub(crate) fn delete_in(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let (obj, gone) = self.storage.write(|tx| delete_locked(tx, def, ns, name, opts))?;
        if gone && !returns_object(def) {
            return Ok(success_status(def, &obj));
        }
        Ok(present(def, obj))
    }

    /// Deletes every object a list with `list` options would return; answers the deleted items.
    ///
    /// # Errors
    /// As list and delete.
    pub(crate) fn delete_collection_in(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let mut listed = self.list_in(def, ns, &ListOptions { limit: 0, continue_token: None, ..list.clone() })?;
        let items = listed["items"].as_array().cloned().unwrap_or_default();
        let mut deleted = Vec::new();
        for item in items {
            let (ins, iname) = (meta_str(&item, "namespace").to_string(), meta_str(&item, "name").to_string());
            match self.storage.write(|tx| delete_locked(tx, def, &ins, &iname, opts)) {
                Ok((obj, _)) => deleted.push(obj),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        listed["items"] = Value::Array(deleted);
        Ok(listed)
    }
}

fn precondition_failed(def: &ResourceDef, name: &str, what: &str, want: &str, have: &str) -> ApiError {
    let why = format!("Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}");
    ApiError::conflict(&def.group, &def.plural, name, &why)
}

/// Returns the object and whether it is gone (rather than marked for deletion).
fn delete_locked(
    tx: &mut Tx<'_>,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<(Value, bool), ApiError> {
    let gr = gr_of(def);
    let key = ObjectKey::new(if def.namespaced { ns } else { "" }, name);
    let mut obj =
        tx.state().get(&gr, &key).cloned().ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
    if let Some(uid) = &opts.uid
        && uid != meta_str(&obj, "uid")
    {
        return Err(precondition_failed(def, name, "UID", uid, meta_str(&obj, "uid")));
    }
    if let Some(rv) = &opts.resource_version
        && rv != meta_str(&obj, "resourceVersion")
    {
        return Err(precondition_failed(def, name, "ResourceVersion", rv, meta_str(&obj, "resourceVersion")));
    }
    if opts.dry_run {
        return Ok((obj, true));
    }
    let is_crd = def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions";
    let is_ns = def.group.is_empty() && def.plural == "namespaces";
    if is_crd && let Some(m) = meta::meta_mut(&mut obj) {
        let list = m.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(a) = list.as_array_mut()
            && !a.iter().any(|f| f == CRD_CLEANUP_FINALIZER)
        {
            a.push(json!(CRD_CLEANUP_FINALIZER));
        }
    }
    let has_finalizers = obj["metadata"]["finalizers"].as_array().is_some_and(|a| !a.is_empty())
        || (is_ns && obj["spec"]["finalizers"].as_array().is_some_and(|a| !a.is_empty()));
    if has_finalizers {
        if !meta_str(&obj, "deletionTimestamp").is_empty() {
            return Ok((obj, false));
        }
        if let Some(m) = meta::meta_mut(&mut obj) {
            m.insert("deletionTimestamp".into(), json!(meta::now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        if is_ns {
            obj["status"]["phase"] = json!("Terminating");
        }
        if is_crd {
            mark_crd_terminating(&mut obj);
        }
        if deletion_complete(&gr, &obj) {
            return Ok((tx.remove(&gr, &key).unwrap_or(obj), true));
        }
        return Ok((tx.put(&gr, &key, obj), false));
    }
    if opts.propagation.as_deref() == Some("Orphan") {
        orphan_dependents(tx, meta_str(&obj, "uid"));
    }
    Ok((tx.remove(&gr, &key).unwrap_or(obj), true))
}

fn mark_crd_terminating(obj: &mut Value) {
    let cond = json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionPending",
        "message": "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        "lastTransitionTime": meta::now()});
    let conds = obj["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "Terminating").collect();
    conds.push(cond);
    obj["status"]["conditions"] = Value::Array(conds);
}

/// Removes owner references to `uid` from every object (the `Orphan` policy).
fn orphan_dependents(tx: &mut Tx<'_>, uid: &str) {
    let mut changes = Vec::new();
    for gr in tx.state().resources() {
        let Ok(objects) = tx.state().objects_at(&gr, None) else { continue };
        for (key, obj) in objects {
            let Some(refs) = obj["metadata"]["ownerReferences"].as_array() else { continue };
            if refs.iter().any(|r| r["uid"] == uid) {
                let mut o = obj.clone();
                let kept: Vec<Value> = refs.iter().filter(|r| r["uid"] != uid).cloned().collect();
                o["metadata"]["ownerReferences"] = Value::Array(kept);
                changes.push((gr.clone(), key, o));
            }
        }
    }
    for (gr, key, o) in changes {
        tx.put(&gr, &key, o);
    }
}

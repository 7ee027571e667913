//! Create, update (`PUT`) and the shared rules they apply: type and name checks, namespace
//! admission, status handling, generation, no-op detection and managedFields.

use serde_json::{Value, json};

use crate::admission;
use crate::catalog::ResourceDef;
use crate::meta::{self, meta_str};
use crate::status::{ApiError, Cause};
use crate::storage::{ObjectKey, Tx};
use crate::store::{Store, WriteOptions, gr_of, present};

/// Checks `apiVersion` and `kind` of a request body against the URL, filling them when absent.
pub(crate) fn check_type(def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    let Some(o) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): json: cannot unmarshal into Go value of type map[string]interface {{}}",
            def.kind
        )));
    };
    let api_version = o.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
    let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    if !api_version.is_empty() && api_version != def.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    if !kind.is_empty() && kind != def.kind {
        let name = o.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or_default();
        if def.custom {
            let cause = Cause::invalid("kind", &kind, &format!("must be {}", def.kind));
            return Err(ApiError::invalid(&def.group, &kind, name, &[cause]));
        }
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{}\" cannot be handled as a {}: the kind in the data ({kind}) does not match the expected kind ({})",
            def.version, def.kind, def.kind
        )));
    }
    o.insert("apiVersion".into(), json!(def.api_version()));
    o.insert("kind".into(), json!(def.kind));
    Ok(())
}

/// Checks the body's namespace against the URL's, filling it (namespaced) or clearing it.
fn check_namespace(def: &ResourceDef, obj: &mut Value, ns: &str) -> Result<(), ApiError> {
    let Some(m) = meta::meta_mut(obj) else { return Ok(()) };
    let body_ns = m.get("namespace").and_then(Value::as_str).unwrap_or_default().to_string();
    if !def.namespaced {
        m.remove("namespace");
        return Ok(());
    }
    if !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    m.insert("namespace".into(), json!(ns));
    Ok(())
}

/// Everything but metadata and status: a change here bumps `generation`.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            o.remove(k);
        }
    }
    v
}

/// Custom resources and the workload/API objects with a spec-status split track `generation`;
/// core objects (namespaces, pods, services, volumes) do not.
fn tracks_generation(def: &ResourceDef) -> bool {
    def.custom || (def.has_status() && (!def.group.is_empty() || def.plural == "replicationcontrollers"))
}

/// Two objects equal but for resourceVersion and managedFields (an update that changes nothing
/// is not written, as the real server).
fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = meta::meta_mut(&mut v) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(a) == strip(b)
}

impl Store {
    /// Creates an object in `ns` (ignored for cluster-scoped resources).
    ///
    /// # Errors
    /// 400 for type mismatches, 404 for a missing namespace, 403 for a terminating one,
    /// 409 for a duplicate name, 422 for invalid names or labels.
    pub(crate) fn create_in(
        &self,
        def: &ResourceDef,
        ns: &str,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        check_type(def, &mut obj)?;
        check_namespace(def, &mut obj, ns)?;
        crate::pruning::apply(&mut obj, def.schema.as_ref(), opts.strict)?;
        let manager = meta::manager_name(opts.field_manager.as_deref(), opts.user_agent.as_deref());
        self.storage.write(|tx| create_locked(tx, def, obj, &manager, "Update", opts.dry_run)).map(|o| present(def, o))
    }

    /// Replaces an object, or with `sub` = `status` only its status.
    ///
    /// # Errors
    /// 400 for mismatched type, name or namespace, 404 when absent, 409 on a stale resourceVersion.
    pub(crate) fn update_in(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        mut obj: Value,
        opts: &WriteOptions,
        sub: Option<&str>,
    ) -> Result<Value, ApiError> {
        check_type(def, &mut obj)?;
        check_namespace(def, &mut obj, if def.namespaced { ns } else { "" })?;
        crate::pruning::apply(&mut obj, def.schema.as_ref(), opts.strict)?;
        let manager = meta::manager_name(opts.field_manager.as_deref(), opts.user_agent.as_deref());
        self.storage
            .write(|tx| update_locked(tx, def, ns, name, obj, &manager, "Update", sub, opts.dry_run))
            .map(|o| present(def, o))
    }
}

/// The create path, inside the store's lock (also used by apply-create).
pub(crate) fn create_locked(
    tx: &mut Tx<'_>,
    def: &ResourceDef,
    mut obj: Value,
    manager: &str,
    operation: &str,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let name = {
        let m = meta::meta_mut(&mut obj).ok_or_else(|| ApiError::bad_request("object is not a JSON object"))?;
        let name = m.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let generate = m.get("generateName").and_then(Value::as_str).unwrap_or_default().to_string();
        if name.is_empty() && generate.is_empty() {
            let c = Cause::required("metadata.name", "name or generateName is required");
            return Err(ApiError::invalid(&def.group, &def.kind, "", &[c]));
        }
        let name = if name.is_empty() { format!("{generate}{}", meta::random_suffix()) } else { name };
        m.insert("name".into(), json!(name));
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
        ] {
            m.remove(k);
        }
        name
    };
    admission::validate_object(def, &obj, &name)?;
    let ns = meta_str(&obj, "namespace").to_string();
    if def.namespaced {
        admission::check_namespace_open(tx.state(), def, &ns, &name)?;
    }
    let gr = gr_of(def);
    let key = ObjectKey::new(&ns, &name);
    if tx.state().get(&gr, &key).is_some() {
        return Err(ApiError::already_exists(&def.group, &def.plural, &name));
    }
    if def.has_status()
        && let Some(o) = obj.as_object_mut()
    {
        o.remove("status");
    }
    admission::defaults_on_create(def, &mut obj);
    if (def.group.as_str(), def.plural.as_str()) == ("", "services") {
        crate::services::allocate(tx.state(), &mut obj, &name)?;
    }
    let uid = uuid::Uuid::new_v4().to_string();
    if (def.group.as_str(), def.plural.as_str()) == ("batch", "jobs") {
        let causes = crate::jobs::generate_selector(&mut obj, &name, &uid);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&def.group, &def.kind, &name, &causes));
        }
    }
    if let Some(m) = meta::meta_mut(&mut obj) {
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(meta::now()));
        if tracks_generation(def) {
            m.insert("generation".into(), json!(1));
        }
        m.remove("managedFields");
    }
    meta::record_manager(&mut obj, manager, operation, &def.api_version(), None);
    if dry_run {
        return Ok(obj);
    }
    Ok(tx.put(&gr, &key, obj))
}

/// The update path, inside the store's lock (also used by patch and apply).
#[allow(clippy::too_many_arguments)]
pub(crate) fn update_locked(
    tx: &mut Tx<'_>,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    body: Value,
    manager: &str,
    operation: &str,
    sub: Option<&str>,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let body_name = meta_str(&body, "name");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let gr = gr_of(def);
    let key = ObjectKey::new(if def.namespaced { ns } else { "" }, name);
    let old = tx.state().get(&gr, &key).cloned().ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
    let body_rv = meta_str(&body, "resourceVersion");
    if !body_rv.is_empty() && body_rv != meta_str(&old, "resourceVersion") {
        return Err(ApiError::stale(&def.group, &def.plural, name));
    }
    let body_uid = meta_str(&body, "uid");
    if !body_uid.is_empty() && body_uid != meta_str(&old, "uid") {
        let why = format!(
            "Precondition failed: UID in precondition: {body_uid}, UID in object meta: {}",
            meta_str(&old, "uid")
        );
        return Err(ApiError::conflict(&def.group, &def.plural, name, &why));
    }
    let mut new = match sub {
        Some("status") => {
            let mut n = old.clone();
            if let Some(o) = n.as_object_mut() {
                match body.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
            }
            n
        }
        Some("finalize") => {
            let mut n = old.clone();
            n["spec"]["finalizers"] = body["spec"]["finalizers"].clone();
            n
        }
        _ => {
            let mut n = body;
            if let (Some(o), true) = (n.as_object_mut(), def.has_status()) {
                match old.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
            }
            n
        }
    };
    admission::validate_object(def, &new, name)?;
    if sub.is_none() {
        match (def.group.as_str(), def.plural.as_str()) {
            ("", "services") => crate::services::carry_over(&old, &mut new)?,
            ("", "persistentvolumeclaims") => {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    admission::mirror_data_source(spec);
                }
            }
            _ => {}
        }
        crate::immutability::check(def, &old, &new, name)?;
    }
    let old_meta = old["metadata"].clone();
    if let Some(m) = meta::meta_mut(&mut new) {
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
        ] {
            match old_meta.get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
        m.insert("namespace".into(), old_meta.get("namespace").cloned().unwrap_or(Value::Null));
        if !def.namespaced {
            m.remove("namespace");
        }
    }
    if tracks_generation(def) && spec_part(&new) != spec_part(&old) {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        new["metadata"]["generation"] = json!(g);
    }
    if same_content(&new, &old) {
        return Ok(old);
    }
    meta::record_manager(&mut new, manager, operation, &def.api_version(), sub);
    if dry_run {
        return Ok(new);
    }
    if admission::deletion_complete(&gr, &new) {
        return Ok(tx.remove(&gr, &key).unwrap_or(new));
    }
    Ok(tx.put(&gr, &key, new))
}

//! The object store with API semantics: the public [`Store`] handle (seeding and inspection
//! without HTTP) and the reads behind `get` and `list`. Writes live in `write.rs` and `delete.rs`.

use serde_json::{Value, json};

use crate::catalog::{Catalog, ResourceDef};
use crate::fields::supported_fields;
use crate::list::{ContinueToken, ListOptions, continue_expired, paginate};
use crate::status::ApiError;
use crate::storage::{Compacted, GroupResource, ObjectKey, Storage};

/// Options of a write request.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// The request's User-Agent (names the manager when `fieldManager` is absent).
    pub user_agent: Option<String>,
    /// `dryRun=All`: validate, answer, but persist nothing.
    pub dry_run: bool,
    /// `force` (apply only).
    pub force: bool,
    /// `fieldValidation=Strict`: unknown fields of custom resources fail the request instead of
    /// being pruned.
    pub strict: bool,
}

/// A handle on the server's objects, with the same semantics as the HTTP API (validation,
/// metadata, resourceVersions, watch events) but no authentication or fault injection.
#[derive(Clone)]
pub struct Store {
    pub(crate) storage: Storage,
}

pub(crate) fn gr_of(def: &ResourceDef) -> GroupResource {
    GroupResource::new(&def.group, &def.plural)
}

/// Sets `apiVersion` and `kind` as the definition serves them.
pub(crate) fn present(def: &ResourceDef, mut obj: Value) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!(def.api_version()));
        o.insert("kind".into(), json!(def.kind));
    }
    obj
}

pub(crate) fn is_established(crd: &Value) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
}

pub(crate) fn crd_gr() -> GroupResource {
    GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions")
}

impl Store {
    pub(crate) fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// The resources served right now (built-ins plus established CRDs).
    pub fn catalog(&self) -> Catalog {
        let inner = self.storage.lock();
        let crds: Vec<Value> = inner
            .objects_at(&crd_gr(), None)
            .map(|m| m.into_values().filter(is_established).collect())
            .unwrap_or_default();
        drop(inner);
        Catalog::new(&crds)
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.storage.current_rv()
    }

    /// Forgets the change history, as etcd compaction does: older resourceVersions, continue
    /// tokens and watches then get 410 Gone.
    pub fn compact(&self) {
        self.storage.compact();
    }

    pub(crate) fn resolve(&self, api_version: &str, kind: &str) -> Result<ResourceDef, ApiError> {
        self.catalog().find_kind(api_version, kind).cloned().ok_or_else(|| {
            ApiError::not_found("", "", "")
                .with_message(format!("no matches for kind \"{kind}\" in version \"{api_version}\""))
        })
    }

    /// Reads one object.
    ///
    /// # Errors
    /// 404 `NotFound` when absent.
    pub(crate) fn get_in(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        let inner = self.storage.lock();
        inner
            .get(&gr_of(def), &ObjectKey::new(ns, name))
            .cloned()
            .map(|o| present(def, o))
            .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))
    }

    /// Lists objects (`ns` = `None` lists every namespace) as a `<Kind>List`.
    ///
    /// # Errors
    /// 400/410/422/504 as the real server for bad options, expired tokens and future versions.
    pub(crate) fn list_in(&self, def: &ResourceDef, ns: Option<&str>, opts: &ListOptions) -> Result<Value, ApiError> {
        opts.fields.check_fields(&supported_fields(&def.group, &def.plural), def.custom)?;
        let token = opts.continue_token.as_deref().map(ContinueToken::decode).transpose()?;
        let requested = opts.rv_number()?;
        let inner = self.storage.lock();
        let current = inner.rv();
        let at = match (&token, requested, opts.resource_version_match.as_deref()) {
            (Some(t), _, _) => Some(t.rv),
            (None, Some(rv), Some("Exact")) => Some(rv),
            (None, Some(rv), _) if rv > current => return Err(ApiError::too_large_resource_version(rv, current)),
            _ => None,
        };
        if let Some(rv) = at
            && rv > current
        {
            return Err(ApiError::too_large_resource_version(rv, current));
        }
        let gr = gr_of(def);
        let objects = inner.objects_view(&gr, at).map_err(|Compacted { requested, oldest }| {
            if token.is_some() {
                continue_expired()
            } else {
                ApiError::expired(format!("too old resource version: {requested} ({oldest})"))
            }
        })?;
        let list_rv = at.unwrap_or(current);
        // Paginated under the lock, so only the page's items are cloned.
        let page = paginate(&objects, opts, token.as_ref().map(|t| t.start.as_str()), list_rv, ns);
        drop(objects);
        drop(inner);
        let mut meta = serde_json::Map::new();
        meta.insert("resourceVersion".into(), json!(list_rv.to_string()));
        if let Some(c) = page.continue_token {
            meta.insert("continue".into(), json!(c));
        }
        if let Some(n) = page.remaining {
            meta.insert("remainingItemCount".into(), json!(n));
        }
        let items: Vec<Value> =
            page.items.into_iter().map(|o| if def.custom { present(def, o) } else { strip_type(o) }).collect();
        Ok(
            json!({"apiVersion": def.api_version(), "kind": format!("{}List", def.kind), "metadata": meta, "items": items}),
        )
    }

    /// Creates an object given as JSON with `apiVersion` and `kind` (the manager is `lifeboat-test-seed`).
    ///
    /// # Errors
    /// The same errors as `POST` (404 for a missing namespace, 409 for a duplicate, 422 for a bad name).
    pub fn create(&self, obj: Value) -> Result<Value, ApiError> {
        let def =
            self.resolve(obj["apiVersion"].as_str().unwrap_or_default(), obj["kind"].as_str().unwrap_or_default())?;
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
        self.create_in(&def, &ns, obj, &seed_options())
    }

    /// Reads an object by `apiVersion`, `kind`, namespace (`""` for cluster-scoped) and name.
    ///
    /// # Errors
    /// 404 when the kind is not served or the object is absent.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let def = self.resolve(api_version, kind)?;
        self.get_in(&def, namespace, name)
    }

    /// Lists objects of a kind, in one namespace or (`None`) all of them.
    ///
    /// # Errors
    /// 404 when the kind is not served.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Result<Vec<Value>, ApiError> {
        let def = self.resolve(api_version, kind)?;
        let list = self.list_in(&def, namespace, &ListOptions::default())?;
        Ok(list["items"].as_array().cloned().unwrap_or_default().into_iter().map(|o| present(&def, o)).collect())
    }

    /// Replaces an object (`PUT` semantics: a set `resourceVersion` must be current).
    ///
    /// # Errors
    /// As `PUT`: 404, 409 on a stale resourceVersion, 422.
    pub fn update(&self, obj: Value) -> Result<Value, ApiError> {
        self.update_as(obj, None)
    }

    /// Replaces an object's `status` through the `status` subresource (or the whole object for
    /// resources without one).
    ///
    /// # Errors
    /// As `PUT .../status`.
    pub fn update_status(&self, obj: Value) -> Result<Value, ApiError> {
        self.update_as(obj, Some("status"))
    }

    fn update_as(&self, obj: Value, sub: Option<&str>) -> Result<Value, ApiError> {
        let def =
            self.resolve(obj["apiVersion"].as_str().unwrap_or_default(), obj["kind"].as_str().unwrap_or_default())?;
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let sub = sub.filter(|_| def.has_status());
        self.update_in(&def, &ns, &name, obj, &seed_options(), sub)
    }

    /// Deletes an object (background propagation).
    ///
    /// # Errors
    /// 404 when absent.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let def = self.resolve(api_version, kind)?;
        self.delete_in(&def, namespace, name, &crate::delete::DeleteOptions::default())
    }
}

fn seed_options() -> WriteOptions {
    WriteOptions { field_manager: Some("lifeboat-test-seed".into()), ..Default::default() }
}

/// Items of built-in lists carry no `apiVersion`/`kind`, as the real server sends them.
fn strip_type(mut obj: Value) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
    }
    obj
}

impl ApiError {
    /// The same error with another message.
    pub(crate) fn with_message(mut self, message: String) -> Self {
        self.message = message;
        self
    }
}

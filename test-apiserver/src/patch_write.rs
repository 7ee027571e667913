//! `PATCH` requests: picks the patch semantics from the Content-Type, applies it to the live
//! object inside the store's lock and writes the result through the update path. Server-side
//! apply (`application/apply-patch+yaml`) creates missing objects and merges into live ones.

use serde_json::Value;

use crate::catalog::ResourceDef;
use crate::meta::{self, meta_str};
use crate::patch::{json_patch, merge_patch, strategic_merge};
use crate::status::{ApiError, Cause};
use crate::storage::ObjectKey;
use crate::store::{Store, WriteOptions, gr_of, present};
use crate::write::{check_type, create_locked, update_locked};

/// The patch flavours the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type for a Content-Type header.
    ///
    /// # Errors
    /// 415 for anything else, and for strategic merge patch on custom resources (as the real server).
    pub fn from_content_type(ct: &str, def: &ResourceDef) -> Result<Self, ApiError> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        let t = match base {
            "application/json-patch+json" => Self::Json,
            "application/merge-patch+json" => Self::Merge,
            "application/strategic-merge-patch+json" => Self::Strategic,
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Self::Apply,
            _ => return Err(unsupported_patch(base)),
        };
        if t == Self::Strategic && def.custom {
            return Err(unsupported_patch(base));
        }
        Ok(t)
    }
}

fn unsupported_patch(ct: &str) -> ApiError {
    ApiError {
        code: 415,
        reason: "UnsupportedMediaType".into(),
        message: format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct})"
        ),
        details: None,
        retry_after: None,
    }
}

fn parse_body(t: PatchType, body: &[u8]) -> Result<Value, ApiError> {
    if t == PatchType::Apply {
        let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        return serde_yaml_ng::from_str::<Value>(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

impl Store {
    /// Patches an object (or its `status` with `sub`). Returns the object and whether apply created it.
    ///
    /// # Errors
    /// 400 for malformed patches, 404 when absent (except apply), 409 on a resourceVersion
    /// precondition, 422 for apply without `fieldManager` or invalid results.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch_in(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        t: PatchType,
        body: &[u8],
        opts: &WriteOptions,
        sub: Option<&str>,
    ) -> Result<(Value, bool), ApiError> {
        let manager_given = opts.field_manager.as_deref().is_some_and(|m| !m.is_empty());
        if t == PatchType::Apply && !manager_given {
            let c = Cause::required("fieldManager", "is required for apply patch");
            return Err(ApiError::invalid("meta.k8s.io", "PatchOptions", "", &[c]));
        }
        if t != PatchType::Apply && opts.force {
            let c = Cause::forbidden("force", "may not be specified for non-apply patch");
            return Err(ApiError::invalid("meta.k8s.io", "PatchOptions", "", &[c]));
        }
        let patch = parse_body(t, body)?;
        let mut applied = patch.clone();
        if t == PatchType::Apply {
            check_type(def, &mut applied)?;
            let n = meta_str(&applied, "name");
            if n != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        let manager = meta::manager_name(opts.field_manager.as_deref(), opts.user_agent.as_deref());
        let operation = if t == PatchType::Apply { "Apply" } else { "Update" };
        let gr = gr_of(def);
        let key = ObjectKey::new(if def.namespaced { ns } else { "" }, name);
        self.storage.write(|tx| {
            let Some(live) = tx.state().get(&gr, &key).cloned() else {
                if t != PatchType::Apply || sub.is_some() {
                    return Err(ApiError::not_found(&def.group, &def.plural, name));
                }
                if let Some(m) = meta::meta_mut(&mut applied)
                    && def.namespaced
                {
                    m.insert("namespace".into(), Value::String(ns.to_string()));
                }
                crate::pruning::apply(&mut applied, def.schema.as_ref(), opts.strict)?;
                return create_locked(tx, def, applied, &manager, operation, opts.dry_run)
                    .map(|o| (present(def, o), true));
            };
            let live = present(def, live);
            let mut patched = match t {
                PatchType::Json => json_patch(&live, &patch)?,
                PatchType::Merge => merge_patch(&live, &patch),
                PatchType::Strategic => strategic_merge(&live, &patch)?,
                PatchType::Apply => {
                    let mut a = applied.clone();
                    if let Some(m) = meta::meta_mut(&mut a) {
                        m.remove("resourceVersion");
                    }
                    strategic_merge(&live, &a)?
                }
            };
            if !patched.is_object() {
                return Err(ApiError::bad_request("the patched object is not a JSON object"));
            }
            check_type(def, &mut patched)?;
            crate::pruning::apply(&mut patched, def.schema.as_ref(), opts.strict)?;
            if def.namespaced && meta_str(&patched, "namespace") != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            update_locked(tx, def, ns, name, patched, &manager, operation, sub, opts.dry_run)
                .map(|o| (present(def, o), false))
        })
    }
}

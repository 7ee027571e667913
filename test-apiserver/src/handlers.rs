//! Resource requests: maps method and path to a verb, checks the verb against discovery, reads
//! the body and options, and calls the store.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::{Bytes, to_bytes};
use axum::extract::{Query, Request};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use crate::catalog::ResourceDef;
use crate::delete::DeleteOptions;
use crate::list::ListOptions;
use crate::patch_write::PatchType;
use crate::router::{AppState, ResourcePath, json_response};
use crate::status::ApiError;
use crate::store::WriteOptions;
use crate::watch::{self, WatchRequest};

/// The real server's request size limit.
const MAX_BODY: usize = 3 * 1024 * 1024;

fn verb(method: &Method, rp: &ResourcePath, q: &BTreeMap<String, String>) -> Option<&'static str> {
    let watch = q.get("watch").is_some_and(|w| w == "1" || w == "true");
    match (method.as_str(), rp.name.is_some()) {
        ("GET", false) if watch => Some("watch"),
        ("GET", false) => Some("list"),
        ("POST", false) => Some("create"),
        ("DELETE", false) => Some("deletecollection"),
        ("GET", true) => Some("get"),
        ("PUT", true) => Some("update"),
        ("PATCH", true) => Some("patch"),
        ("DELETE", true) => Some("delete"),
        _ => None,
    }
}

/// Whether the client accepts a JSON answer (kubectl also offers `as=Table`, which we decline).
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return true };
    accept.split(',').any(|entry| {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        matches!(media, "application/json" | "*/*" | "application/*" | "")
            && !parts.any(|p| p.starts_with("as=") && p != "as=")
    })
}

fn decode_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let base = ct.split(';').next().unwrap_or_default().trim();
    match base {
        "application/json" | "" => {
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
        }
        "application/yaml" => {
            let text =
                std::str::from_utf8(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            serde_yaml_ng::from_str(text).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn write_options(q: &BTreeMap<String, String>, headers: &HeaderMap) -> Result<WriteOptions, ApiError> {
    if let Some(d) = q.get("dryRun").filter(|d| *d != "All") {
        return Err(ApiError::bad_request(format!("Invalid dry run value: {d}")));
    }
    if let Some(v) = q.get("fieldValidation").filter(|v| !["", "Ignore", "Warn", "Strict"].contains(&v.as_str())) {
        return Err(ApiError::bad_request(format!(
            "fieldValidation: Unsupported value: \"{v}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
        )));
    }
    Ok(WriteOptions {
        field_manager: q.get("fieldManager").cloned(),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(String::from),
        dry_run: q.contains_key("dryRun"),
        force: q.get("force").is_some_and(|f| f == "true"),
        strict: q.get("fieldValidation").is_some_and(|v| v == "Strict"),
    })
}

fn scope_matches(def: &ResourceDef, rp: &ResourcePath, verb: &str) -> bool {
    match (&rp.namespace, def.namespaced) {
        (Some(_), true) => true,
        (None, false) => true,
        // A namespaced resource is listed or watched across namespaces at the cluster path.
        (None, true) => matches!(verb, "list" | "watch"),
        (Some(_), false) => false,
    }
}

/// Serves one resource request.
///
/// # Errors
/// Any API error, rendered by the caller.
pub(crate) async fn handle(st: &AppState, rp: ResourcePath, req: Request) -> Result<Response, ApiError> {
    let q: BTreeMap<String, String> = Query::try_from_uri(req.uri()).map(|Query(q)| q).unwrap_or_default();
    let catalog = st.store.catalog();
    let def = catalog.find(&rp.group, &rp.version, &rp.resource).cloned().ok_or_else(ApiError::no_route)?;
    let verb = verb(req.method(), &rp, &q).ok_or_else(ApiError::method_not_allowed)?;
    let resource = rp.sub.as_ref().map_or_else(|| rp.resource.clone(), |s| format!("{}/{s}", rp.resource));
    if let Some(d) = st.faults.denied(&rp.group, &resource, verb) {
        let (name, ns) = (rp.name.as_deref().unwrap_or_default(), rp.namespace.as_deref().unwrap_or_default());
        return Err(ApiError::rbac_forbidden(&rp.group, &resource, name, ns, verb, &d.user));
    }
    if !scope_matches(&def, &rp, verb) {
        return Err(if rp.name.is_some() || rp.namespace.is_some() {
            ApiError::no_route()
        } else {
            ApiError::method_not_allowed()
        });
    }
    let sub = match &rp.sub {
        Some(s) => {
            let sd = def.subresource(s).ok_or_else(ApiError::no_route)?;
            if !sd.verbs.iter().any(|v| v == verb) {
                return Err(ApiError::method_not_allowed());
            }
            if s == "exec" && rp.group.is_empty() && rp.resource == "pods" {
                let (ns, name) = (rp.namespace.as_deref().unwrap_or_default(), rp.name.as_deref().unwrap_or_default());
                let pod = st.store.get_in(&def, ns, name)?;
                return crate::exec::serve(&st.execs, ns, name, &pod, req);
            }
            if !matches!(s.as_str(), "status" | "finalize" | "scale") {
                return Err(ApiError::internal(format!("the {s} subresource is not implemented by this test server")));
            }
            Some(s.as_str())
        }
        None if def.allows(verb) => None,
        None => return Err(ApiError::method_not_allowed()),
    };
    if !accepts_json(req.headers()) {
        return Err(ApiError::not_acceptable());
    }
    let ns = rp.namespace.clone().unwrap_or_default();
    let name = rp.name.clone().unwrap_or_default();
    let headers = req.headers().clone();
    let body = to_bytes(req.into_body(), MAX_BODY).await.map_err(|_| ApiError {
        code: 413,
        reason: "RequestEntityTooLarge".into(),
        message: format!("Request entity too large: limit is {MAX_BODY}"),
        details: None,
        retry_after: None,
    })?;
    let ok = |v: Value| json_response(StatusCode::OK, &v, "application/json");
    let store = &st.store;
    if sub == Some("scale") {
        let opts = write_options(&q, &headers)?;
        return match verb {
            "get" => store.get_scale(&def, &ns, &name).map(ok),
            "update" => store.write_scale(&def, &ns, &name, decode_body(&headers, &body)?, None, &opts).map(ok),
            _ => {
                let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
                let t = PatchType::from_content_type(ct, &def)?;
                let patch: Value = serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                store.write_scale(&def, &ns, &name, patch, Some(t), &opts).map(ok)
            }
        };
    }
    match verb {
        "list" => store.list_in(&def, rp.namespace.as_deref(), &ListOptions::from_query(&q)?).map(ok),
        "watch" => {
            let req = WatchRequest {
                def,
                namespace: rp.namespace.clone(),
                opts: ListOptions::from_query(&q)?,
                bookmarks: q.get("allowWatchBookmarks").is_some_and(|v| v == "true" || v == "1"),
                send_initial_events: q.get("sendInitialEvents").is_some_and(|v| v == "true"),
                timeout: q.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).map(Duration::from_secs),
                bookmark_interval: st.bookmark_interval,
            };
            watch::start(store, req, st.shutdown.clone())
        }
        "get" => store.get_in(&def, &ns, &name).map(ok),
        "create" => {
            let obj = decode_body(&headers, &body)?;
            let v = store.create_in(&def, &ns, obj, &write_options(&q, &headers)?)?;
            Ok(json_response(StatusCode::CREATED, &v, "application/json"))
        }
        "update" => {
            let obj = decode_body(&headers, &body)?;
            store.update_in(&def, &ns, &name, obj, &write_options(&q, &headers)?, sub).map(ok)
        }
        "patch" => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let t = PatchType::from_content_type(ct, &def)?;
            let (v, created) = store.patch_in(&def, &ns, &name, t, &body, &write_options(&q, &headers)?, sub)?;
            let code = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(json_response(code, &v, "application/json"))
        }
        "delete" => store.delete_in(&def, &ns, &name, &DeleteOptions::parse(&body, &q)?).map(ok),
        "deletecollection" => {
            let list = ListOptions::from_query(&q)?;
            store.delete_collection_in(&def, rp.namespace.as_deref(), &list, &DeleteOptions::parse(&body, &q)?).map(ok)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

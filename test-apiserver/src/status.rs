//! API errors as the real API server reports them: a `Status` body with `reason`, `details` and
//! `code`, and the exact message wording of kube-apiserver (`pods "x" not found`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A failed API request, rendered as a `v1` `Status` object.
///
/// The constructors mirror `k8s.io/apimachinery/pkg/api/errors`; the messages follow its wording.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status code (also `Status.code`).
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`.
    pub reason: String,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, when the real server sends them.
    pub details: Option<Value>,
    /// Seconds for the `Retry-After` header (429 and some 5xx).
    pub retry_after: Option<u64>,
}

/// How an object's resource is named in messages: `pods` or `deployments.apps`.
pub(crate) fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") }
}

fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    d.insert("kind".into(), json!(kind));
    Value::Object(d)
}

/// One entry of `details.causes` in an `Invalid` error.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueForbidden`, ...
    pub reason: &'static str,
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    /// The message without the field prefix, e.g. `Required value: name or generateName is required`.
    pub message: String,
}

impl Cause {
    /// A `Required value` cause.
    pub fn required(field: &str, detail: &str) -> Self {
        let message = if detail.is_empty() { "Required value".into() } else { format!("Required value: {detail}") };
        Self { reason: "FieldValueRequired", field: field.into(), message }
    }
    /// An `Invalid value` cause quoting the value.
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        let quoted = serde_json::to_string(value).unwrap_or_default();
        Self { reason: "FieldValueInvalid", field: field.into(), message: format!("Invalid value: {quoted}: {detail}") }
    }
    /// A `Forbidden` cause.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self { reason: "FieldValueForbidden", field: field.into(), message: format!("Forbidden: {detail}") }
    }
    /// An `Unsupported value` cause.
    pub fn unsupported(field: &str, value: &str, supported: &[&str]) -> Self {
        let quoted = serde_json::to_string(value).unwrap_or_default();
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Self {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!("Unsupported value: {quoted}: supported values: {}", list.join(", ")),
        }
    }
}

impl ApiError {
    fn new(code: u16, reason: &str, message: String, details: Option<Value>) -> Self {
        Self { code, reason: reason.into(), message, details, retry_after: None }
    }

    /// 404: `pods "x" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let msg = format!("{} \"{name}\" not found", qualified(group, resource));
        Self::new(404, "NotFound", msg, Some(details(group, resource, name)))
    }

    /// 404 for an unknown path: `the server could not find the requested resource`.
    pub fn no_route() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource".into(), Some(json!({})))
    }

    /// 409: `pods "x" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let msg = format!("{} \"{name}\" already exists", qualified(group, resource));
        Self::new(409, "AlreadyExists", msg, Some(details(group, resource, name)))
    }

    /// 409 for a stale `resourceVersion`.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let msg = format!("Operation cannot be fulfilled on {} \"{name}\": {why}", qualified(group, resource));
        Self::new(409, "Conflict", msg, Some(details(group, resource, name)))
    }

    /// The standard optimistic-concurrency conflict message.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422: `ConfigMap "x" is invalid: metadata.name: Required value: ...`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: &[Cause]) -> Self {
        let parts: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        let joined = if parts.len() == 1 { parts.concat() } else { format!("[{}]", parts.join(", ")) };
        let msg = format!("{} \"{name}\" is invalid: {joined}", qualified(group, kind));
        let mut d = details(group, kind, name);
        if let Some(obj) = d.as_object_mut() {
            if name.is_empty() {
                obj.insert("name".into(), json!(""));
            }
            let list: Vec<Value> =
                causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect();
            obj.insert("causes".into(), Value::Array(list));
        }
        Self::new(422, "Invalid", msg, Some(d))
    }

    /// 400 with a free-form message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    /// 403: `configmaps "x" is forbidden: ...`.
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let msg = format!("{} \"{name}\" is forbidden: {why}", qualified(group, resource));
        Self::new(403, "Forbidden", msg, Some(details(group, resource, name)))
    }

    /// 403 as the RBAC authorizer sends it: `deployments.apps is forbidden: User "u" cannot list
    /// resource "deployments" in API group "apps" at the cluster scope` (with the object's name
    /// and `in the namespace "ns"` where the request has them).
    pub fn rbac_forbidden(group: &str, resource: &str, name: &str, namespace: &str, verb: &str, user: &str) -> Self {
        let base = resource.split('/').next().unwrap_or(resource);
        let subject =
            if name.is_empty() { qualified(group, base) } else { format!("{} \"{name}\"", qualified(group, base)) };
        let scope = if namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{namespace}\"")
        };
        let msg = format!(
            "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
        );
        Self::new(403, "Forbidden", msg, Some(details(group, base, name)))
    }

    /// 401 as sent for a missing or wrong bearer token.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized".into(), None)
    }

    /// 405 for a verb the resource does not support.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".into(),
            None,
        )
    }

    /// 410 `Expired` (too old resource version, expired continue token).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message.into(), None)
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.".into(),
            Some(json!({"retryAfterSeconds": retry_after_seconds})),
        );
        e.retry_after = Some(retry_after_seconds);
        e
    }

    /// 500 with a message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message.into(), None)
    }

    /// 504 `Timeout` for a resourceVersion newer than the store has.
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        let mut e = Self::new(
            504,
            "Timeout",
            format!("Too large resource version: {requested}, current: {current}"),
            Some(json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                        "retryAfterSeconds": 1})),
        );
        e.retry_after = Some(1);
        e
    }

    /// 406 for an `Accept` header the server cannot satisfy.
    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml".into(),
            None,
        )
    }

    /// 415 for a request body in an unsupported format.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type})"
            ),
            None,
        )
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let (Some(obj), Some(d)) = (s.as_object_mut(), &self.details) {
            obj.insert("details".into(), d.clone());
        }
        if let Some(obj) = s.as_object_mut() {
            obj.insert("code".into(), json!(self.code));
        }
        s
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        let mut resp = (code, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_the_real_wording() {
        let e = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(e.message, "deployments.apps \"web\" not found");
        let s = e.to_status();
        assert_eq!(s["details"], json!({"name": "web", "group": "apps", "kind": "deployments"}));
        assert_eq!(s["code"], 404);
    }

    #[test]
    fn rbac_denials_read_like_the_authorizer() {
        let e = ApiError::rbac_forbidden("apps", "deployments", "", "", "list", "u");
        assert_eq!(
            e.message,
            "deployments.apps is forbidden: User \"u\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        );
        assert_eq!(e.to_status()["details"], json!({"group": "apps", "kind": "deployments"}));
        let e = ApiError::rbac_forbidden("", "secrets", "s", "shop", "get", "u");
        assert_eq!(
            e.message,
            "secrets \"s\" is forbidden: User \"u\" cannot get resource \"secrets\" in API group \"\" in the namespace \"shop\""
        );
    }

    #[test]
    fn invalid_lists_causes() {
        let e = ApiError::invalid(
            "",
            "ConfigMap",
            "",
            &[Cause::required("metadata.name", "name or generateName is required")],
        );
        assert_eq!(
            e.message,
            "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(e.to_status()["details"]["causes"][0]["field"], "metadata.name");
    }
}

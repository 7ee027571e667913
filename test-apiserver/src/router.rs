//! The HTTP surface: authentication, then routing by path to discovery, OpenAPI, version and
//! resource handlers. Paths are parsed by hand, as the API's shape is regular but deep.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::watch;

use crate::discovery::{self, DiscoveryFormat};
use crate::faults::Faults;
use crate::status::ApiError;
use crate::store::Store;
use crate::{auth, handlers, openapi};

/// Everything a request handler needs.
pub(crate) struct AppState {
    pub store: Store,
    pub faults: Faults,
    pub execs: crate::exec::Execs,
    pub token: String,
    pub version: Value,
    pub server_version: String,
    pub address: String,
    pub bookmark_interval: Duration,
    pub shutdown: watch::Receiver<bool>,
}

/// A request for a resource, parsed from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Health,
    Version,
    Api,
    Apis,
    Group(String),
    GroupVersion(String, String),
    OpenApiIndex,
    OpenApi(String),
    OpenApiV2,
    Resource(ResourcePath),
    Unknown,
}

fn parse_resource(group: &str, version: &str, segs: &[&str]) -> Route {
    if segs.is_empty() {
        return Route::GroupVersion(group.into(), version.into());
    }
    let namespaced =
        segs[0] == "namespaces" && segs.len() >= 3 && !(segs.len() == 3 && matches!(segs[2], "status" | "finalize"));
    let (namespace, rest) = if namespaced { (Some(segs[1].to_string()), &segs[2..]) } else { (None, segs) };
    if rest.len() > 3 || rest.iter().any(|s| s.is_empty()) {
        return Route::Unknown;
    }
    Route::Resource(ResourcePath {
        group: group.into(),
        version: version.into(),
        namespace,
        resource: rest[0].into(),
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    })
}

fn route(path: &str) -> Route {
    let trimmed = path.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.split('/').skip(1).collect();
    match segs.as_slice() {
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["version"] => Route::Version,
        ["api"] => Route::Api,
        ["api", "v1", rest @ ..] => parse_resource("", "v1", rest),
        ["apis"] => Route::Apis,
        ["apis", g] => Route::Group((*g).into()),
        ["apis", g, v, rest @ ..] => parse_resource(g, v, rest),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiIndex,
        ["openapi", "v3", rest @ ..] => Route::OpenApi(rest.join("/")),
        _ => Route::Unknown,
    }
}

/// The router; everything goes through one dispatcher.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

pub(crate) fn json_response(code: StatusCode, v: &Value, content_type: &str) -> Response {
    let mut resp = (code, serde_json::to_vec(v).unwrap_or_default()).into_response();
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}

async fn dispatch(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    tracing::debug!(http.method = %req.method(), http.path = %path, "request");
    if let Err(e) = auth::check(req.headers(), &path, &st.token) {
        return e.into_response();
    }
    let r = route(&path);
    if req.method() != Method::GET && !matches!(r, Route::Resource(_)) {
        return ApiError::method_not_allowed().into_response();
    }
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(String::from);
    let result = match r {
        Route::Health => Ok((StatusCode::OK, "ok").into_response()),
        Route::Version => Ok(json_response(StatusCode::OK, &st.version, "application/json")),
        Route::Api | Route::Apis => discovery_root(&st, matches!(r, Route::Api), accept.as_deref()),
        Route::Group(g) => discovery::group(&st.store.catalog(), &g)
            .map(|v| json_response(StatusCode::OK, &v, "application/json"))
            .ok_or_else(ApiError::no_route),
        Route::GroupVersion(g, v) => st
            .store
            .catalog()
            .group_version(&g, &v)
            .map(|gv| json_response(StatusCode::OK, &discovery::resource_list(gv), "application/json"))
            .ok_or_else(ApiError::no_route),
        Route::OpenApiIndex => Ok(json_response(
            StatusCode::OK,
            &openapi::index(&st.store.catalog(), &st.server_version),
            "application/json",
        )),
        Route::OpenApi(p) => openapi::lookup(&st.store.catalog(), &p, &st.server_version)
            .map(|v| json_response(StatusCode::OK, &v, "application/json"))
            .ok_or_else(ApiError::no_route),
        Route::OpenApiV2 if accept.as_deref().is_some_and(|a| a.contains("protobuf")) => {
            let mut resp = (StatusCode::OK, openapi::v2_protobuf(&st.server_version)).into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(openapi::V2_PROTOBUF));
            Ok(resp)
        }
        Route::OpenApiV2 => {
            Ok(json_response(StatusCode::OK, &openapi::v2_json(&st.server_version), "application/json"))
        }
        Route::Resource(rp) => handlers::handle(&st, rp, req).await,
        Route::Unknown => Err(ApiError::no_route()),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn discovery_root(st: &AppState, core: bool, accept: Option<&str>) -> Result<Response, ApiError> {
    let cat = st.store.catalog();
    match discovery::negotiate(accept) {
        None => Err(ApiError::not_acceptable()),
        Some(DiscoveryFormat::Aggregated(v)) => Ok(json_response(
            StatusCode::OK,
            &discovery::aggregated(&cat, core, v),
            &discovery::aggregated_content_type(v),
        )),
        Some(DiscoveryFormat::Legacy) if core => {
            Ok(json_response(StatusCode::OK, &discovery::api_versions(&st.address), "application/json"))
        }
        Some(DiscoveryFormat::Legacy) => {
            Ok(json_response(StatusCode::OK, &discovery::group_list(&cat), "application/json"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(g: &str, ns: Option<&str>, r: &str, name: Option<&str>, sub: Option<&str>) -> Route {
        Route::Resource(ResourcePath {
            group: g.into(),
            version: "v1".into(),
            namespace: ns.map(String::from),
            resource: r.into(),
            name: name.map(String::from),
            sub: sub.map(String::from),
        })
    }

    #[test]
    fn paths_parse_like_the_real_server() {
        assert_eq!(route("/api/v1/namespaces"), res("", None, "namespaces", None, None));
        assert_eq!(route("/api/v1/namespaces/a"), res("", None, "namespaces", Some("a"), None));
        assert_eq!(route("/api/v1/namespaces/a/status"), res("", None, "namespaces", Some("a"), Some("status")));
        assert_eq!(route("/api/v1/namespaces/a/pods"), res("", Some("a"), "pods", None, None));
        assert_eq!(route("/api/v1/namespaces/a/pods/p/status"), res("", Some("a"), "pods", Some("p"), Some("status")));
        assert_eq!(route("/apis/apps/v1/deployments"), res("apps", None, "deployments", None, None));
        assert_eq!(route("/apis/apps/v1"), Route::GroupVersion("apps".into(), "v1".into()));
        assert_eq!(route("/apis/apps"), Route::Group("apps".into()));
        assert_eq!(route("/api/v1/namespaces/a/pods/p/status/x"), Route::Unknown);
        assert_eq!(route("/openapi/v3/apis/apps/v1"), Route::OpenApi("apis/apps/v1".into()));
    }
}

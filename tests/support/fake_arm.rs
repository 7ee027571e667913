//! A local stand-in for Azure Resource Manager. ARM cannot be emulated here (no emulator
//! exists); this server answers with the shapes ARM documents for what Lifeboat calls:
//! `Microsoft.Compute/snapshots` GET/PUT/DELETE (`creationData.createOption: CopyStart`,
//! `properties.completionPercent`, `provisioningState`, `copyCompletionError`), the error body
//! `{"error":{"code","message"}}`, long-running operations through `Azure-AsyncOperation`
//! status resources (`{"status":"InProgress|Succeeded|Failed"}`) with `Retry-After`, and
//! throttling (429 + `Retry-After`) where a test asks for it; and
//! `Microsoft.ContainerService/managedClusters` GET with the POST action
//! `listClusterUserCredential` (`{"kubeconfigs":[{"name","value":<base64 kubeconfig>}]}`).
//!
//! Every request is recorded (method, path, query, body, `Authorization`, arrival time) so
//! tests can assert what was sent.
#![allow(dead_code)] // each test file uses a part

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub body: Option<Value>,
    pub authorization: Option<String>,
    pub at: Instant,
}

/// An answer to give instead of handling a request.
#[derive(Debug, Clone)]
pub struct Injected {
    /// Only for requests with this method.
    pub method: Method,
    pub status: u16,
    pub retry_after: Option<String>,
    pub code: &'static str,
}

#[derive(Debug, Default)]
pub struct FakeArm {
    /// Resources by id, lowercased (ARM ids ignore case).
    pub resources: BTreeMap<String, Value>,
    pub requests: Vec<Recorded>,
    pub inject: VecDeque<Injected>,
    /// Operation id → polls left before it ends, and how it ends.
    operations: BTreeMap<String, (u32, &'static str)>,
    /// Polls an operation answers `InProgress` before it ends.
    pub operation_polls: u32,
    /// How deletions end: `Succeeded` (default) or `Failed`.
    pub delete_outcome: Option<&'static str>,
    /// Deletions name a `Location` (202 until done) instead of an `Azure-AsyncOperation`.
    pub location_polling: bool,
    /// The host operation URLs name, instead of this server's (a misbehaving server).
    pub poll_host: Option<String>,
    /// Kubeconfig YAML `listClusterUserCredential` answers, by cluster id, lowercased.
    pub credentials: BTreeMap<String, String>,
    next_operation: u32,
}

pub type Shared = Arc<Mutex<FakeArm>>;

/// A running fake: its base URL and its state.
pub struct Running {
    pub base: String,
    pub state: Shared,
}

impl Running {
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("lock").requests.clone()
    }

    /// Requests other than operation-status polls.
    pub fn resource_requests(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| !r.path.contains("/operations/")).collect()
    }

    pub fn inject(&self, method: Method, status: u16, retry_after: Option<&str>, code: &'static str) {
        self.state.lock().expect("lock").inject.push_back(Injected {
            method,
            status,
            retry_after: retry_after.map(str::to_owned),
            code,
        });
    }

    /// Adds a snapshot resource in `location`.
    pub fn add_snapshot(&self, id: &str, location: &str) {
        let name = id.rsplit('/').next().unwrap_or_default();
        let body = json!({
            "id": id, "name": name, "type": "Microsoft.Compute/snapshots", "location": location,
            "properties": { "provisioningState": "Succeeded", "incremental": true,
                "creationData": { "createOption": "Copy" } },
        });
        self.state.lock().expect("lock").resources.insert(id.to_ascii_lowercase(), body);
    }

    /// Adds a managed cluster with ARM's `properties` and the kubeconfig its user credential holds.
    pub fn add_managed_cluster(&self, id: &str, tags: Value, properties: Value, kubeconfig: &str) {
        let name = id.rsplit('/').next().unwrap_or_default();
        let body = json!({
            "id": id, "name": name, "type": "Microsoft.ContainerService/ManagedClusters",
            "location": "westeurope", "tags": tags, "properties": properties,
        });
        let mut fake = self.state.lock().expect("lock");
        fake.resources.insert(id.to_ascii_lowercase(), body);
        fake.credentials.insert(id.to_ascii_lowercase(), kubeconfig.to_owned());
    }

    /// Moves a copy's background progress to `percent`.
    pub fn set_copy_percent(&self, id: &str, percent: f64) {
        let mut fake = self.state.lock().expect("lock");
        let resource = fake.resources.get_mut(&id.to_ascii_lowercase()).expect("the copy exists");
        resource["properties"]["completionPercent"] = json!(percent);
    }

    pub fn remove(&self, id: &str) {
        self.state.lock().expect("lock").resources.remove(&id.to_ascii_lowercase());
    }

    pub fn resource(&self, id: &str) -> Option<Value> {
        self.state.lock().expect("lock").resources.get(&id.to_ascii_lowercase()).cloned()
    }
}

/// Starts the fake on a loopback port.
pub async fn start() -> Running {
    let state: Shared = Arc::new(Mutex::new(FakeArm { operation_polls: 1, ..FakeArm::default() }));
    let app = Router::new().fallback(handle).with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    Running { base, state }
}

fn arm_error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).expect("status");
    (status, axum::Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

fn with_header(mut response: Response, name: &'static str, value: &str) -> Response {
    response.headers_mut().insert(name, HeaderValue::from_str(value).expect("header"));
    response
}

async fn handle(State(state): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
    let mut fake = state.lock().expect("lock");
    fake.requests.push(Recorded {
        method: method.clone(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        body: serde_json::from_slice(&body).ok(),
        authorization: headers.get("authorization").and_then(|h| h.to_str().ok()).map(str::to_owned),
        at: Instant::now(),
    });
    if !uri.query().unwrap_or_default().contains("api-version=") {
        return arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    if let Some(position) = fake.inject.iter().position(|i| i.method == method) {
        let injected = fake.inject.remove(position).expect("position");
        let response = arm_error(injected.status, injected.code, "injected by the test");
        return match injected.retry_after {
            Some(after) => with_header(response, "retry-after", &after),
            None => response,
        };
    }
    let path = uri.path().to_owned();
    if path.contains("/operations/") {
        return poll_operation(&mut fake, &path);
    }
    if path.contains("/operationResults/") {
        return poll_location(&mut fake, &path);
    }
    let key = path.to_ascii_lowercase();
    match method {
        Method::GET => get(&mut fake, &key, &path),
        Method::PUT => put(&mut fake, &key, &path, &body, &host),
        Method::DELETE => delete(&mut fake, &key, &path, &host),
        Method::POST => post(&fake, &key, &path),
        _ => arm_error(405, "MethodNotAllowed", "not served by the fake"),
    }
}

fn not_found(path: &str) -> Response {
    let name = path.rsplit('/').next().unwrap_or_default();
    arm_error(404, "ResourceNotFound", &format!("The Resource 'Microsoft.Compute/snapshots/{name}' was not found."))
}

fn get(fake: &mut FakeArm, key: &str, path: &str) -> Response {
    let sources: Vec<String> = fake.resources.keys().cloned().collect();
    let Some(resource) = fake.resources.get_mut(key) else { return not_found(path) };
    if let Some(percent) = resource.pointer("/properties/completionPercent").and_then(Value::as_f64) {
        let source = resource
            .pointer("/properties/creationData/sourceResourceId")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if percent < 100.0 && !sources.contains(&source) {
            resource["properties"]["copyCompletionError"] = json!({
                "errorCode": "CopySourceNotFound",
                "errorMessage": "The source snapshot was deleted while the background copy was in progress.",
            });
        }
    }
    axum::Json(resource.clone()).into_response()
}

fn post(fake: &FakeArm, key: &str, path: &str) -> Response {
    let Some(cluster) = key.strip_suffix("/listclusterusercredential") else {
        return arm_error(400, "InvalidResourceType", "Only listClusterUserCredential is served by the fake.");
    };
    let Some(kubeconfig) = fake.credentials.get(cluster) else { return not_found(path) };
    let value = azure_core::base64::encode(kubeconfig.as_bytes());
    axum::Json(json!({ "kubeconfigs": [{ "name": "clusterUser", "value": value }] })).into_response()
}

fn put(fake: &mut FakeArm, key: &str, path: &str, body: &[u8], host: &str) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized.",
        );
    };
    let source = body.pointer("/properties/creationData/sourceResourceId").and_then(Value::as_str).unwrap_or_default();
    if body.pointer("/properties/creationData/createOption").and_then(Value::as_str) != Some("CopyStart") {
        return arm_error(400, "InvalidParameter", "Only CopyStart is served by the fake.");
    }
    if !fake.resources.contains_key(&source.to_ascii_lowercase()) {
        return arm_error(404, "NotFound", &format!("Resource {source} is not found."));
    }
    if fake.resources.contains_key(key) {
        return arm_error(409, "Conflict", "The snapshot is already being copied.");
    }
    let location = body.get("location").and_then(Value::as_str).unwrap_or_default().to_owned();
    let resource = json!({
        "id": path, "name": path.rsplit('/').next().unwrap_or_default(), "type": "Microsoft.Compute/snapshots",
        "location": location,
        "properties": {
            "creationData": body["properties"]["creationData"].clone(),
            "incremental": true,
            "provisioningState": "Succeeded",
            "completionPercent": 0.0,
        },
    });
    fake.resources.insert(key.to_owned(), resource.clone());
    let operation = new_operation(fake, "Succeeded");
    let response = (StatusCode::CREATED, axum::Json(resource)).into_response();
    with_header(operation_header(response, host, &location, &operation), "retry-after", "0")
}

fn delete(fake: &mut FakeArm, key: &str, path: &str, host: &str) -> Response {
    let Some(resource) = fake.resources.remove(key) else { return not_found(path) };
    let location = resource.get("location").and_then(Value::as_str).unwrap_or_default().to_owned();
    let outcome = fake.delete_outcome.unwrap_or("Succeeded");
    let operation = new_operation(fake, outcome);
    let response = StatusCode::ACCEPTED.into_response();
    let host = fake.poll_host.clone().unwrap_or_else(|| host.to_owned());
    let response = if fake.location_polling {
        let url = format!(
            "http://{host}/subscriptions/sub/providers/Microsoft.Compute/locations/{location}/operationResults/{operation}?api-version=2024-03-02"
        );
        with_header(response, "location", &url)
    } else {
        operation_header(response, &host, &location, &operation)
    };
    with_header(response, "retry-after", "0")
}

fn poll_location(fake: &mut FakeArm, path: &str) -> Response {
    let id = path.rsplit('/').next().unwrap_or_default().to_owned();
    let Some((left, _)) = fake.operations.get_mut(&id) else {
        return arm_error(404, "NotFound", "no such operation");
    };
    if *left > 0 {
        *left -= 1;
        with_header(StatusCode::ACCEPTED.into_response(), "retry-after", "0")
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

fn new_operation(fake: &mut FakeArm, outcome: &'static str) -> String {
    fake.next_operation += 1;
    let id = format!("op-{}", fake.next_operation);
    fake.operations.insert(id.clone(), (fake.operation_polls, outcome));
    id
}

fn operation_header(response: Response, host: &str, location: &str, operation: &str) -> Response {
    let url = format!(
        "http://{host}/subscriptions/sub/providers/Microsoft.Compute/locations/{location}/operations/{operation}?api-version=2024-03-02"
    );
    with_header(response, "azure-asyncoperation", &url)
}

fn poll_operation(fake: &mut FakeArm, path: &str) -> Response {
    let id = path.rsplit('/').next().unwrap_or_default().to_owned();
    let Some((left, outcome)) = fake.operations.get_mut(&id) else {
        return arm_error(404, "NotFound", "no such operation");
    };
    let body = if *left > 0 {
        *left -= 1;
        json!({ "name": id, "status": "InProgress" })
    } else if *outcome == "Failed" {
        json!({ "name": id, "status": "Failed", "error": { "code": "OperationNotAllowed", "message": "The snapshot is in use." } })
    } else {
        json!({ "name": id, "status": *outcome })
    };
    with_header(axum::Json(body).into_response(), "retry-after", "0")
}

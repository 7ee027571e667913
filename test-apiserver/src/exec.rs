//! `pods/exec` over WebSocket (the `v5.channel.k8s.io` and `v4.channel.k8s.io` subprotocols,
//! as `kube` and kubectl 1.30+ speak them). No process runs: a responder the test registers
//! ([`Execs::respond_with`]) answers each command, and every exec is recorded
//! ([`Execs::recorded`]). By default a command exits 0 with no output.
//!
//! The validation is the real server's: a missing pod is 404 with its `Status`; an unknown
//! container, a missing container name in a pod of several, or no command is 400; a request
//! without a WebSocket upgrade is 400 `Upgrade request required` (SPDY is not spoken).

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::SinkExt;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::status::ApiError;

/// One exec as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container (resolved: the pod's only container when the request named none).
    pub container: String,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// What a command "did": its exit code and output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecResult {
    /// The exit code (0: success).
    pub exit_code: i32,
    /// Written to stdout.
    pub stdout: String,
    /// Written to stderr.
    pub stderr: String,
}

type Responder = Arc<dyn Fn(&ExecRequest) -> ExecResult + Send + Sync>;

/// The exec responder and the record of every exec (cheap to clone; clones share both).
#[derive(Clone, Default)]
pub struct Execs {
    responder: Arc<Mutex<Option<Responder>>>,
    recorded: Arc<Mutex<Vec<ExecRequest>>>,
}

impl std::fmt::Debug for Execs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Execs").field("recorded", &self.recorded()).finish_non_exhaustive()
    }
}

impl Execs {
    /// Answers every later exec with `responder` (it runs on the server's task, before the
    /// answer is sent, so it may look at the store to see what the cluster held at that moment).
    pub fn respond_with(&self, responder: impl Fn(&ExecRequest) -> ExecResult + Send + Sync + 'static) {
        *self.responder.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(responder));
    }

    /// Every exec served so far, in order.
    pub fn recorded(&self) -> Vec<ExecRequest> {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn run(&self, request: ExecRequest) -> ExecResult {
        let responder = self.responder.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let result = responder.map(|r| r(&request)).unwrap_or_default();
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner).push(request);
        result
    }
}

/// The exec's options, from a query where `command` repeats.
#[derive(Debug, Default, PartialEq, Eq)]
struct ExecQuery {
    command: Vec<String>,
    container: Option<String>,
    stdout: bool,
    stderr: bool,
}

fn parse_query(query: &str) -> ExecQuery {
    let mut q = ExecQuery::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let on = v == "true" || v == "1";
        match k.as_ref() {
            "command" => q.command.push(v.into_owned()),
            "container" => q.container = Some(v.into_owned()),
            "stdout" => q.stdout = on,
            "stderr" => q.stderr = on,
            _ => {}
        }
    }
    q
}

/// The container an exec runs in, as the real server resolves it.
fn resolve_container(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let containers: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get("name").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    match (asked, containers.as_slice()) {
        (Some(c), _) if containers.contains(&c) => Ok(c.to_owned()),
        (Some(c), _) => Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}"))),
        (None, [only]) => Ok((*only).to_owned()),
        (None, many) => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            many.join(" ")
        ))),
    }
}

/// The subprotocol to speak: the first of the client's that this server knows.
fn pick_protocol(offered: &str) -> Option<&'static str> {
    offered.split(',').map(str::trim).find_map(|p| match p {
        "v5.channel.k8s.io" => Some("v5.channel.k8s.io"),
        "v4.channel.k8s.io" => Some("v4.channel.k8s.io"),
        _ => None,
    })
}

/// The v4/v5 status-channel document for an exit code.
fn exit_status(result: &ExecResult, command: &[String]) -> Value {
    if result.exit_code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    let code = result.exit_code;
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", command.join(" ")),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
    })
}

/// Serves `pods/{name}/exec` for `pod` (already fetched: its absence is the caller's 404).
///
/// # Errors
/// 400 for a bad container, no command, or no WebSocket upgrade.
pub(crate) fn serve(
    execs: &Execs,
    namespace: &str,
    name: &str,
    pod: &Value,
    mut req: Request,
) -> Result<Response, ApiError> {
    let q = parse_query(req.uri().query().unwrap_or_default());
    let container = resolve_container(pod, name, q.container.as_deref())?;
    if q.command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let headers = req.headers();
    let upgrade =
        headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let protocol = headers.get(header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).and_then(pick_protocol);
    let (true, Some(key), Some(protocol)) = (upgrade, key, protocol) else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let request = ExecRequest { namespace: namespace.to_owned(), pod: name.to_owned(), container, command: q.command };
    tracing::debug!(k8s.namespace = %namespace, k8s.pod = %name, command = ?request.command, "exec");
    let output = execs.run(request.clone());
    let status = exit_status(&output, &request.command);
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let mut frames = Vec::new();
        if q.stdout && !output.stdout.is_empty() {
            frames.push(frame(1, output.stdout.as_bytes()));
        }
        if q.stderr && !output.stderr.is_empty() {
            frames.push(frame(2, output.stderr.as_bytes()));
        }
        frames.push(frame(3, &serde_json::to_vec(&status).unwrap_or_default()));
        for f in frames {
            if ws.send(Message::binary(f)).await.is_err() {
                return;
            }
        }
        let _ = ws.close(None).await;
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    Ok(resp)
}

fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(data.len() + 1);
    f.push(channel);
    f.extend_from_slice(data);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_keeps_every_command_word_in_order() {
        let q = parse_query("stdout=true&stderr=1&container=db&command=sh&command=-c&command=echo%20a%26b");
        assert_eq!(q.command, ["sh", "-c", "echo a&b"]);
        assert_eq!(q.container.as_deref(), Some("db"));
        assert!(q.stdout && q.stderr);
        assert!(!parse_query("command=x").stdout);
    }

    #[test]
    fn the_first_known_subprotocol_the_client_offers_is_spoken() {
        assert_eq!(pick_protocol("v5.channel.k8s.io, v4.channel.k8s.io"), Some("v5.channel.k8s.io"));
        assert_eq!(pick_protocol("channel.k8s.io,v4.channel.k8s.io"), Some("v4.channel.k8s.io"));
        assert_eq!(pick_protocol("base64.channel.k8s.io"), None);
    }

    #[test]
    fn a_non_zero_exit_is_reported_as_the_kubelet_does() {
        let ok = exit_status(&ExecResult::default(), &["true".into()]);
        assert_eq!(ok["status"], "Success");
        let failed = exit_status(&ExecResult { exit_code: 2, ..ExecResult::default() }, &["false".into()]);
        assert_eq!(
            (failed["reason"].as_str(), failed["details"]["causes"][0]["message"].as_str()),
            (Some("NonZeroExitCode"), Some("2"))
        );
    }
}

//! The local runtime's HTTP endpoint: `GET /status` (and `/api/status`, the Functions route),
//! `GET /healthz`, and Event Grid deliveries on the path the Functions host uses,
//! `/runtime/webhooks/eventgrid?functionName=…`, with both validation handshakes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::function_defs::TriggerKind;
use crate::handlers::{self, Outcome, TriggerInput};

/// Routes of the local runtime.
pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/status", get(status))
        .route("/api/status", get(status))
        .route("/runtime/webhooks/eventgrid", axum::routing::post(event_grid).options(event_grid_options))
        .with_state(app)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn status(State(app): State<AppState>) -> Response {
    match handlers::status::report(&app).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Deserialize)]
struct EventGridParams {
    #[serde(rename = "functionName")]
    function_name: Option<String>,
}

/// CloudEvents webhook validation (abuse protection): echo the origin back.
async fn event_grid_options(headers: HeaderMap) -> Response {
    let Some(origin) = headers.get("webhook-request-origin").cloned() else {
        return error(StatusCode::BAD_REQUEST, "OPTIONS without WebHook-Request-Origin");
    };
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert("webhook-allowed-origin", origin);
    response.headers_mut().insert("webhook-allowed-rate", HeaderValue::from_static("*"));
    response
}

async fn event_grid(
    State(app): State<AppState>,
    Query(params): Query<EventGridParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(name) = params.function_name else {
        return error(StatusCode::BAD_REQUEST, "missing query parameter functionName");
    };
    let Some(def) = app.function(&name).filter(|d| d.trigger == TriggerKind::EventGrid).cloned() else {
        return error(StatusCode::NOT_FOUND, format!("no Event Grid function named {name:?}"));
    };
    let events = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(events)) => events,
        Ok(event @ Value::Object(_)) => vec![event],
        Ok(_) => return error(StatusCode::BAD_REQUEST, "body must be an event or an array of events"),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")),
    };
    if let Some(code) = validation_code(&headers, &events) {
        tracing::info!(function = name, "answering the Event Grid subscription validation handshake");
        return axum::Json(json!({ "validationResponse": code })).into_response();
    }
    // The handler takes the whole batch: a malformed event in it is acknowledged with its
    // reason, the others are handled; a failure a retry may fix answers 5xx for the batch.
    match handlers::dispatch(&app, &def, TriggerInput::Event(Value::Array(events))).await {
        Ok(Outcome::Done { logs, .. }) => {
            logs.iter().for_each(|l| tracing::info!(function = name, "{l}"));
            axum::Json(json!({ "logs": logs })).into_response()
        }
        Ok(Outcome::DeadLetter { reason, description }) => {
            tracing::warn!(function = name, reason, "event refused: {description}");
            axum::Json(json!({ "refused": reason, "description": description })).into_response()
        }
        Err(e) => error(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), e.to_string()),
    }
}

/// The validation code of an Event Grid (schema) subscription handshake, if this is one.
fn validation_code(headers: &HeaderMap, events: &[Value]) -> Option<String> {
    let header_says = headers.get("aeg-event-type").is_some_and(|v| v == "SubscriptionValidation");
    events.iter().find_map(|e| {
        let is_validation =
            e.get("eventType").and_then(Value::as_str) == Some("Microsoft.EventGrid.SubscriptionValidationEvent");
        (header_says || is_validation)
            .then(|| e.pointer("/data/validationCode").and_then(Value::as_str).map(str::to_owned))?
    })
}

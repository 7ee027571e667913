//! The Azure Functions custom handler: an axum server on `FUNCTIONS_CUSTOMHANDLER_PORT` that the
//! Functions host POSTs invocations to (`/{function}`), plus forwarded HTTP requests
//! (`/api/status`, with `enableForwardingHttpRequest`) and `/healthz`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::payload::{error_response, parse_invocation, response, trigger_input};
use crate::app::AppState;
use crate::handlers::{self, HandlerError, Outcome, TriggerInput};

/// The handler's routes.
pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/status", get(forwarded_status))
        .route("/{function}", post(invoke))
        .with_state(app)
}

/// One HandlerError → status mapping, used by every route.
struct Failure(HandlerError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), "{}", self.0);
        } else {
            tracing::warn!(status = status.as_u16(), "{}", self.0);
        }
        (status, axum::Json(error_response(&self.0))).into_response()
    }
}

async fn invoke(State(app): State<AppState>, Path(function): Path<String>, body: Bytes) -> Response {
    match run_invocation(&app, &function, &body).await {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) => Failure(e).into_response(),
    }
}

async fn run_invocation(app: &AppState, function: &str, body: &[u8]) -> Result<Value, HandlerError> {
    let def = app.function(function).ok_or_else(|| HandlerError::UnknownFunction(function.to_owned()))?.clone();
    let invocation = parse_invocation(body)?;
    let input = trigger_input(&def, &invocation)?;
    let message = match &input {
        TriggerInput::Message(m) => Some(m.clone()),
        _ => None,
    };
    match handlers::dispatch(app, &def, input).await? {
        Outcome::Done { logs, body } => Ok(response(&def, logs, body)),
        Outcome::DeadLetter { reason, description } => {
            let Some(message) = message else {
                return Err(HandlerError::Internal(format!("{function} asked to dead-letter a non-message")));
            };
            // The host cannot dead-letter for a custom handler: park it, then complete it.
            handlers::record_dead_letter(app, &message, &reason, &description, true).await?;
            let log = format!("message {} dead-lettered ({reason}): {description}", message.message_id);
            Ok(response(&def, vec![log], None))
        }
    }
}

async fn forwarded_status(State(app): State<AppState>) -> Response {
    match handlers::status::report(&app).await {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) => Failure(e).into_response(),
    }
}

/// Serves the custom handler on `127.0.0.1:port` until `shutdown` resolves.
///
/// # Errors
/// When the port cannot be bound.
pub async fn serve(
    app: AppState,
    port: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(port, "custom handler listening");
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown).await
}

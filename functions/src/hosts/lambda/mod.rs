//! The AWS Lambda host: a custom runtime (`lifeboat lambda`, started by a `bootstrap` that
//! execs it) that polls the Lambda Runtime API and hands each event to the same handlers as
//! the Azure host. EventBridge scheduled events fire the timer functions (see [`events`] for
//! how rule and queue names map to functions); SQS batches go to the queue functions and are
//! answered with partial batch failures (see [`sqs_batch`]).

pub mod events;
pub mod runtime_api;
pub mod sqs_batch;

use serde_json::{Value, json};
use tracing::Instrument;

use self::events::{EventError, LambdaEvent, app_name};
use self::runtime_api::{NextInvocation, RuntimeApi, RuntimeApiError};
use crate::app::AppState;
use crate::function_defs::TriggerKind;
use crate::handlers::{self, HandlerError, Outcome, TimerInput, TriggerInput};

/// Why an invocation failed as a whole (answered on `/error`; Lambda retries asynchronous
/// invocations such as scheduled events).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The event is not one the app understands.
    #[error(transparent)]
    Event(#[from] EventError),
    /// A scheduled rule names no timer function.
    #[error("rule {rule:?} names no timer function (expected e.g. lifeboat-schedule_tick)")]
    UnknownRule {
        /// The rule.
        rule: String,
    },
    /// The timer function failed.
    #[error(transparent)]
    Handler(#[from] HandlerError),
}

impl InvocationError {
    /// The `errorType` reported to Lambda.
    pub fn error_type(&self) -> &'static str {
        match self {
            InvocationError::Event(_) => "Lifeboat.UnrecognisedEvent",
            InvocationError::UnknownRule { .. } => "Lifeboat.UnknownRule",
            InvocationError::Handler(e) if e.status() < 500 => "Lifeboat.InvalidInvocation",
            InvocationError::Handler(_) => "Lifeboat.HandlerFailed",
        }
    }
}

/// Handles invocations until the Runtime API cannot be reached.
///
/// # Errors
/// The [`RuntimeApiError`] of the `next` call that failed.
pub async fn serve(app: AppState, api: &RuntimeApi) -> Result<(), RuntimeApiError> {
    loop {
        let invocation = api.next().await?;
        let span = tracing::info_span!("lambda", request.id = %invocation.request_id);
        let answered = match handle(&app, &invocation).instrument(span).await {
            Ok(response) => api.respond(&invocation.request_id, &response).await,
            Err(e) => {
                tracing::error!(request.id = %invocation.request_id, error.kind = e.error_type(), "{e}");
                api.fail(&invocation.request_id, e.error_type(), &e.to_string()).await
            }
        };
        if let Err(e) = answered {
            tracing::error!(request.id = %invocation.request_id, "answering the invocation: {e}");
        }
    }
}

/// Handles one invocation: the response document, or why it failed as a whole.
///
/// # Errors
/// [`InvocationError`] for an unknown event or rule, or a failed timer function.
pub async fn handle(app: &AppState, invocation: &NextInvocation) -> Result<Value, InvocationError> {
    match events::parse(&invocation.event)? {
        LambdaEvent::Sqs(records) => Ok(sqs_batch::handle(app, &records, || invocation.remaining()).await),
        LambdaEvent::Scheduled { rule } => {
            let name = app_name(&rule);
            let function = app
                .functions
                .iter()
                .find(|f| f.name == name && matches!(f.trigger, TriggerKind::Timer { .. }))
                .cloned()
                .ok_or_else(|| InvocationError::UnknownRule { rule: rule.clone() })?;
            match handlers::dispatch(app, &function, TriggerInput::Timer(TimerInput::default())).await? {
                Outcome::Done { logs, .. } => Ok(json!({ "function": function.name, "logs": logs })),
                Outcome::DeadLetter { reason, description } => Err(HandlerError::Internal(format!(
                    "timer function {} asked to dead-letter ({reason}): {description}",
                    function.name
                ))
                .into()),
            }
        }
    }
}

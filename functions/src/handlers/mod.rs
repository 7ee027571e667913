//! The handlers: one file per function. Each reads as: parse the trigger's input, call the
//! library, say what happened. Hosts (the Functions custom handler, the local runtime) turn
//! their transport's payloads into a [`TriggerInput`] and an [`Outcome`] back into theirs.

mod backup;
mod copy;
mod dead_letter;
mod drill;
mod message;
mod prune;
mod restore;
mod schedule_tick;
mod snapshot_check;
mod staleness;
pub mod status;
mod upgrade_event;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use dead_letter::record_dead_letter;

use crate::app::AppState;
use crate::function_defs::FunctionDef;

/// A timer firing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerInput {
    /// The host fired it late (after downtime).
    pub is_past_due: bool,
}

/// A queue message as delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageInput {
    /// The queue it came from.
    pub queue: String,
    /// The sender's message id.
    pub message_id: String,
    /// The body.
    pub body: Vec<u8>,
    /// How many times it has been delivered (this time included).
    pub delivery_count: u32,
    /// When it was enqueued, where known.
    pub enqueued_time: Option<DateTime<Utc>>,
}

impl From<&lifeboat_shared::ports::ReceivedMessage> for MessageInput {
    fn from(m: &lifeboat_shared::ports::ReceivedMessage) -> Self {
        Self {
            queue: m.queue.clone(),
            message_id: m.message_id.clone(),
            body: m.body.clone(),
            delivery_count: m.delivery_count,
            enqueued_time: Some(m.enqueued_time),
        }
    }
}

/// An HTTP request to an HTTP-triggered function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpInput {
    /// The method.
    pub method: String,
    /// Query parameters.
    pub query: BTreeMap<String, String>,
}

/// What triggered an invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerInput {
    /// A timer.
    Timer(TimerInput),
    /// A queue message.
    Message(MessageInput),
    /// An Event Grid delivery: one event or an array of them (Event Grid schema or
    /// CloudEvents 1.0).
    Event(Value),
    /// An HTTP request.
    Http(HttpInput),
}

/// What a handler did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The work is done (or nothing was to do).
    Done {
        /// Lines for the host's log.
        logs: Vec<String>,
        /// A response body (HTTP functions).
        body: Option<Value>,
    },
    /// The message can never succeed: the host dead-letters it with this reason.
    DeadLetter {
        /// Machine-readable reason, e.g. `InvalidMessage`.
        reason: String,
        /// Human-readable detail.
        description: String,
    },
}

impl Outcome {
    fn done(logs: Vec<String>) -> Self {
        Outcome::Done { logs, body: None }
    }
}

/// Why a handler failed. Each variant has one HTTP status, decided in [`HandlerError::status`].
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The invocation itself is malformed (not the message it carries): 400, never retried.
    #[error("invalid invocation: {0}")]
    BadInvocation(String),
    /// No such function: 404.
    #[error("no function named {0:?}")]
    UnknownFunction(String),
    /// The function's trigger does not match the input: 400.
    #[error("function {function} is not triggered by {given}")]
    WrongTrigger {
        /// The function.
        function: String,
        /// What was given.
        given: &'static str,
    },
    /// A dependency failed in a way a retry may fix: 503.
    #[error("{0}")]
    Transient(String),
    /// Anything else: 500.
    #[error("{0}")]
    Internal(String),
}

impl HandlerError {
    /// The HTTP status this error answers with. 4xx: the host must not retry; 5xx: the host
    /// (or the local pump) retries, and Service Bus dead-letters past its max delivery count.
    pub fn status(&self) -> u16 {
        match self {
            HandlerError::BadInvocation(_) | HandlerError::WrongTrigger { .. } => 400,
            HandlerError::UnknownFunction(_) => 404,
            HandlerError::Transient(_) => 503,
            HandlerError::Internal(_) => 500,
        }
    }
}

/// The ports a backup step uses, from the app and a connected cluster.
fn backup_deps<'a>(
    app: &'a AppState,
    cluster: &'a dyn lifeboat_shared::ports::Cluster,
) -> lifeboat_shared::workflows::backup::Deps<'a> {
    lifeboat_shared::workflows::backup::Deps {
        state: app.state.as_ref(),
        objects: app.objects.as_ref(),
        bus: app.bus.as_ref(),
        cluster,
        now: app.clock.now(),
    }
}

/// A 5xx for an error a retry may fix, else a 500 that still lets the host retry a few times.
fn retryable(transient: bool, message: String) -> HandlerError {
    if transient { HandlerError::Transient(message) } else { HandlerError::Internal(message) }
}

/// Runs `function` on `input`.
///
/// # Errors
/// [`HandlerError`]; see [`HandlerError::status`] for what each means to the host.
pub async fn dispatch(app: &AppState, function: &FunctionDef, input: TriggerInput) -> Result<Outcome, HandlerError> {
    use tracing::Instrument;
    let span = tracing::info_span!("invocation", function = function.name);
    run(app, function, input).instrument(span).await
}

async fn run(app: &AppState, function: &FunctionDef, input: TriggerInput) -> Result<Outcome, HandlerError> {
    match (function.name, input) {
        ("schedule_tick", TriggerInput::Timer(t)) => schedule_tick::handle(app, t).await,
        ("prune", TriggerInput::Timer(t)) => prune::handle(app, t).await,
        ("staleness", TriggerInput::Timer(t)) => staleness::handle(app, t).await,
        ("drill", TriggerInput::Timer(t)) => drill::handle(app, t).await,
        ("backup", TriggerInput::Message(m)) => backup::handle(app, &m).await,
        ("snapshot_check", TriggerInput::Message(m)) => snapshot_check::handle(app, &m).await,
        ("copy", TriggerInput::Message(m)) => copy::handle(app, &m).await,
        ("restore", TriggerInput::Message(m)) => restore::handle(app, &m).await,
        ("upgrade_event", TriggerInput::Event(e)) => upgrade_event::handle(app, &e).await,
        ("status", TriggerInput::Http(_)) => status::handle(app).await,
        (name, input) => Err(HandlerError::WrongTrigger {
            function: name.to_owned(),
            given: match input {
                TriggerInput::Timer(_) => "a timer",
                TriggerInput::Message(_) => "a queue message",
                TriggerInput::Event(_) => "an Event Grid event",
                TriggerInput::Http(_) => "an HTTP request",
            },
        }),
    }
}

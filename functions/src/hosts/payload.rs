//! The Azure Functions custom handler protocol: invocation requests
//! (`{"Data": …, "Metadata": …}`) into [`TriggerInput`]s, and [`Outcome`]s into invocation
//! responses (`{"Outputs": …, "Logs": […], "ReturnValue": …}`).
//!
//! Metadata is read leniently (keys case-insensitive, missing allowed): the host's exact
//! shapes for Service Bus and Event Grid are not published.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::function_defs::{FunctionDef, TriggerKind};
use crate::handlers::{HandlerError, HttpInput, MessageInput, TimerInput, TriggerInput};

/// A parsed invocation request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invocation {
    pub data: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

fn bad(reason: impl Into<String>) -> HandlerError {
    HandlerError::BadInvocation(reason.into())
}

/// Parses the request body.
pub(crate) fn parse_invocation(body: &[u8]) -> Result<Invocation, HandlerError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(bad("body must be a JSON object with Data and Metadata"));
    };
    let mut take = |key: &str| -> Result<Map<String, Value>, HandlerError> {
        match take_ci(&mut top, key) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m),
            Some(_) => Err(bad(format!("{key} must be a JSON object"))),
        }
    };
    Ok(Invocation { data: take("Data")?, metadata: take("Metadata")? })
}

/// Removes `key` from `map`, ignoring ASCII case.
fn take_ci(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let found = map.keys().find(|k| k.eq_ignore_ascii_case(key))?.clone();
    map.remove(&found)
}

fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Builds the trigger input `function` expects from an invocation.
pub(crate) fn trigger_input(function: &FunctionDef, inv: &Invocation) -> Result<TriggerInput, HandlerError> {
    let input = get_ci(&inv.data, &function.binding);
    let missing = || bad(format!("Data has no {:?} (the trigger binding of {})", function.binding, function.name));
    match &function.trigger {
        TriggerKind::Timer { .. } => {
            let timer = match input {
                Some(Value::Object(t)) => t,
                Some(Value::Null) | None => return Err(missing()),
                Some(_) => return Err(bad(format!("Data.{} must be a timer object", function.binding))),
            };
            let is_past_due = get_ci(timer, "IsPastDue").and_then(Value::as_bool).unwrap_or(false);
            Ok(TriggerInput::Timer(TimerInput { is_past_due }))
        }
        TriggerKind::ServiceBus { queue } => {
            let body = match input.ok_or_else(missing)? {
                Value::String(s) => s.clone().into_bytes(),
                Value::Null => return Err(missing()),
                other => other.to_string().into_bytes(),
            };
            let meta = &inv.metadata;
            let message_id = get_ci(meta, "MessageId").and_then(as_string).unwrap_or_else(|| {
                format!("unidentified-{}", lifeboat_shared::domain::ids::short_hash(&String::from_utf8_lossy(&body)))
            });
            let delivery_count = get_ci(meta, "DeliveryCount")
                .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1);
            let enqueued_time = get_ci(meta, "EnqueuedTimeUtc")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc));
            Ok(TriggerInput::Message(MessageInput {
                queue: queue.clone(),
                message_id,
                body,
                delivery_count,
                enqueued_time,
            }))
        }
        TriggerKind::EventGrid => match input.ok_or_else(missing)? {
            Value::String(s) => serde_json::from_str(s)
                .map(TriggerInput::Event)
                .map_err(|e| bad(format!("Data.{} is not a JSON event: {e}", function.binding))),
            Value::Object(_) | Value::Array(_) => Ok(TriggerInput::Event(input.cloned().unwrap_or(Value::Null))),
            _ => {
                Err(bad(format!("Data.{} must be an Event Grid event object (or an array of them)", function.binding)))
            }
        },
        TriggerKind::Http { .. } => {
            let req = match input {
                Some(Value::Object(r)) => r,
                _ => return Err(missing()),
            };
            let method = get_ci(req, "Method").and_then(Value::as_str).unwrap_or("GET").to_ascii_uppercase();
            // The host sends Query as an object, or (in the docs' sample) as a JSON string.
            let query = match get_ci(req, "Query") {
                Some(Value::Object(q)) => q.clone(),
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
                _ => Map::new(),
            };
            let query: BTreeMap<String, String> =
                query.iter().filter_map(|(k, v)| Some((k.clone(), as_string(v)?))).collect();
            Ok(TriggerInput::Http(HttpInput { method, query }))
        }
    }
}

/// The invocation response for a finished handler.
pub(crate) fn response(function: &FunctionDef, logs: Vec<String>, body: Option<Value>) -> Value {
    let mut outputs = Map::new();
    if let Some(out) = &function.http_output {
        outputs.insert(
            out.clone(),
            json!({
                "statusCode": 200,
                "body": body.as_ref().map(Value::to_string).unwrap_or_default(),
                "headers": { "Content-Type": "application/json" },
            }),
        );
    }
    json!({ "Outputs": outputs, "Logs": logs, "ReturnValue": Value::Null })
}

/// The invocation response for a failed handler (sent with the error's status).
pub(crate) fn error_response(error: &HandlerError) -> Value {
    json!({ "Outputs": {}, "Logs": [error.to_string()], "ReturnValue": Value::Null, "Error": error.to_string() })
}

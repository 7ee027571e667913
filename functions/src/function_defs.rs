//! The functions of the app, read from the same `functions/*/function.json` files the Azure
//! Functions host reads (embedded at build time, so the binary and the package agree).

use serde::Deserialize;

/// `(function name, function.json text)` for every function of the app.
pub const FUNCTION_JSON: [(&str, &str); 10] = [
    ("schedule_tick", include_str!("../schedule_tick/function.json")),
    ("upgrade_event", include_str!("../upgrade_event/function.json")),
    ("backup", include_str!("../backup/function.json")),
    ("snapshot_check", include_str!("../snapshot_check/function.json")),
    ("copy", include_str!("../copy/function.json")),
    ("prune", include_str!("../prune/function.json")),
    ("staleness", include_str!("../staleness/function.json")),
    ("restore", include_str!("../restore/function.json")),
    ("drill", include_str!("../drill/function.json")),
    ("status", include_str!("../status/function.json")),
];

/// What starts a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerKind {
    /// A timer on a six-field NCRONTAB schedule.
    Timer {
        /// The schedule as written (may be `%Setting%`, resolved from the environment).
        schedule: String,
        /// Fire once when the host starts.
        run_on_startup: bool,
    },
    /// A Service Bus queue.
    ServiceBus {
        /// The queue.
        queue: String,
    },
    /// Event Grid events.
    EventGrid,
    /// An HTTP request.
    Http {
        /// The route under `/api/`.
        route: String,
    },
}

/// One function: its name, its trigger and the trigger binding's name (the key of its input
/// under `Data` in invocation requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDef {
    /// The function's name (its folder).
    pub name: &'static str,
    /// The trigger binding's `name`.
    pub binding: String,
    /// The trigger.
    pub trigger: TriggerKind,
    /// The name of the `http` output binding, for HTTP functions.
    pub http_output: Option<String>,
}

#[derive(Deserialize)]
struct FunctionJson {
    bindings: Vec<Binding>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Binding {
    #[serde(rename = "type")]
    kind: String,
    direction: String,
    name: String,
    schedule: Option<String>,
    #[serde(default)]
    run_on_startup: bool,
    queue_name: Option<String>,
    route: Option<String>,
}

/// Why a function.json could not be read.
#[derive(Debug, thiserror::Error)]
#[error("functions/{function}/function.json: {problem}")]
pub struct DefinitionError {
    function: String,
    problem: String,
}

/// Parses one function.json.
///
/// # Errors
/// When it is not valid JSON, has no trigger binding, or a trigger this app cannot serve.
pub fn parse(name: &'static str, text: &str) -> Result<FunctionDef, DefinitionError> {
    let fail = |problem: String| DefinitionError { function: name.to_owned(), problem };
    let json: FunctionJson = serde_json::from_str(text).map_err(|e| fail(e.to_string()))?;
    let http_output = json.bindings.iter().find(|b| b.direction == "out" && b.kind == "http").map(|b| b.name.clone());
    let trigger = json
        .bindings
        .into_iter()
        .find(|b| b.direction == "in" && b.kind.ends_with("Trigger"))
        .ok_or_else(|| fail("has no trigger binding".to_owned()))?;
    let kind = match trigger.kind.as_str() {
        "timerTrigger" => TriggerKind::Timer {
            schedule: trigger.schedule.ok_or_else(|| fail("timerTrigger has no schedule".into()))?,
            run_on_startup: trigger.run_on_startup,
        },
        "serviceBusTrigger" => TriggerKind::ServiceBus {
            queue: trigger.queue_name.ok_or_else(|| fail("serviceBusTrigger has no queueName".into()))?,
        },
        "eventGridTrigger" => TriggerKind::EventGrid,
        "httpTrigger" => TriggerKind::Http { route: trigger.route.unwrap_or_else(|| name.to_owned()) },
        other => return Err(fail(format!("trigger type {other} is not served by this app"))),
    };
    Ok(FunctionDef { name, binding: trigger.name, trigger: kind, http_output })
}

/// Every function of the app.
///
/// # Errors
/// The first function.json that cannot be read (a build defect: a test reads them all).
pub fn all() -> Result<Vec<FunctionDef>, DefinitionError> {
    FUNCTION_JSON.iter().map(|(name, text)| parse(name, text)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_definition_parses() {
        let defs = all().unwrap();
        assert_eq!(defs.len(), 10);
        let tick = defs.iter().find(|d| d.name == "schedule_tick").unwrap();
        assert!(matches!(&tick.trigger, TriggerKind::Timer { schedule, .. } if schedule == "0 */5 * * * *"));
        let backup = defs.iter().find(|d| d.name == "backup").unwrap();
        assert_eq!(backup.trigger, TriggerKind::ServiceBus { queue: "backup-requests".into() });
    }

    #[test]
    fn a_definition_without_trigger_is_refused() {
        let err = parse("x", r#"{"bindings":[{"type":"http","direction":"out","name":"res"}]}"#).unwrap_err();
        assert_eq!(err.to_string(), "functions/x/function.json: has no trigger binding");
    }
}

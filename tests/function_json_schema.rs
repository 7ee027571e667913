//! `host.json` and every `functions/*/function.json` against SchemaStore's schemas, plus the
//! invariants the schemas cannot express (the function set, queue names, identity-based
//! connections, no chaining through output bindings, how the host starts the handler).
//!
//! The schemas live outside the repository, in `<workspace root>/../shared/reference/functions/`.
//! Every `$ref` in them is a local JSON pointer (`#/definitions/...`) and the meta-schemas they
//! declare (draft-04 and draft-07) are bundled with `jsonschema`, so the validators are built
//! with no resolver at all (`default-features = false`); `schemas_only_reference_themselves`
//! fails if an upstream refresh ever adds a remote reference.
//!
//! `function.schema.json` declares draft-04 but uses `const` (draft-06) to tell the `sql` and
//! `mysql` output bindings apart. A strict draft-04 validator ignores `const`, so those branches
//! match every binding and the `oneOf` over binding kinds rejects every document, SchemaStore's
//! own samples included. It is therefore validated as draft-06, the oldest draft with `const`;
//! `validators_accept_schemastore_samples` keeps that choice honest.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

/// The architecture's functions (ARCHITECTURE.md, "Functions"), each with its trigger.
const FUNCTIONS: [(&str, Trigger); 10] = [
    ("schedule_tick", Trigger::Timer),
    ("upgrade_event", Trigger::EventGrid),
    ("backup", Trigger::ServiceBus("backup-requests")),
    ("snapshot_check", Trigger::ServiceBus("snapshot-checks")),
    ("copy", Trigger::ServiceBus("copy-requests")),
    ("prune", Trigger::Timer),
    ("staleness", Trigger::Timer),
    ("restore", Trigger::ServiceBus("restore-requests")),
    ("drill", Trigger::Timer),
    ("status", Trigger::Http),
];

/// The queues functions may be triggered from.
const QUEUES: [&str; 4] = ["backup-requests", "snapshot-checks", "copy-requests", "restore-requests"];

/// The app-setting prefix of the identity-based Service Bus connection
/// (`ServiceBusConnection__fullyQualifiedNamespace`).
const SERVICE_BUS_CONNECTION: &str = "ServiceBusConnection";

#[derive(Clone, Copy, Debug)]
enum Trigger {
    Timer,
    EventGrid,
    ServiceBus(&'static str),
    Http,
}

impl Trigger {
    /// The trigger's binding type and the binding name the handler reads under `Data`.
    fn binding(self) -> (&'static str, &'static str) {
        match self {
            Trigger::Timer => ("timerTrigger", "timer"),
            Trigger::EventGrid => ("eventGridTrigger", "event"),
            Trigger::ServiceBus(_) => ("serviceBusTrigger", "message"),
            Trigger::Http => ("httpTrigger", "req"),
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn reference(relative: &str) -> PathBuf {
    repo_root().join("../shared/reference/functions").join(relative)
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// A validator for `schema_file`, in its declared draft unless `draft` overrides it.
fn validator(schema_file: &str, draft: Option<Draft>) -> Validator {
    let schema = read_json(&reference(schema_file));
    let options = match draft {
        Some(draft) => jsonschema::options().with_draft(draft),
        None => jsonschema::options(),
    };
    options.build(&schema).unwrap_or_else(|e| panic!("compile {schema_file}: {e}"))
}

fn host_validator() -> Validator {
    validator("schemas/host.schema.json", None)
}

/// Draft-06 rather than the declared draft-04: see the module documentation.
fn function_validator() -> Validator {
    validator("schemas/function.schema.json", Some(Draft::Draft6))
}

/// Every schema violation of `instance`, one line each, with where it is.
fn violations(validator: &Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("at '{}': {e}", e.instance_path())).collect()
}

fn assert_valid(validator: &Validator, instance: &Value, what: &str) {
    let errors = violations(validator, instance);
    assert!(errors.is_empty(), "{what} does not match its schema:\n  {}", errors.join("\n  "));
}

/// `(folder name, parsed function.json)` for every folder under `functions/` that holds a
/// `function.json`, which is how the Functions host discovers functions.
fn function_definitions() -> Vec<(String, Value)> {
    let dir = repo_root().join("functions");
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
    let mut found: Vec<(String, Value)> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("list {}: {e}", dir.display())).path())
        .filter(|path| path.join("function.json").is_file())
        .map(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).expect("function folder names are UTF-8").to_owned();
            (name, read_json(&path.join("function.json")))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn bindings(function: &Value) -> &[Value] {
    function["bindings"].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Every `$ref` in `schema` that is not a pointer into the document itself.
fn non_local_refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) if !target.starts_with("#/") => out.push(target.clone()),
                    _ => non_local_refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| non_local_refs(item, out)),
        _ => {}
    }
}

#[test]
fn schemas_only_reference_themselves() {
    for file in ["schemas/host.schema.json", "schemas/function.schema.json"] {
        let mut remote = Vec::new();
        non_local_refs(&read_json(&reference(file)), &mut remote);
        assert!(remote.is_empty(), "{file} references other documents, which need a resolver: {remote:?}");
    }
}

#[test]
fn validators_accept_schemastore_samples() {
    let host = host_validator();
    for sample in ["host_host.v2.json", "host_host.v2.servicebus-v5.json"] {
        assert_valid(&host, &read_json(&reference(&format!("schemastore-test-samples/{sample}"))), sample);
    }
    let function = function_validator();
    for sample in ["TimerTrigger", "ServiceBusQueueTrigger", "ServiceBusTopicTrigger", "BlobTrigger", "HttpTrigger"] {
        let file = format!("schemastore-test-samples/function_{sample}.json");
        assert_valid(&function, &read_json(&reference(&file)), &file);
    }
}

#[test]
fn validators_reject_invalid_documents() {
    let function = function_validator();
    let mut sideways = json!({"bindings": [{
        "type": "serviceBusTrigger", "direction": "in", "name": "message",
        "queueName": "backup-requests", "connection": SERVICE_BUS_CONNECTION,
    }]});
    assert_valid(&function, &sideways, "the unmodified control binding");
    sideways["bindings"][0]["direction"] = json!("sideways");
    assert!(!function.is_valid(&sideways), "a binding with direction \"sideways\" passed validation");
    let timer_output =
        json!({"bindings": [{"type": "timerTrigger", "direction": "out", "name": "timer", "schedule": "0 * * * * *"}]});
    assert!(!function.is_valid(&timer_output), "a timerTrigger output binding passed validation");

    let host = host_validator();
    let mut misspelt = read_json(&repo_root().join("host.json"));
    misspelt["customHandler"]["enableForwardingHttpRequests"] = json!(true);
    assert!(!host.is_valid(&misspelt), "a misspelt customHandler property passed validation");
}

#[test]
fn host_json_matches_schema() {
    assert_valid(&host_validator(), &read_json(&repo_root().join("host.json")), "host.json");
}

#[test]
fn every_function_json_matches_schema() {
    let validator = function_validator();
    for (name, function) in function_definitions() {
        assert_valid(&validator, &function, &format!("functions/{name}/function.json"));
    }
}

#[test]
fn function_folders_are_exactly_the_architecture() {
    let found: BTreeSet<String> = function_definitions().into_iter().map(|(name, _)| name).collect();
    let expected: BTreeSet<String> = FUNCTIONS.iter().map(|(name, _)| (*name).to_owned()).collect();
    assert_eq!(found, expected, "function folders (with a function.json) differ from ARCHITECTURE.md");
}

#[test]
fn each_function_has_its_trigger() {
    let definitions = function_definitions();
    for (name, trigger) in FUNCTIONS {
        let Some((_, function)) = definitions.iter().find(|(found, _)| found == name) else {
            panic!("functions/{name}/function.json is missing");
        };
        let triggers: Vec<&Value> =
            bindings(function).iter().filter(|b| b["type"].as_str().is_some_and(|t| t.ends_with("Trigger"))).collect();
        let [binding] = triggers.as_slice() else {
            panic!("{name}: expected exactly one trigger binding, found {}", triggers.len());
        };
        let (kind, binding_name) = trigger.binding();
        assert_eq!(binding["type"], kind, "{name}: trigger type");
        assert_eq!(binding["name"], binding_name, "{name}: trigger binding name (the key under Data)");
        assert_eq!(binding["direction"], "in", "{name}: trigger direction");
        match trigger {
            Trigger::ServiceBus(queue) => assert_eq!(binding["queueName"], queue, "{name}: queue"),
            Trigger::Timer => {
                let schedule = binding["schedule"].as_str().unwrap_or_default();
                assert_eq!(schedule.split_whitespace().count(), 6, "{name}: NCRONTAB needs 6 fields: {schedule:?}");
            }
            Trigger::EventGrid | Trigger::Http => {}
        }
    }
}

#[test]
fn service_bus_triggers_use_known_queues_and_identity_connection() {
    for (name, function) in function_definitions() {
        for binding in bindings(&function).iter().filter(|b| b["type"] == "serviceBusTrigger") {
            let queue = binding["queueName"].as_str().unwrap_or_default();
            assert!(QUEUES.contains(&queue), "{name}: queueName {queue:?} is not one of {QUEUES:?}");
            assert_eq!(binding["connection"], SERVICE_BUS_CONNECTION, "{name}: connection setting prefix");
        }
    }
}

#[test]
fn no_output_bindings_chain_messages() {
    // Chained messages are sent by the bus adapter with deterministic MessageIds; an output
    // binding cannot set one. The only output allowed is the HTTP response.
    for (name, function) in function_definitions() {
        for binding in bindings(&function).iter().filter(|b| b["direction"] != "in") {
            assert_eq!(binding["type"], "http", "{name}: unexpected output binding {binding}");
        }
    }
}

#[test]
fn no_binding_holds_a_connection_string() {
    for (name, function) in function_definitions() {
        for binding in bindings(&function) {
            let Some(fields) = binding.as_object() else { continue };
            for (key, value) in fields {
                let text = value.as_str().unwrap_or_default();
                let secret = ["SharedAccessKey", "Endpoint=", "AccountKey="].iter().any(|s| text.contains(s));
                assert!(!secret, "{name}: binding property {key:?} looks like a connection string");
            }
        }
    }
}

#[test]
fn host_runs_lifeboat_handler() {
    let host = read_json(&repo_root().join("host.json"));
    let handler = &host["customHandler"];
    assert_eq!(handler["description"]["defaultExecutablePath"], "lifeboat");
    assert_eq!(handler["description"]["arguments"], json!(["handler"]));
    let working_dir = handler["description"]["workingDirectory"].as_str().unwrap_or_default();
    assert!(working_dir.is_empty(), "workingDirectory should be the app root, found {working_dir:?}");
    assert_eq!(handler["enableForwardingHttpRequest"], true, "status is served by forwarding HTTP requests");
}

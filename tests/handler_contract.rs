//! Contract tests of the Azure Functions custom handler: realistic host payloads for each
//! trigger type, posted to the router without a socket; Outputs, Logs and status codes checked.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use lifeboat::app::{AppState, DataDir, Settings, embedded_with_clock};
use lifeboat::hosts::custom_handler::router;
use lifeboat_shared::adapters::sqlite::SqliteQueue;
use lifeboat_shared::domain::messages::{BackupRequest, decode};
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::layout::TABLE_DEAD_LETTERS;
use lifeboat_shared::ports::state_store::{Query, query_all};
use lifeboat_shared::ports::{ManualClock, QueueReceiver};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Harness {
    app: AppState,
    queue: Arc<SqliteQueue>,
    _dir: tempfile::TempDir,
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
}

fn harness(config: Option<&str>) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config.map(|c| Config::from_sources([("policy.yaml", c)]).expect("config")).unwrap_or_default();
    let clock = Arc::new(ManualClock::new(t("2026-11-22T10:20:00Z")));
    let (app, queue) =
        embedded_with_clock(&DataDir::new(dir.path()), config, Settings::default(), clock).expect("embedded app");
    Harness { app, queue, _dir: dir }
}

async fn send(h: &Harness, request: Request<Body>) -> (StatusCode, Value) {
    let response = router(h.app.clone()).oneshot(request).await.expect("router answers");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

async fn invoke(h: &Harness, function: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let request = Request::post(format!("/{function}"))
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request");
    send(h, request).await
}

fn logs(v: &Value) -> String {
    v["Logs"].as_array().map(|l| l.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n")).unwrap_or_default()
}

fn service_bus(body: Value, message_id: &str) -> String {
    json!({
        "Data": { "message": body },
        "Metadata": {
            "MessageId": message_id,
            "DeliveryCount": 1,
            "EnqueuedTimeUtc": "2026-11-22T10:19:59Z",
            "ContentType": "application/json",
            "sys": { "MethodName": "backup", "UtcNow": "2026-11-22T10:20:00Z", "RandGuid": "1b6b1c1e-2a43-4b8e-9f0e-3a1d6c1d2b11" }
        }
    })
    .to_string()
}

fn backup_request() -> Value {
    json!({
        "schemaVersion": 1,
        "backupId": "hourly-20261122t100000z",
        "cluster": "prod",
        "policy": "hourly",
        "reason": { "kind": "scheduled", "slot": "2026-11-22T10:00:00Z" },
        "requestedAt": "2026-11-22T10:00:01Z"
    })
}

#[tokio::test]
async fn a_captured_timer_invocation_with_no_policy_answers_that_nothing_is_configured() {
    let h = harness(None);
    let payload = support::reference_json("functions/captured-examples/timer-trigger.request.json");
    let (status, body) = invoke(&h, "schedule_tick", payload.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["Outputs"], json!({}));
    assert!(body["ReturnValue"].is_null());
    assert!(logs(&body).contains("no backup policy is configured"), "{body}");
}

#[tokio::test]
async fn a_timer_invocation_requests_the_due_backup_once() {
    let h = harness(Some(support::HOURLY_POLICY));
    let payload = support::reference_json("functions/captured-examples/timer-info.with-schedule-status.json");
    let invocation = json!({ "Data": { "timer": payload }, "Metadata": {} }).to_string();
    let (status, body) = invoke(&h, "schedule_tick", invocation.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(logs(&body).contains("requested backup hourly-20261122t100000z"), "{body}");
    let (status, again) = invoke(&h, "schedule_tick", invocation).await;
    assert_eq!(status, StatusCode::OK);
    assert!(logs(&again).contains("nothing was due"), "{again}");

    let messages = h.queue.receive("backup-requests", 10).await.expect("receive");
    assert_eq!(messages.len(), 1, "one slot, one message");
    assert_eq!(messages[0].message_id, "prod.hourly-20261122t100000z");
    let request: BackupRequest = decode(&messages[0].body).expect("a valid BackupRequest");
    assert_eq!(request.backup_id.as_str(), "hourly-20261122t100000z");
}

#[tokio::test]
async fn a_backup_whose_cluster_cannot_be_reached_fails_with_a_5xx_naming_the_cluster() {
    let h = harness(Some(support::HOURLY_POLICY));
    let (status, body) = invoke(&h, "backup", service_bus(backup_request(), "prod.hourly-20261122t100000z")).await;
    assert!(status.is_server_error(), "the host must retry, not drop it: {status} {body}");
    let error = body["Error"].as_str().unwrap_or("");
    assert!(error.contains("connecting to cluster prod") && error.contains("kubeconfig"), "{body}");
    // The body may also arrive as a JSON string: it is read the same way.
    let as_string = Value::String(backup_request().to_string());
    let (status, body) = invoke(&h, "backup", service_bus(as_string, "m2")).await;
    assert!(body["Error"].as_str().unwrap_or("").contains("connecting to cluster prod"), "{status} {body}");
}

#[tokio::test]
async fn a_malformed_message_is_dead_lettered_with_its_reason_and_completed() {
    let h = harness(Some(support::HOURLY_POLICY));
    let (status, body) = invoke(&h, "backup", service_bus(Value::String("{ not json".into()), "bad-1")).await;
    assert_eq!(status, StatusCode::OK, "the message is completed, not retried: {body}");
    assert!(logs(&body).contains("dead-lettered (MalformedMessage)"), "{body}");
    // Delivered twice (the host retried the completion): still one record, one parked message.
    invoke(&h, "backup", service_bus(Value::String("{ not json".into()), "bad-1")).await;
    let records = query_all(h.app.state.as_ref(), TABLE_DEAD_LETTERS, &Query::all()).await.expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].str("reason"), Some("MalformedMessage"));
    assert_eq!(records[0].str("body"), Some("{ not json"));
    let parked = h.queue.receive("dead-letters", 10).await.expect("receive");
    assert_eq!(parked.len(), 1, "one parked copy, deduplicated by message id");
}

#[tokio::test]
async fn unknown_schema_versions_and_bad_fields_are_dead_lettered_with_distinct_reasons() {
    let h = harness(Some(support::HOURLY_POLICY));
    let mut future = backup_request();
    future["schemaVersion"] = json!(7);
    let (_, body) = invoke(&h, "backup", service_bus(future, "v7")).await;
    assert!(logs(&body).contains("UnsupportedSchemaVersion"), "{body}");
    let mut bad = backup_request();
    bad["cluster"] = json!("Not A Cluster");
    let (_, body) = invoke(&h, "backup", service_bus(bad, "badfield")).await;
    assert!(logs(&body).contains("InvalidMessage"), "{body}");
    assert!(logs(&body).contains("message field cluster"), "names the field: {body}");
    let mut stranger = backup_request();
    stranger["cluster"] = json!("staging");
    let (_, body) = invoke(&h, "backup", service_bus(stranger, "unknown-target")).await;
    assert!(logs(&body).contains("UnknownTarget"), "{body}");
}

#[tokio::test]
async fn malformed_invocations_get_a_4xx_with_a_reason() {
    let h = harness(None);
    let cases: [(&str, &str, &str); 6] = [
        ("schedule_tick", "not json at all", "body is not JSON"),
        ("schedule_tick", "[1,2]", "must be a JSON object"),
        ("schedule_tick", r#"{"Data": 5}"#, "Data must be a JSON object"),
        ("schedule_tick", r#"{"Data": {}, "Metadata": {}}"#, "Data has no \"timer\""),
        ("backup", r#"{"Data": {"other": 1}}"#, "Data has no \"message\""),
        ("upgrade_event", r#"{"Data": {"event": 5}}"#, "must be an Event Grid event object"),
    ];
    for (function, body, reason) in cases {
        let (status, answer) = invoke(&h, function, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{function} {body}: {answer}");
        assert!(answer["Error"].as_str().unwrap_or("").contains(reason), "{function} {body}: {answer}");
    }
    let (status, answer) = invoke(&h, "no_such_function", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

#[tokio::test]
async fn the_drill_timer_with_no_drilling_policy_starts_nothing() {
    let h = harness(Some(support::HOURLY_POLICY));
    let timer = json!({ "Data": { "timer": { "IsPastDue": false } }, "Metadata": {} }).to_string();
    let (status, body) = invoke(&h, "drill", timer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(logs(&body).contains("drill: 0 started, 0 sandbox namespace(s) deleted"), "{body}");
}

#[tokio::test]
async fn a_copy_to_a_region_without_storage_is_dead_lettered_at_once() {
    let h = harness(Some(support::HOURLY_POLICY));
    let copy = json!({"schemaVersion": 1, "backupId": "b-1", "cluster": "prod", "targetRegion": "mars", "attempt": 0});
    let (status, body) = invoke(&h, "copy", service_bus(copy, "c3")).await;
    assert_eq!(status, StatusCode::OK, "completed, not retried: {body}");
    assert!(logs(&body).contains("dead-lettered (UnknownReplicaRegion)"), "{body}");
}

#[tokio::test]
async fn a_restore_into_an_undeclared_cluster_is_dead_lettered_at_once() {
    let h = harness(Some(support::HOURLY_POLICY));
    let restore = json!({"schemaVersion": 1, "requestId": "r-1", "sourceCluster": "prod",
        "backup": {"kind": "latest"}, "targetCluster": "staging"});
    let (status, body) = invoke(&h, "restore", service_bus(restore, "r1")).await;
    assert_eq!(status, StatusCode::OK, "completed, not retried: {body}");
    assert!(logs(&body).contains("dead-lettered (UnknownCluster)"), "{body}");
}

#[tokio::test]
async fn prune_runs_on_its_timer_and_reports_what_it_kept() {
    let h = harness(Some(support::HOURLY_POLICY));
    let timer = json!({ "Data": { "timer": { "IsPastDue": false } }, "Metadata": {} }).to_string();
    let (status, answer) = invoke(&h, "prune", timer).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(logs(&answer).contains("prune: kept 0, removed 0"), "{answer}");
}

#[tokio::test]
async fn status_answers_as_an_invocation_and_as_a_forwarded_request() {
    let h = harness(Some(support::HOURLY_POLICY));
    let docs = support::reference_json("functions/docs-examples/http-order.request.json");
    let mut req = docs["Data"]["req"].clone();
    req["Method"] = json!("GET");
    req["Url"] = json!("http://localhost:7071/api/status");
    let (status, body) = invoke(&h, "status", json!({"Data": {"req": req}, "Metadata": {}}).to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let res = &body["Outputs"]["res"];
    assert_eq!(res["statusCode"], 200);
    let inner: Value = serde_json::from_str(res["body"].as_str().expect("body string")).expect("JSON body");
    assert_eq!(inner["targets"][0]["target"], "hourly.prod");

    let (status, forwarded) = send(&h, Request::get("/api/status").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(forwarded["policies"], 1);
    let (status, _) = send(&h, Request::get("/healthz").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn staleness_runs_as_a_timer_invocation() {
    let h = harness(Some(support::HOURLY_POLICY));
    let timer = json!({ "Data": { "timer": { "IsPastDue": false } }, "Metadata": {} }).to_string();
    let (status, body) = invoke(&h, "staleness", timer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(logs(&body).contains("staleness: 0 unhealthy cluster(s), 0 notification(s)"), "{body}");
}

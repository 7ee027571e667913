//! The local runtime (`lifeboat up`): its HTTP endpoint in process, and the whole binary as a
//! process — timers fire, messages are handled and chained, a SIGKILL loses and doubles
//! nothing, Ctrl-C stops cleanly.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use lifeboat::app::{DataDir, Settings, embedded};
use lifeboat::hosts::local::router;
use lifeboat_shared::adapters::sqlite::{QueueSettings, SqliteQueue, SqliteStateStore};
use lifeboat_shared::layout::TABLE_SLOT_CLAIMS;
use lifeboat_shared::ports::state_store::{Query, query_all};
use lifeboat_shared::ports::{ManualClock, QueueReceiver};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, _q) = embedded(&DataDir::new(dir.path()), Default::default(), Settings::default()).expect("app");
    let response = router(app).oneshot(request).await.expect("answer");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

const EVENT_GRID: &str = "/runtime/webhooks/eventgrid?functionName=upgrade_event";

#[tokio::test]
async fn event_grid_subscription_validation_is_answered() {
    let handshake = json!([{
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": "/subscriptions/xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
        "subject": "",
        "data": { "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/x/validate?id=y" },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2026-11-22T10:00:00Z",
        "metadataVersion": "1",
        "dataVersion": "1"
    }]);
    let request = Request::post(EVENT_GRID)
        .header("aeg-event-type", "SubscriptionValidation")
        .body(Body::from(handshake.to_string()))
        .expect("request");
    let (status, _, body) = call(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}));
}

#[tokio::test]
async fn cloudevents_abuse_protection_echoes_the_origin() {
    let request = Request::options(EVENT_GRID)
        .header("WebHook-Request-Origin", "eventgrid.azure.net")
        .body(Body::empty())
        .expect("request");
    let (status, headers, _) = call(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("webhook-allowed-origin").map(|v| v.as_bytes()), Some(&b"eventgrid.azure.net"[..]));
}

#[tokio::test]
async fn event_grid_deliveries_reach_the_handler_and_bad_ones_are_refused() {
    let cloud_event = json!({
        "specversion": "1.0", "id": "e-1", "source": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/prod",
        "type": "Microsoft.ContainerService.NewKubernetesVersionAvailable", "time": "2026-11-22T10:00:00Z", "data": {}
    });
    let post = |uri: &str, body: String| {
        Request::post(uri)
            .header("content-type", "application/cloudevents+json")
            .body(Body::from(body))
            .expect("request")
    };
    let (status, _, body) = call(post(EVENT_GRID, cloud_event.to_string())).await;
    assert_eq!(status, StatusCode::OK, "an event for a cluster nobody protects is acknowledged: {body}");
    assert!(body["logs"][0].as_str().unwrap_or("").contains("is not a protected cluster"), "{body}");
    let (status, _, _) = call(post(EVENT_GRID, "{oops".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call(post("/runtime/webhooks/eventgrid?functionName=backup", cloud_event.to_string())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "backup is not an Event Grid function");
    let (status, _, _) = call(post("/runtime/webhooks/eventgrid", cloud_event.to_string())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "functionName is required");
}

/// A running `lifeboat up` process and the lines it prints.
struct Up {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
}

const POLICY: &str = r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: { name: prod }
spec: { region: westeurope, kubeconfig: {} }
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: { name: every2s }
spec:
  clusters: [prod]
  schedule: "*/2 * * * * *"
  rpo: 1h
  retention: { keepLast: 5 }
"#;

fn start(data: &Path, config: &Path) -> Up {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["up", "--port", "0", "--timer", "schedule_tick=* * * * * *"])
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(config)
        .env("LIFEBOAT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn lifeboat up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut port = None;
    let mut printed = Vec::new();
    while port.is_none() {
        let line = lines.recv_timeout(Duration::from_secs(20)).expect("lifeboat up prints its address");
        port = line.split("http://127.0.0.1:").nth(1).and_then(|rest| rest.split(' ').next()?.parse().ok());
        printed.push(line);
    }
    assert!(
        printed.iter().any(|l| l.contains(&format!("data in {}", data.display()))),
        "prints its data dir: {printed:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "slow start: {:?}", started.elapsed());
    Up { child, port: port.expect("port"), lines }
}

fn status(up: &Up) -> Value {
    let (code, body) = support::http_get(up.port, "/status").expect("GET /status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("status JSON")
}

/// Waits until `check` holds for the status, or fails after `limit`.
fn wait_for(up: &Up, limit: Duration, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = status(up);
        if check(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {s:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn queue_total(s: &Value, queue: &str) -> u64 {
    let q = &s["queues"][queue];
    ["active", "scheduled", "locked", "dead_lettered"].iter().map(|k| q[*k].as_u64().unwrap_or(0)).sum()
}

#[test]
fn lifeboat_up_survives_sigkill_without_losing_or_doubling_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, config) = (dir.path().join("data"), dir.path().join("policy.yaml"));
    std::fs::write(&config, POLICY).expect("write policy");

    let mut up = start(&data, &config);
    // An operator's on-demand request, from another process, through the same queues.
    let enqueue = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["backup", "now", "--cluster", "prod", "--policy", "every2s", "--request-id", "pipeline-run-1", "--json"])
        .arg("--data")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .output()
        .expect("lifeboat backup now");
    assert!(enqueue.status.success(), "{}", String::from_utf8_lossy(&enqueue.stderr));
    let on_demand: Value = serde_json::from_slice(&enqueue.stdout).expect("JSON answer");
    let on_demand_id = format!("prod.{}", on_demand["backupId"].as_str().expect("backupId"));

    // Ticks chain backup requests; the backup handler takes them (and, until the backup
    // engine lands, answers 501, so they wait for a retry with backoff).
    wait_for(&up, Duration::from_secs(20), "three requests, handled", |s| {
        queue_total(s, "backup-requests") >= 3 && s["queues"]["backup-requests"]["scheduled"].as_u64() >= Some(1)
    });
    up.child.kill().expect("SIGKILL");
    up.child.wait().expect("reap");

    let mut up = start(&data, &config);
    wait_for(&up, Duration::from_secs(20), "the scheduler running again", |s| {
        s["targets"][0]["requestedLast7Days"].as_u64() >= Some(5)
    });
    let interrupt = Command::new("kill").args(["-INT", &up.child.id().to_string()]).status().expect("kill -INT");
    assert!(interrupt.success());
    let exit = up.child.wait().expect("wait");
    assert!(exit.success(), "Ctrl-C stops cleanly: {exit:?}");
    let printed: Vec<String> = up.lines.try_iter().collect();
    assert!(printed.iter().any(|l| l.contains("stopped")), "{printed:?}");

    // Every claimed slot was sent exactly once, and nothing else is on the queue.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let state = SqliteStateStore::open(&data.join("state.sqlite")).expect("state");
        let claims = query_all(&state, TABLE_SLOT_CLAIMS, &Query::all()).await.expect("claims");
        assert!(claims.iter().all(|c| c.str("state") == Some("sent")), "a clean stop leaves no unsent claim");
        let mut expected: BTreeSet<String> =
            claims.iter().map(|c| format!("prod.{}", c.str("backupId").expect("backupId"))).collect();
        assert_eq!(expected.len(), claims.len(), "one backup id per claim");
        expected.insert(on_demand_id.clone());

        // Look a day ahead: every lock has expired and every backoff has passed.
        let later = chrono::Utc::now() + chrono::Duration::days(1);
        let settings = QueueSettings { max_delivery_count: 1000, ..QueueSettings::default() };
        let queue = SqliteQueue::open(&data.join("queues.sqlite"), Arc::new(ManualClock::new(later)), settings)
            .expect("queues");
        let mut seen = Vec::new();
        loop {
            let batch = queue.receive("backup-requests", 100).await.expect("receive");
            if batch.is_empty() {
                break;
            }
            for m in batch {
                assert!(m.delivery_count >= 1);
                seen.push(m.message_id.clone());
                queue.complete(&m).await.expect("complete");
            }
        }
        seen.extend(
            queue.dead_letters("backup-requests").await.expect("dead letters").into_iter().map(|d| d.message_id),
        );
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "a message was doubled: {seen:?}");
        assert_eq!(
            unique, expected,
            "messages on the queue must be exactly the claimed slots and the on-demand request"
        );
    });
}

#[test]
fn a_tick_missed_while_down_fires_at_start_like_the_functions_schedule_monitor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, config) = (dir.path().join("data"), dir.path().join("policy.yaml"));
    std::fs::write(&config, POLICY).expect("write policy");
    std::fs::create_dir_all(&data).expect("data dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        use lifeboat_shared::ports::StateStore;
        use lifeboat_shared::ports::state_store::Entity;
        let state = SqliteStateStore::open(&data.join("state.sqlite")).expect("state");
        let an_hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
        let record = Entity::new("local", "schedule_tick").with("lastFired", an_hour_ago);
        state.upsert("timermonitor", &record).await.expect("seed the monitor");
    });
    // The tick's own schedule (every five minutes) would not fire within this test.
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["up", "--port", "0"])
        .arg("--data")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("LIFEBOAT_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let port: u16 = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split("http://127.0.0.1:").nth(1).and_then(|r| r.split(' ').next()?.parse().ok()))
        .expect("address");
    std::thread::spawn(move || lines.for_each(drop)); // keep reading: a closed pipe is not the test's point
    let deadline = Instant::now() + Duration::from_secs(10);
    let evaluated = loop {
        let (_, body) = support::http_get(port, "/status").expect("status");
        let s: Value = serde_json::from_str(&body).expect("JSON");
        if !s["targets"][0]["lastEvaluated"].is_null() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert!(evaluated, "the missed tick did not fire at start");
}

/// `lifeboat up` with its state and objects in Azure Storage (Azurite), queues local: it starts,
/// answers /status, and the scheduler's claims land in Table Storage, not in a SQLite file.
#[test]
fn lifeboat_up_keeps_its_state_in_azure_storage() {
    use lifeboat_shared::adapters::azure::{AZURITE_ACCOUNT, ClientSettings, StorageAuth, TableStateStore};
    let Some(azurite) = support::azurite::Azurite::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, config) = (dir.path().join("data"), dir.path().join("policy.yaml"));
    std::fs::write(&config, POLICY).expect("write policy");
    let table_endpoint = azurite.table_endpoint(AZURITE_ACCOUNT);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["up", "--port", "0", "--timer", "schedule_tick=* * * * * *"])
        .arg("--data")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("LIFEBOAT_LOG", "warn")
        .env("LIFEBOAT_STORAGE", "azure")
        .env("LIFEBOAT_AZURE_AUTH", "dev-key")
        .env("LIFEBOAT_BLOB_ENDPOINT", azurite.blob_endpoint(AZURITE_ACCOUNT))
        .env("LIFEBOAT_TABLE_ENDPOINT", &table_endpoint)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn lifeboat up");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    let port: u16 = lines
        .by_ref()
        .map_while(Result::ok)
        .inspect(|l| printed.push(l.clone()))
        .find_map(|l| l.split("http://127.0.0.1:").nth(1).and_then(|r| r.split(' ').next()?.parse().ok()))
        .expect("address");
    std::thread::spawn(move || lines.for_each(drop));
    let deadline = Instant::now() + Duration::from_secs(20);
    let evaluated = loop {
        let (code, body) = support::http_get(port, "/status").expect("status");
        let s: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if code == 200 && s["targets"][0]["requestedLast7Days"].as_u64() >= Some(1) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert!(evaluated, "the scheduler never claimed a slot; lifeboat up printed {printed:?}");
    assert!(printed.iter().any(|l| l.contains(&format!("state in Table Storage at {table_endpoint}"))), "{printed:?}");
    assert!(!data.join("state.sqlite").exists(), "state must live in Table Storage, not in a SQLite file");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let claims = rt.block_on(async {
        let state = TableStateStore::new(&table_endpoint, &StorageAuth::azurite(), &ClientSettings::azurite())
            .expect("table client");
        query_all(&state, TABLE_SLOT_CLAIMS, &Query::all()).await.expect("claims in Azurite")
    });
    assert!(!claims.is_empty(), "no slot claim was written to Table Storage");
    assert!(claims.iter().all(|c| c.str("backupId").is_some()), "{claims:?}");
}

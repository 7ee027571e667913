//! `upgrade_event`: Microsoft's published AKS event samples (tests/fixtures/eventgrid) in both
//! schemas, single and batched, through the Functions custom handler; malformed deliveries
//! fuzzed through the same entry point; and end to end, an upgrade event posted to
//! `lifeboat up`'s Event Grid endpoint followed by a committed pre-upgrade backup.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use lifeboat::app::{AppState, DataDir, Settings, embedded_with_clock};
use lifeboat::hosts::custom_handler::router;
use lifeboat_shared::adapters::sqlite::SqliteQueue;
use lifeboat_shared::catalog;
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::messages::{BackupReason, BackupRequest, Priority, decode};
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::domain::records::{BackupRecord, BackupState};
use lifeboat_shared::ports::{ManualClock, QueueReceiver};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The fixtures' cluster, declared with another spelling of its ARM id (ids compare
/// case-insensitively).
const ARM_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/RG-PROD/providers/Microsoft.ContainerService/managedClusters/aks-prod";

fn config_yaml(connection: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: prod }}
spec: {{ region: westeurope, {connection} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{ name: nightly }}
spec:
  clusters: [prod]
  schedule: "0 0 2 * * *"
  rpo: 26h
  retention: {{ keepLast: 7 }}
{extra}
"#
    )
}

fn fixture(name: &str, schema: &str) -> Value {
    let path = format!("{}/../tests/fixtures/eventgrid/{name}.{schema}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).expect("JSON")
}

struct Harness {
    app: AppState,
    queue: Arc<SqliteQueue>,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = config_yaml(&format!("aks: {{ resourceId: {ARM_ID} }}"), "");
    let config = Config::from_sources([("policy.yaml", yaml.as_str())]).expect("config");
    let now = DateTime::parse_from_rfc3339("2026-11-22T09:00:05Z").expect("time").with_timezone(&Utc);
    let (app, queue) =
        embedded_with_clock(&DataDir::new(dir.path()), config, Settings::default(), Arc::new(ManualClock::new(now)))
            .expect("embedded app");
    Harness { app, queue, _dir: dir }
}

/// Invokes `upgrade_event` as the Functions host does: the event (or batch) under `Data.event`.
async fn invoke(h: &Harness, body: impl Into<Body>) -> (StatusCode, Value) {
    let request =
        Request::post("/upgrade_event").header("content-type", "application/json").body(body.into()).expect("request");
    let response = router(h.app.clone()).oneshot(request).await.expect("router answers");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn deliver(h: &Harness, events: Value) -> (StatusCode, String) {
    let (status, body) = invoke(h, json!({ "Data": { "event": events }, "Metadata": {} }).to_string()).await;
    let logs = body["Logs"].as_array().map(|l| l.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"));
    (status, logs.unwrap_or_else(|| body.to_string()))
}

/// Every backup request on the local queue.
async fn requests(h: &Harness) -> Vec<BackupRequest> {
    let messages = h.queue.receive("backup-requests", 100).await.expect("receive");
    messages.iter().map(|m| decode(&m.body).expect("a valid BackupRequest")).collect()
}

#[tokio::test]
async fn both_schemas_single_and_batched_request_exactly_the_expected_backups() {
    for schema in ["eventgrid", "cloudevents"] {
        let h = harness();
        let (status, logs) = deliver(&h, fixture("lifeboat-pre-upgrade", schema)).await;
        assert_eq!(status, StatusCode::OK, "{schema}: {logs}");
        let first = requests(&h).await;
        let [request] = first.as_slice() else { panic!("{schema}: one request, got {first:?}") };
        assert_eq!(request.cluster.as_str(), "prod");
        assert_eq!(request.priority, Priority::High);
        assert_eq!(
            request.reason,
            BackupReason::PreUpgrade {
                event_id: "pipeline-run-8812-attempt-1".into(),
                current_version: Some("1.29.4".into()),
                target_version: Some("1.30.3".into()),
            }
        );

        // A batch: a rolling start (a backup), kinds the default policy does not back up on, a
        // malformed event, and the pipeline event redelivered.
        let batch = json!([
            fixture("aks-node-pool-rolling-started", schema),
            fixture("resource-write-success-managed-cluster", schema),
            fixture("aks-new-kubernetes-version-available", schema),
            fixture("scheduled-maintenance-completed", schema),
            5,
            { "id": "no-type" },
            fixture("lifeboat-pre-upgrade", schema),
        ]);
        let (status, logs) = deliver(&h, batch).await;
        assert_eq!(status, StatusCode::OK, "malformed events are acknowledged, not retried: {logs}");
        assert_eq!(logs.matches("refused and acknowledged").count(), 2, "{schema}: {logs}");
        assert!(logs.contains("already handled"), "{schema}: {logs}");
        let second = requests(&h).await;
        let [rolling] = second.as_slice() else { panic!("{schema}: exactly the rolling start, got {second:?}") };
        assert!(
            matches!(&rolling.reason, BackupReason::PreUpgrade { event_id, .. } if event_id == "4234567890abcdef1234567890abcdef12345678")
        );

        // The rolling result is recorded, and asks for nothing.
        let (status, logs) = deliver(&h, fixture("aks-node-pool-rolling-succeeded", schema)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(logs.contains(&format!("rolling succeeded recorded on backup {}", rolling.backup_id)), "{logs}");
        assert!(requests(&h).await.is_empty());
    }
}

#[tokio::test]
async fn a_fresh_backup_skips_and_an_unknown_cluster_is_acknowledged() {
    let h = harness();
    let mut record = BackupRecord::requested(
        BackupId::parse("nightly-20261122t020000z").expect("id"),
        "prod".parse().expect("cluster"),
        "nightly".parse().expect("policy"),
        BackupReason::Scheduled { slot: h.app.clock.now() },
        h.app.clock.now() - chrono::Duration::hours(1),
    );
    record.state = BackupState::Committed;
    catalog::claim(h.app.state.as_ref(), &record).await.expect("catalog");
    let (status, logs) = deliver(&h, fixture("scheduled-maintenance-started", "cloudevents")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(logs.contains("skipped: backup nightly-20261122t020000z"), "{logs}");

    let mut stranger = fixture("lifeboat-pre-upgrade", "eventgrid");
    stranger["subject"] =
        json!("/subscriptions/1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/elsewhere");
    let (status, logs) = deliver(&h, stranger).await;
    assert_eq!(status, StatusCode::OK, "acknowledged, not retried: {logs}");
    assert!(logs.contains("is not a protected cluster"), "{logs}");
    assert!(requests(&h).await.is_empty());
}

mod fuzz {
    //! Fuzz test of the handler entry point (cargo-fuzz needs nightly; proptest, already in
    //! the lock file, drives the router with arbitrary deliveries instead): no panic, and never
    //! a 5xx, which would make Event Grid retry what can never succeed.

    use proptest::prelude::*;

    use super::*;

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            prop_oneof![
                any::<String>(),
                Just("1.0".to_owned()),
                Just("Lifeboat.PreUpgrade".to_owned()),
                Just(ARM_ID.to_owned())
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 5, |inner| {
            let key = prop_oneof![
                prop::sample::select(vec![
                    "id",
                    "eventType",
                    "type",
                    "specversion",
                    "subject",
                    "source",
                    "data",
                    "eventTime"
                ])
                .prop_map(str::to_owned),
                any::<String>(),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..7).prop_map(|f| Value::Object(f.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn fuzz_handler_answers_arbitrary_events_without_panic_or_5xx(event in any_json()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let h = harness();
            let (status, body) = rt.block_on(invoke(&h, json!({ "Data": { "event": event }, "Metadata": {} }).to_string()));
            prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{status} {body}");
        }

        #[test]
        fn fuzz_handler_answers_arbitrary_bytes_without_panic_or_5xx(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let h = harness();
            let (status, body) = rt.block_on(invoke(&h, bytes));
            prop_assert!(status.is_client_error() || status == StatusCode::OK, "{status} {body}");
        }
    }
}

/// A plain HTTP/1.1 POST on 127.0.0.1: the status. Enough for a test; no client library.
fn http_post(port: u16, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/cloudevents-batch+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, answer))
}

fn backups(data: &Path, config: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["backups", "list", "--json", "--data"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .output()
        .expect("backups list");
    assert!(out.status.success(), "backups list: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v["backups"].as_array().cloned().unwrap_or_default()
}

#[test]
fn an_upgrade_event_posted_to_lifeboat_up_is_followed_by_a_committed_pre_upgrade_backup() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt
        .block_on(lifeboat_test_apiserver::TestApiServer::start(lifeboat_test_apiserver::Options {
            tls: true,
            ..Default::default()
        }))
        .expect("test API server");
    rt.block_on(server.seed_sample_app("shop")).expect("sample app");
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, config, kubeconfig) =
        (dir.path().join("data"), dir.path().join("policy.yaml"), dir.path().join("kubeconfig"));
    server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let connection =
        format!("kubeconfig: {{ path: {}, resourceId: {ARM_ID} }}", json!(kubeconfig.display().to_string()));
    std::fs::write(&config, config_yaml(&connection, "  volumes: { snapshot: false }")).expect("config");

    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["up", "--port", "0", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
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
    let port: u16 = loop {
        let line = lines.recv_timeout(Duration::from_secs(30)).expect("lifeboat up prints its address");
        if let Some(port) = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        {
            break port;
        }
    };

    // A batch, as Event Grid delivers CloudEvents to a webhook.
    let event = fixture("lifeboat-pre-upgrade", "cloudevents");
    let (status, answer) =
        http_post(port, "/runtime/webhooks/eventgrid?functionName=upgrade_event", &json!([event]).to_string())
            .expect("POST the event");
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("requested pre-upgrade backup"), "{answer}");

    let deadline = Instant::now() + Duration::from_secs(90);
    let committed = loop {
        let found = backups(&data, &config).into_iter().find(|b| b["reason"]["kind"] == "preUpgrade");
        if let Some(b) = found.filter(|b| b["state"] == "committed") {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "no committed pre-upgrade backup within 90 s: {:#?}",
            backups(&data, &config)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = child.kill();
    let _ = child.wait();

    let id = committed["backupId"].as_str().expect("backupId");
    let manifest = data.join("objects").join("backups").join("prod").join(id).join("manifest.json");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display())))
            .expect("manifest JSON");
    assert_eq!(
        manifest["reason"],
        json!({"kind": "preUpgrade", "eventId": "pipeline-run-8812-attempt-1", "currentVersion": "1.29.4", "targetVersion": "1.30.3"})
    );
    assert!(manifest["objects"].as_array().is_some_and(|o| !o.is_empty()), "the cluster's objects are in it");
    rt.block_on(server.shutdown());
}

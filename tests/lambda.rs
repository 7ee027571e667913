//! The Lambda host as a process: `lifeboat lambda` against a local server speaking the Lambda
//! Runtime API as documented (`/2018-06-01/runtime/invocation/next`, `…/{id}/response`,
//! `…/{id}/error`, `…/init/error`), fed a scheduled event, an SQS batch with one malformed
//! message, and an event it does not understand.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lifeboat_shared::adapters::sqlite::{QueueSettings, SqliteQueue, SqliteStateStore};
use lifeboat_shared::layout::TABLE_DEAD_LETTERS;
use lifeboat_shared::ports::state_store::{Query, query_all};
use lifeboat_shared::ports::{QueueReceiver, SystemClock};
use serde_json::{Value, json};
use tokio::sync::mpsc;

mod support;

const API: &str = "/2018-06-01/runtime";
const FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:lifeboat";

/// What the runtime posted back.
#[derive(Debug)]
struct Answer {
    /// The request id, or `init` for an init error.
    request_id: String,
    /// `response` or `error`.
    kind: &'static str,
    /// `Lambda-Runtime-Function-Error-Type`, for errors.
    error_type: Option<String>,
    body: Value,
}

#[derive(Clone)]
struct FakeRuntime {
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    answers: mpsc::UnboundedSender<Answer>,
}

async fn next(State(rt): State<FakeRuntime>) -> Response {
    // Long poll, as Lambda does: the runtime waits here until an event is queued.
    loop {
        let event = rt.events.lock().expect("events").pop_front();
        if let Some((id, event)) = event {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis();
            let headers = [
                ("Lambda-Runtime-Aws-Request-Id", id),
                ("Lambda-Runtime-Deadline-Ms", (now + 120_000).to_string()),
                ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN.to_owned()),
                ("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700".to_owned()),
            ];
            return (headers, axum::Json(event)).into_response();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn record(rt: &FakeRuntime, request_id: String, kind: &'static str, headers: &HeaderMap, body: &Bytes) -> StatusCode {
    let error_type = headers.get("Lambda-Runtime-Function-Error-Type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()));
    rt.answers.send(Answer { request_id, kind, error_type, body }).expect("test listening");
    StatusCode::ACCEPTED
}

async fn start_runtime_api() -> (u16, Arc<Mutex<VecDeque<(String, Value)>>>, mpsc::UnboundedReceiver<Answer>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let rt = FakeRuntime { events: Arc::default(), answers: tx };
    let events = Arc::clone(&rt.events);
    let app = Router::new()
        .route(&format!("{API}/invocation/next"), get(next))
        .route(
            &format!("{API}/invocation/{{id}}/response"),
            post(|State(rt): State<FakeRuntime>, UrlPath(id): UrlPath<String>, h: HeaderMap, b: Bytes| async move {
                record(&rt, id, "response", &h, &b)
            }),
        )
        .route(
            &format!("{API}/invocation/{{id}}/error"),
            post(|State(rt): State<FakeRuntime>, UrlPath(id): UrlPath<String>, h: HeaderMap, b: Bytes| async move {
                record(&rt, id, "error", &h, &b)
            }),
        )
        .route(
            &format!("{API}/init/error"),
            post(|State(rt): State<FakeRuntime>, h: HeaderMap, b: Bytes| async move {
                record(&rt, "init".into(), "error", &h, &b)
            }),
        )
        .with_state(rt);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, events, rx)
}

/// Kills the runtime when the test ends, passed or not.
struct Runtime(Child);

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_lambda(port: u16, data: &Path, config: &Path, kubeconfig: &Path) -> Runtime {
    start_lambda_with(port, data, config, kubeconfig, &[])
}

fn start_lambda_with(port: u16, data: &Path, config: &Path, kubeconfig: &Path, env: &[(&str, String)]) -> Runtime {
    let child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("lambda")
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("LIFEBOAT_DATA", data)
        .env("LIFEBOAT_CONFIG", config)
        .env("KUBECONFIG", kubeconfig)
        .env("LIFEBOAT_LOG", "warn")
        .env_remove("LIFEBOAT_STORAGE")
        .env_remove("LIFEBOAT_BUS")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn lifeboat lambda");
    Runtime(child)
}

async fn answer(answers: &mut mpsc::UnboundedReceiver<Answer>) -> Answer {
    tokio::time::timeout(Duration::from_secs(60), answers.recv())
        .await
        .expect("the runtime answers within a minute")
        .expect("answers")
}

const CONFIG: &str = r#"
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: { name: prod }
spec: { region: eu-west-1, kubeconfig: {} }
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

/// A cluster nobody answers for: connecting fails, as a transient fault.
const UNREACHABLE_KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
clusters: [{ name: gone, cluster: { server: "https://127.0.0.1:9" } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: gone, context: { cluster: gone, user: u } }]
current-context: gone
"#;

fn sqs_record(message_id: &str, queue: &str, body: &str, receive_count: u32) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("AQEB{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": receive_count.to_string(),
            "SentTimestamp": "1763805600000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1763805600500"
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:eu-west-1:123456789012:{queue}"),
        "awsRegion": "eu-west-1"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_events_and_sqs_batches_reach_the_handlers_with_partial_batch_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, config, kubeconfig) = (dir.path().join("data"), dir.path().join("policy.yaml"), dir.path().join("kube"));
    std::fs::write(&config, CONFIG).expect("config");
    std::fs::write(&kubeconfig, UNREACHABLE_KUBECONFIG).expect("kubeconfig");
    let (port, events, mut answers) = start_runtime_api().await;
    let _lambda = start_lambda(port, &data, &config, &kubeconfig);

    // EventBridge fires the tick: the due backup is requested on the backup queue.
    let scheduled = json!({
        "version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/lifeboat-schedule_tick"], "detail": {}
    });
    events.lock().expect("events").push_back(("tick-1".into(), scheduled));
    let tick = answer(&mut answers).await;
    assert_eq!((tick.request_id.as_str(), tick.kind), ("tick-1", "response"), "{tick:?}");
    assert_eq!(tick.body["function"], "schedule_tick");
    let logs = tick.body["logs"].as_array().expect("logs").clone();
    assert!(logs.iter().any(|l| l.as_str().is_some_and(|l| l.starts_with("requested backup"))), "{logs:?}");

    let queues = SqliteQueue::open(&data.join("queues.sqlite"), Arc::new(SystemClock), QueueSettings::default())
        .expect("queues");
    let requested = queues.receive("backup-requests", 10).await.expect("receive");
    assert!(!requested.is_empty(), "the tick sent its backup request");
    let request = String::from_utf8(requested[0].body.clone()).expect("UTF-8 request");

    // An SQS batch: a request whose cluster is unreachable (a retry may fix it), a malformed
    // message, the same request on its tenth delivery (given up, so done), and a message from
    // a queue no function reads.
    let batch = json!({ "Records": [
        sqs_record("m-transient", "lifeboat-backup-requests", &request, 1),
        sqs_record("m-malformed", "lifeboat-backup-requests", "{\"schemaVersion\": 1, \"cluster\": ", 1),
        sqs_record("m-exhausted", "backup-requests", &request, 10),
        sqs_record("m-stray", "lifeboat-mystery", "{}", 1),
    ]});
    events.lock().expect("events").push_back(("batch-1".into(), batch));
    let batch = answer(&mut answers).await;
    assert_eq!((batch.request_id.as_str(), batch.kind), ("batch-1", "response"), "{batch:?}");
    assert_eq!(batch.body, json!({ "batchItemFailures": [{ "itemIdentifier": "m-transient" }] }));

    // Dead-lettered, with their reasons: recorded and parked on the dead-letters queue.
    let state = SqliteStateStore::open(&data.join("state.sqlite")).expect("state");
    let recorded = query_all(&state, TABLE_DEAD_LETTERS, &Query::all()).await.expect("dead letters");
    let reasons: BTreeSet<(String, String)> = recorded
        .iter()
        .map(|d| (d.str("messageId").unwrap_or_default().to_owned(), d.str("reason").unwrap_or_default().to_owned()))
        .collect();
    let ids: BTreeSet<&str> = reasons.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["m-malformed", "m-stray"]), "{reasons:?}");
    assert!(reasons.contains(&("m-stray".into(), "UnknownQueue".into())), "{reasons:?}");
    let parked = queues.receive("dead-letters", 10).await.expect("receive");
    assert_eq!(parked.len(), 2, "both are on the dead-letters queue");

    // What Lambda does not recognise fails the invocation, named.
    events.lock().expect("events").push_back(("s3-1".into(), json!({"Records": [{"eventSource": "aws:s3"}]})));
    let refused = answer(&mut answers).await;
    assert_eq!((refused.request_id.as_str(), refused.kind), ("s3-1", "error"), "{refused:?}");
    assert_eq!(refused.error_type.as_deref(), Some("Lifeboat.UnrecognisedEvent"));
    assert_eq!(refused.body["errorType"], "Lifeboat.UnrecognisedEvent");
    assert!(refused.body["errorMessage"].as_str().is_some_and(|m| m.contains("SQS")), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_cannot_start_reports_an_init_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, config, kubeconfig) = (dir.path().join("data"), dir.path().join("policy.yaml"), dir.path().join("kube"));
    std::fs::write(&config, "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {}\n").expect("config");
    std::fs::write(&kubeconfig, UNREACHABLE_KUBECONFIG).expect("kubeconfig");
    let (port, _events, mut answers) = start_runtime_api().await;
    let mut lambda = start_lambda(port, &data, &config, &kubeconfig);
    let init = answer(&mut answers).await;
    assert_eq!((init.request_id.as_str(), init.kind), ("init", "error"), "{init:?}");
    assert_eq!(init.error_type.as_deref(), Some("Lifeboat.InitFailed"));
    assert!(init.body["errorMessage"].as_str().is_some_and(|m| m.contains("policy.yaml")), "{init:?}");
    let mut waited = Duration::ZERO;
    let status = loop {
        if let Some(status) = lambda.0.try_wait().expect("wait") {
            break status;
        }
        assert!(waited < Duration::from_secs(20), "the runtime exits after an init error");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    };
    assert!(!status.success(), "it exits with a failure: {status:?}");
}

/// On AWS storage (S3 and SQS on moto): the tick's backup request goes to the SQS queue the
/// backup function's event source mapping reads, named as the Lambda host expects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_aws_the_tick_sends_its_backup_request_to_sqs() {
    use lifeboat_shared::adapters::aws::{S3ObjectStore, S3Settings, SqsBus, SqsSettings};
    use support::moto::{Moto, REGION};

    let Some(moto) = Moto::start() else { return };
    let sqs =
        SqsSettings { queue_url_prefix: moto.queue_url_prefix("lifeboat-"), region: REGION.to_owned(), fifo: false };
    let bus = SqsBus::new(sqs.clone(), Moto::credentials()).expect("bus");
    bus.create_queue("backup-requests").await.expect("queue");
    let s3 = S3Settings {
        bucket: "lifeboat-backups".to_owned(),
        region: REGION.to_owned(),
        endpoint: Some(moto.endpoint()),
    };
    S3ObjectStore::new(&s3, Moto::credentials()).expect("store").create_bucket().await.expect("bucket");

    let dir = tempfile::tempdir().expect("tempdir");
    let (data, config, kubeconfig) = (dir.path().join("data"), dir.path().join("policy.yaml"), dir.path().join("kube"));
    std::fs::write(&config, CONFIG).expect("config");
    std::fs::write(&kubeconfig, UNREACHABLE_KUBECONFIG).expect("kubeconfig");
    let (port, events, mut answers) = start_runtime_api().await;
    let credentials = Moto::credentials();
    let env = [
        ("LIFEBOAT_STORAGE", "aws".to_owned()),
        ("LIFEBOAT_S3_BUCKET", s3.bucket.clone()),
        ("LIFEBOAT_S3_ENDPOINT", moto.endpoint()),
        ("LIFEBOAT_BUS", "sqs".to_owned()),
        ("LIFEBOAT_SQS_QUEUE_URL_PREFIX", sqs.queue_url_prefix.clone()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key.clone()),
    ];
    let _lambda = start_lambda_with(port, &data, &config, &kubeconfig, &env);

    let scheduled = json!({
        "version": "0", "id": "2f4c5d7e-0000-4000-8000-000000000001", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/lifeboat-schedule_tick"], "detail": {}
    });
    events.lock().expect("events").push_back(("tick-aws".into(), scheduled));
    let tick = answer(&mut answers).await;
    assert_eq!((tick.request_id.as_str(), tick.kind), ("tick-aws", "response"), "{tick:?}");
    let received = bus.receive("backup-requests", 2).await.expect("receive");
    assert_eq!(received.len(), 1, "the tick sent one backup request to SQS: {received:?}");
    let request: Value = serde_json::from_str(&received[0].body).expect("a JSON request");
    assert_eq!(request["cluster"], "prod", "{request}");
    assert!(received[0].attributes.contains_key("message-id"), "{:?}", received[0].attributes);
    assert!(!data.join("queues.sqlite").exists(), "no local queue is used on SQS");
}

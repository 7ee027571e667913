//! The adapter against a local server answering the documented Send Message contract (no
//! Service Bus emulator runs here): path `/{entity}/messages`, `Authorization: Bearer …`,
//! `BrokerProperties` JSON with an RFC 1123 `ScheduledEnqueueTimeUtc`, custom properties as
//! headers, 201 on success, duplicate detection by `MessageId`; failures can be injected.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use super::*;

const TOKEN: &str = "test-token-3f9c0d2e-never-print-me";

/// A fixed token; records the scopes asked for.
#[derive(Debug, Default)]
struct StaticToken {
    scopes: Mutex<Vec<String>>,
}

#[async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        self.scopes.lock().expect("lock").extend(scopes.iter().map(|s| (*s).to_owned()));
        let expires = azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1);
        Ok(AccessToken::new(Secret::new(TOKEN), expires))
    }
}

/// A message as the server stored it.
#[derive(Debug, Clone)]
struct Stored {
    entity: String,
    broker: serde_json::Map<String, Value>,
    content_type: Option<String>,
    properties: BTreeMap<String, String>,
    body: Vec<u8>,
}

#[derive(Debug, Default)]
struct Fake {
    messages: Vec<Stored>,
    /// Statuses to answer next, instead of handling the request.
    inject: VecDeque<u16>,
    /// Delay before answering (timeouts).
    delay: Option<Duration>,
}

type Shared = Arc<Mutex<Fake>>;

const STANDARD_HEADERS: &[&str] =
    &["authorization", "brokerproperties", "content-type", "content-length", "host", "user-agent", "accept"];

fn error(status: StatusCode, detail: &str) -> (StatusCode, String) {
    (status, format!("<Error><Code>{}</Code><Detail>{detail}</Detail></Error>", status.as_u16()))
}

async fn send(
    State(fake): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let (inject, delay) = {
        let mut f = fake.lock().expect("lock");
        (f.inject.pop_front(), f.delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = inject {
        return error(StatusCode::from_u16(status).expect("status"), "injected failure");
    }
    let Some(entity) = path.strip_suffix("/messages") else {
        return error(StatusCode::NOT_FOUND, "no such operation");
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if header("authorization").as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return error(StatusCode::UNAUTHORIZED, "InvalidSignature: the token is missing or invalid");
    }
    let broker: serde_json::Map<String, Value> = match header("brokerproperties").map(|b| serde_json::from_str(&b)) {
        Some(Ok(map)) => map,
        _ => return error(StatusCode::BAD_REQUEST, "BrokerProperties is not a JSON object"),
    };
    if let Some(at) = broker.get("ScheduledEnqueueTimeUtc") {
        let parsed = at.as_str().map(|s| chrono::NaiveDateTime::parse_from_str(s, wire::RFC1123));
        if !matches!(parsed, Some(Ok(_))) {
            return error(StatusCode::BAD_REQUEST, "ScheduledEnqueueTimeUtc is not an RFC 1123 date");
        }
    }
    let properties = headers
        .iter()
        .filter(|(name, _)| !STANDARD_HEADERS.contains(&name.as_str()) && !name.as_str().starts_with("x-ms-"))
        .filter_map(|(name, v)| {
            let text = v.to_str().ok()?;
            Some((name.as_str().to_owned(), serde_json::from_str::<String>(text).ok()?))
        })
        .collect();
    let mut f = fake.lock().expect("lock");
    let id = broker.get("MessageId").cloned();
    let duplicate =
        id.is_some() && f.messages.iter().any(|m| m.entity == entity && m.broker.get("MessageId") == id.as_ref());
    if !duplicate {
        let content_type = header("content-type");
        f.messages.push(Stored { entity: entity.to_owned(), broker, content_type, properties, body: body.to_vec() });
    }
    (StatusCode::CREATED, String::new())
}

async fn server() -> (String, Shared) {
    let fake = Shared::default();
    let app = Router::new().route("/{*path}", post(send)).with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), fake)
}

fn settings() -> ServiceBusSettings {
    ServiceBusSettings { retries: false, timeout: Duration::from_secs(5) }
}

async fn bus() -> (ServiceBusBus, Shared, Arc<StaticToken>) {
    let (base, fake) = server().await;
    let credential = Arc::new(StaticToken::default());
    let bus = ServiceBusBus::new(&base, Arc::clone(&credential) as Arc<dyn TokenCredential>, &settings()).expect("bus");
    (bus, fake, credential)
}

fn full_message() -> OutgoingMessage {
    let mut m = OutgoingMessage::json("snapshot-checks", "backup-p1-20261122T0100Z/check-1", br#"{"k":1}"#.to_vec());
    m.correlation_id = Some("backup-p1-20261122T0100Z".into());
    m.subject = Some("SnapshotCheck".into());
    m.properties.insert("schema-version".into(), "1".into());
    m.properties.insert("cluster".into(), "prod-weu".into());
    m.scheduled_at(Utc.with_ymd_and_hms(2026, 11, 22, 1, 5, 30).single().expect("time"))
}

#[tokio::test]
async fn a_message_arrives_with_every_property() {
    let (bus, fake, credential) = bus().await;
    bus.send(full_message()).await.expect("sent");
    let stored = fake.lock().expect("lock").messages.clone();
    assert_eq!(stored.len(), 1);
    let m = &stored[0];
    assert_eq!(m.entity, "snapshot-checks");
    assert_eq!(m.broker["MessageId"], "backup-p1-20261122T0100Z/check-1");
    assert_eq!(m.broker["CorrelationId"], "backup-p1-20261122T0100Z");
    assert_eq!(m.broker["Label"], "SnapshotCheck");
    assert_eq!(m.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        m.properties.get("schema-version").map(String::as_str),
        Some("1"),
        "a numeric-looking value stays a string"
    );
    assert_eq!(m.properties.get("cluster").map(String::as_str), Some("prod-weu"));
    assert_eq!(m.body, br#"{"k":1}"#);
    assert_eq!(*credential.scopes.lock().expect("lock"), vec![SERVICE_BUS_SCOPE.to_owned()]);
}

#[tokio::test]
async fn the_scheduled_time_round_trips_in_rfc1123() {
    let (bus, fake, _) = bus().await;
    bus.send(full_message()).await.expect("sent");
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 1, 5, 30).single().expect("time") + chrono::Duration::milliseconds(250);
    bus.send(OutgoingMessage::json("copy-requests", "poll-2", b"{}".to_vec()).scheduled_at(at)).await.expect("sent");
    let stored = fake.lock().expect("lock").messages.clone();
    let text = stored[0].broker["ScheduledEnqueueTimeUtc"].as_str().expect("string");
    assert_eq!(text, "Sun, 22 Nov 2026 01:05:30 GMT");
    let parsed: DateTime<Utc> = DateTime::parse_from_rfc2822(text).expect("rfc 1123 is rfc 2822").with_timezone(&Utc);
    assert_eq!(parsed, Utc.with_ymd_and_hms(2026, 11, 22, 1, 5, 30).single().expect("time"));
    let text = stored[1].broker["ScheduledEnqueueTimeUtc"].as_str().expect("string");
    assert_eq!(text, "Sun, 22 Nov 2026 01:05:31 GMT", "a fraction of a second rounds up, never early");
    let unscheduled = OutgoingMessage::json("copy-requests", "now", b"{}".to_vec());
    bus.send(unscheduled).await.expect("sent");
    assert!(fake.lock().expect("lock").messages[2].broker.get("ScheduledEnqueueTimeUtc").is_none());
}

#[tokio::test]
async fn deterministic_ids_arrive_and_resends_are_dropped() {
    let (bus, fake, _) = bus().await;
    for _ in 0..3 {
        bus.send(OutgoingMessage::json("backup-requests", "p1/2026-11-22T01:00Z", b"{}".to_vec())).await.expect("sent");
    }
    bus.send(OutgoingMessage::json("backup-requests", "p1/2026-11-22T02:00Z", b"{}".to_vec())).await.expect("sent");
    let ids: Vec<_> = fake.lock().expect("lock").messages.iter().map(|m| m.broker["MessageId"].clone()).collect();
    assert_eq!(ids, vec!["p1/2026-11-22T01:00Z", "p1/2026-11-22T02:00Z"]);
}

#[tokio::test]
async fn answers_are_classified_as_the_port_says() {
    let (bus, fake, _) = bus().await;
    for (status, transient) in [
        (429, true),
        (500, true),
        (503, true),
        (400, false),
        (403, false),
        (404, false),
        (410, false),
        (413, false),
        (401, false),
    ] {
        fake.lock().expect("lock").inject.push_back(status);
        let err = bus.send(full_message()).await.expect_err("injected failure");
        assert_eq!(err.is_transient(), transient, "{status}: {err}");
        let text = format!("{err} {:?}", err);
        assert!(text.contains("snapshot-checks") && text.contains("backup-p1-20261122T0100Z/check-1"), "{text}");
        match status {
            401 => assert!(matches!(err, BusError::Unauthorized { .. }), "{err:?}"),
            400 | 403 | 404 | 410 | 413 => {
                assert!(matches!(err, BusError::Invalid { .. }), "{err:?}");
                assert!(text.contains(&status.to_string()) && text.contains("injected failure"), "{text}");
            }
            _ => assert!(matches!(err, BusError::Unavailable { .. }), "{err:?}"),
        }
    }
    assert!(fake.lock().expect("lock").messages.is_empty());
}

#[tokio::test]
async fn a_wrong_token_is_refused_without_showing_it() {
    let (base, fake) = server().await;
    #[derive(Debug)]
    struct Wrong;
    #[async_trait]
    impl TokenCredential for Wrong {
        async fn get_token(&self, _: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
            let expires = azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1);
            Ok(AccessToken::new(Secret::new("wrong-secret-token-xyz"), expires))
        }
    }
    let bus = ServiceBusBus::new(&base, Arc::new(Wrong), &settings()).expect("bus");
    let err = bus.send(full_message()).await.expect_err("refused");
    assert!(matches!(err, BusError::Unauthorized { .. }) && !err.is_transient(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("wrong-secret-token-xyz"), "{err:?}");
    assert!(fake.lock().expect("lock").messages.is_empty());
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_transient() {
    let (base, fake) = server().await;
    fake.lock().expect("lock").delay = Some(Duration::from_secs(2));
    let quick = ServiceBusSettings { retries: false, timeout: Duration::from_millis(200) };
    let bus = ServiceBusBus::new(&base, Arc::new(StaticToken::default()), &quick).expect("bus");
    let err = bus.send(full_message()).await.expect_err("timed out");
    assert!(matches!(err, BusError::Unavailable { .. }) && err.is_transient(), "{err:?}");

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let bus =
        ServiceBusBus::new(&format!("http://{addr}"), Arc::new(StaticToken::default()), &settings()).expect("bus");
    let err = bus.send(full_message()).await.expect_err("refused");
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn invalid_messages_are_refused_before_sending() {
    let (bus, fake, _) = bus().await;
    let mut upper = full_message();
    upper.properties.insert("Kind".into(), "x".into());
    let mut reserved = full_message();
    reserved.properties.insert("authorization".into(), "x".into());
    let cases = [
        OutgoingMessage::json("q", "i".repeat(129), b"{}".to_vec()),
        OutgoingMessage::json("q", "", b"{}".to_vec()),
        OutgoingMessage::json("q", "big", vec![b'x'; 256 * 1024 + 1]),
        OutgoingMessage::json("Bad Queue", "id", b"{}".to_vec()),
        upper,
        reserved,
    ];
    for m in cases {
        let err = bus.send(m).await.expect_err("invalid");
        assert!(matches!(err, BusError::Invalid { .. }) && !err.is_transient(), "{err:?}");
    }
    assert!(fake.lock().expect("lock").messages.is_empty(), "nothing reached the server");
    bus.send(OutgoingMessage::json("q", "i".repeat(128), vec![b'x'; 256 * 1024])).await.expect("limits are valid");
}

#[tokio::test]
async fn no_token_appears_in_logs() {
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let logs = Arc::clone(&logs);
        move || LogWriter(Arc::clone(&logs))
    };
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(writer).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (bus, fake, _) = bus().await;
    bus.send(full_message()).await.expect("sent");
    fake.lock().expect("lock").inject.extend([401, 503]);
    let e1 = bus.send(full_message()).await.expect_err("401");
    let e2 = bus.send(full_message()).await.expect_err("503");
    tracing::error!(error = %e1, debug = ?e2, "logged as a handler would");
    let text = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
    assert!(text.contains("snapshot-checks"), "the log captured something: {text}");
    assert!(!text.contains(TOKEN), "the token leaked into the logs");
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn endpoints_and_namespaces_are_checked() {
    let token = || Arc::new(StaticToken::default()) as Arc<dyn TokenCredential>;
    assert!(ServiceBusBus::for_namespace("lifeboat-prod.servicebus.windows.net", token(), &settings()).is_ok());
    for bad in ["", "lifeboat", "https://x.servicebus.windows.net", "x.servicebus.windows.net/q"] {
        let err = ServiceBusBus::for_namespace(bad, token(), &settings()).expect_err(bad);
        assert!(matches!(err, ServiceBusSetupError::InvalidNamespace { .. }), "{bad}: {err}");
    }
    let err =
        ServiceBusBus::new("http://x.servicebus.windows.net", token(), &settings()).expect_err("http off loopback");
    assert!(matches!(err, ServiceBusSetupError::TokenOverHttp { .. }), "{err}");
    assert!(ServiceBusBus::new("http://localhost:5000", token(), &settings()).is_ok());
    assert!(ServiceBusBus::new("ftp://x", token(), &settings()).is_err());
}

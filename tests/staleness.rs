//! End to end: backups age under a manual clock; `staleness` fires once, repeats on schedule
//! and resolves once after a fresh backup commits, as seen by a local webhook receiver that
//! verifies the HMAC signature independently; a failing sink is retried and reported.

mod support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use lifeboat::app::{AppState, DataDir, Settings, embedded_with_clock};
use lifeboat::handlers::{self, HandlerError, Outcome, TimerInput, TriggerInput};
use lifeboat_shared::adapters::alert_config::AlertsConfig;
use lifeboat_shared::catalog;
use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::messages::{Alert, AlertState, BackupReason, Severity};
use lifeboat_shared::domain::names::{ClusterName, PolicyName};
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::domain::records::{BackupRecord, BackupState};
use lifeboat_shared::ports::ManualClock;
use sha2::Sha256;

const KEY: &str = "a-shared-hmac-key-for-the-test";

#[derive(Default)]
struct Received {
    /// Verified alerts posted to `/hook`.
    alerts: Vec<Alert>,
    /// Posts to `/hook` whose signature did not verify.
    forged: usize,
    /// Posts to `/broken` (always answered 500).
    broken_attempts: usize,
}

type Inbox = Arc<Mutex<Received>>;

/// Verifies as the docs tell receivers to: HMAC-SHA256 over `{timestamp}.{body}`, hex, and a
/// timestamp within five minutes. Written here from the docs, not with Lifeboat's own code.
fn verified(headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let Ok(timestamp) = header("x-lifeboat-timestamp").parse::<i64>() else { return false };
    if (Utc::now().timestamp() - timestamp).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    header("x-lifeboat-signature") == format!("sha256={expected}")
}

async fn hook(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut inbox = inbox.lock().unwrap();
    if !verified(&headers, &body) {
        inbox.forged += 1;
        return StatusCode::UNAUTHORIZED;
    }
    inbox.alerts.push(serde_json::from_slice(&body).expect("an Alert"));
    StatusCode::NO_CONTENT
}

async fn broken(State(inbox): State<Inbox>) -> StatusCode {
    inbox.lock().unwrap().broken_attempts += 1;
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn receiver() -> (u16, Inbox) {
    let inbox = Inbox::default();
    let app = Router::new().route("/hook", post(hook)).route("/broken", post(broken)).with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, inbox)
}

struct World {
    app: AppState,
    clock: Arc<ManualClock>,
    inbox: Inbox,
    _dir: tempfile::TempDir,
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// An app whose alerts go to the signed webhook `/hook` and, when `with_broken`, first to a
/// Slack sink that always answers 500.
async fn world(with_broken: bool) -> World {
    let (port, inbox) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let key = write("hmac.key", format!("{KEY}\n"));
    let hook_url = write("hook.url", format!("http://127.0.0.1:{port}/hook"));
    let broken_url = write("broken.url", format!("http://127.0.0.1:{port}/broken"));
    let broken_sink = format!("  - {{ name: chat, slack: {{ url: {{ file: \"{broken_url}\" }} }} }}\n");
    let yaml = format!(
        "renotifyEvery: 1h\nskipOrphanScan: true\nretry: {{ attempts: 2, firstBackoff: 10ms }}\nsinks:\n{}  - {{ name: siem, webhook: {{ url: {{ file: \"{hook_url}\" }}, key: {{ file: \"{key}\" }} }} }}\n",
        if with_broken { broken_sink.as_str() } else { "" }
    );
    let settings = Settings { alerts: AlertsConfig::parse("alerts.yaml", &yaml).unwrap(), ..Settings::default() };
    let config = Config::from_sources([("policy.yaml", support::HOURLY_POLICY)]).unwrap();
    let clock = Arc::new(ManualClock::new(t("2026-11-22T08:00:00Z")));
    let (app, _queue) =
        embedded_with_clock(&DataDir::new(&dir.path().join("data")), config, settings, clock.clone()).expect("app");
    World { app, clock, inbox, _dir: dir }
}

/// A committed backup of `hourly` on `prod`, taken at `at`.
async fn commit_backup(w: &World, id: &str, at: &str) {
    let mut record = BackupRecord::requested(
        BackupId::parse(id).unwrap(),
        ClusterName::new("prod").unwrap(),
        PolicyName::new("hourly").unwrap(),
        BackupReason::OnDemand { request_id: id.into(), requested_by: None },
        t(at),
    );
    record.move_to(BackupState::Running, t(at)).unwrap();
    record.move_to(BackupState::Committed, t(at) + chrono::Duration::minutes(5)).unwrap();
    catalog::claim(w.app.state.as_ref(), &record).await.unwrap();
}

async fn staleness_at(w: &World, at: &str) -> Result<Outcome, HandlerError> {
    w.clock.set(t(at));
    let def = w.app.function("staleness").expect("staleness").clone();
    handlers::dispatch(&w.app, &def, TriggerInput::Timer(TimerInput::default())).await
}

/// The health alerts received so far: (notification, state, severity).
fn health(w: &World) -> Vec<(u32, AlertState, Severity)> {
    let inbox = w.inbox.lock().unwrap();
    inbox.alerts.iter().filter(|a| a.alert_id == "health.prod").map(|a| (a.notification, a.state, a.severity)).collect()
}

#[tokio::test]
async fn staleness_fires_once_repeats_on_schedule_and_resolves_once() {
    use AlertState::*;
    use Severity::*;
    let w = world(false).await;
    commit_backup(&w, "b-0800", "2026-11-22T08:00:00Z").await;

    staleness_at(&w, "2026-11-22T09:00:00Z").await.unwrap();
    assert_eq!(health(&w), [], "1h of a 2h RPO is fine");

    // 1h40m: past 80 % of the RPO. Fires once, even when the timer fires twice.
    staleness_at(&w, "2026-11-22T09:40:00Z").await.unwrap();
    staleness_at(&w, "2026-11-22T09:40:00Z").await.unwrap();
    staleness_at(&w, "2026-11-22T09:50:00Z").await.unwrap();
    assert_eq!(health(&w), [(1, Firing, Warning)]);

    // The RPO is missed: critical at once; then again only once the hour has passed.
    staleness_at(&w, "2026-11-22T10:05:00Z").await.unwrap();
    staleness_at(&w, "2026-11-22T10:35:00Z").await.unwrap();
    staleness_at(&w, "2026-11-22T11:05:00Z").await.unwrap();
    staleness_at(&w, "2026-11-22T11:30:00Z").await.unwrap();
    assert_eq!(health(&w), [(1, Firing, Warning), (2, Firing, Critical), (3, Firing, Critical)]);
    let summary = w.inbox.lock().unwrap().alerts.last().unwrap().summary.clone();
    assert!(summary.contains("hourly: newest committed backup is 3h 5m old"), "{summary}");

    // A fresh backup commits: resolved once.
    commit_backup(&w, "b-1135", "2026-11-22T11:35:00Z").await;
    staleness_at(&w, "2026-11-22T11:45:00Z").await.unwrap();
    staleness_at(&w, "2026-11-22T11:50:00Z").await.unwrap();
    staleness_at(&w, "2026-11-22T12:20:00Z").await.unwrap();
    assert_eq!(
        health(&w),
        [(1, Firing, Warning), (2, Firing, Critical), (3, Firing, Critical), (4, Resolved, Critical)]
    );
    assert_eq!(w.inbox.lock().unwrap().forged, 0, "every post carried a valid signature");
}

#[tokio::test]
async fn a_failing_sink_is_retried_and_reported_through_the_others() {
    let w = world(true).await;
    commit_backup(&w, "b-0800", "2026-11-22T08:00:00Z").await;
    let outcome = staleness_at(&w, "2026-11-22T10:30:00Z").await.unwrap();
    assert!(matches!(&outcome, Outcome::Done { logs, .. } if logs.iter().any(|l| l.contains("health.prod #1"))));

    let inbox = w.inbox.lock().unwrap();
    assert_eq!(inbox.broken_attempts, 2, "tried twice (retry.attempts)");
    let ids: Vec<&str> = inbox.alerts.iter().map(|a| a.alert_id.as_str()).collect();
    assert_eq!(ids, ["health.prod", "sink.chat"], "the health alert, then the report of the failing sink");
    let report = &inbox.alerts[1];
    assert!(report.summary.contains("alert sink chat could not deliver health.prod #1"), "{}", report.summary);
    assert!(report.summary.contains("HTTP 500"), "{}", report.summary);
}

#[tokio::test]
async fn when_no_sink_delivers_the_next_run_tries_again() {
    let w = world(false).await;
    commit_backup(&w, "b-0800", "2026-11-22T08:00:00Z").await;
    // The same state store, but alerts only to a sink nobody listens on.
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("url");
    std::fs::write(&url, "http://127.0.0.1:9/unreachable").unwrap();
    let yaml = format!(
        "skipOrphanScan: true\nretry: {{ attempts: 1 }}\nsinks: [{{ name: gone, slack: {{ url: {{ file: \"{}\" }} }} }}]",
        url.display()
    );
    let mut app = w.app.clone();
    app.settings.alerts = AlertsConfig::parse("alerts.yaml", &yaml).unwrap();
    let bus = app.bus.clone();
    app.alerts = lifeboat::alerts::build(&app.settings.alerts, &bus).unwrap();
    w.clock.set(t("2026-11-22T10:30:00Z"));
    let def = app.function("staleness").unwrap().clone();
    let err = handlers::dispatch(&app, &def, TriggerInput::Timer(TimerInput::default())).await.unwrap_err();
    assert_eq!(err.status(), 503, "retried by the host: {err}");
    assert!(err.to_string().contains("delivering health.prod failed"), "{err}");

    // The original app (the working sink) then sends notification #1: nothing was lost.
    staleness_at(&w, "2026-11-22T10:31:00Z").await.unwrap();
    assert_eq!(health(&w), [(1, AlertState::Firing, Severity::Critical)]);
}

//! `staleness` (timer): evaluates every cluster's health and moves its alert (fire once,
//! repeat on schedule, resolve once); and sends the retry rounds due for replicas that failed
//! (`workflows::copy::retry`).

use lifeboat_shared::workflows::copy::retry;
use lifeboat_shared::workflows::staleness::{self, Deps};

use super::{HandlerError, Outcome, TimerInput};
use crate::app::AppState;

pub(crate) async fn handle(app: &AppState, timer: TimerInput) -> Result<Outcome, HandlerError> {
    let deps = Deps {
        state: app.state.as_ref(),
        clusters: app.clusters.as_ref(),
        sink: app.alerts.as_ref(),
        now: app.clock.now(),
    };
    let report = staleness::run(&app.config, &deps, &app.settings.alerts.staleness()).await;
    let retried =
        retry::send_due(app.state.as_ref(), app.bus.as_ref(), &app.config, &app.settings.copy.retry, deps.now).await;
    let summary = report.summary();
    tracing::info!(past_due = timer.is_past_due, notified = report.notified.len(), "{summary}");
    let mut failures = report.failures.clone();
    let retried = retried.unwrap_or_else(|e| {
        failures.push(format!("retrying failed replicas: {e}"));
        Vec::new()
    });
    if !failures.is_empty() {
        // Alerts already moved and retries already sent are recorded; the rest is retried by
        // the next run.
        return Err(HandlerError::Transient(format!("{summary}: {}", failures.join("; "))));
    }
    let mut logs = vec![summary];
    logs.extend(report.notified.iter().map(|n| format!("notified {n}")));
    logs.extend(report.warnings.iter().map(|w| format!("warning: {w}")));
    logs.extend(retried);
    Ok(Outcome::done(logs))
}

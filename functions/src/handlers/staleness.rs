//! `staleness` (timer): evaluates every cluster's health and moves its alert (fire once,
//! repeat on schedule, resolve once).

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
    let summary = report.summary();
    tracing::info!(past_due = timer.is_past_due, notified = report.notified.len(), "{summary}");
    if !report.failures.is_empty() {
        // Alerts already moved are recorded; the failed clusters are retried by the next run.
        return Err(HandlerError::Transient(format!("{summary}: {}", report.failures.join("; "))));
    }
    let mut logs = vec![summary];
    logs.extend(report.notified.iter().map(|n| format!("notified {n}")));
    logs.extend(report.warnings.iter().map(|w| format!("warning: {w}")));
    Ok(Outcome::done(logs))
}

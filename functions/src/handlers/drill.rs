//! `drill` (timer, hourly): restore drills as policies ask for them: cleans up finished ones,
//! starts those that are due (see `workflows::drill`).

use lifeboat_shared::workflows::drill::{self, DrillDeps};

use super::{HandlerError, Outcome, TimerInput};
use crate::app::AppState;

pub(crate) async fn handle(app: &AppState, timer: TimerInput) -> Result<Outcome, HandlerError> {
    let deps = DrillDeps {
        state: app.state.as_ref(),
        bus: app.bus.as_ref(),
        clusters: app.clusters.as_ref(),
        now: app.clock.now(),
    };
    let report = drill::run(&app.config, deps).await.map_err(|e| HandlerError::Transient(e.to_string()))?;
    let summary = report.summary();
    tracing::info!(past_due = timer.is_past_due, "{summary}");
    if !report.failures.is_empty() {
        // What was started or cleaned stays so; the next run retries the rest.
        return Err(HandlerError::Transient(format!("{summary}: {}", report.failures.join("; "))));
    }
    let mut logs = vec![summary];
    logs.extend(report.started.iter().map(|id| format!("started {id}")));
    logs.extend(report.cleaned.iter().map(|ns| format!("deleted sandbox {ns}")));
    logs.extend(report.waiting.iter().map(|w| format!("waiting: {w}")));
    Ok(Outcome::done(logs))
}

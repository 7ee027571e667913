//! `schedule_tick` (timer): claims each due slot once and requests its backup.

use lifeboat_shared::workflows::schedule_tick;

use super::{HandlerError, Outcome, TimerInput};
use crate::app::AppState;

pub(crate) async fn handle(app: &AppState, timer: TimerInput) -> Result<Outcome, HandlerError> {
    let now = app.clock.now();
    let report =
        schedule_tick::run(&app.config, app.state.as_ref(), app.bus.as_ref(), now, app.settings.tick_period).await;
    let summary = report.summary();
    tracing::info!(past_due = timer.is_past_due, requested = report.requested.len(), "{summary}");
    if !report.failures.is_empty() {
        // What succeeded is recorded; the failed targets are retried by the next tick.
        return Err(HandlerError::Transient(format!("{summary}: {}", report.failures.join("; "))));
    }
    let mut logs = vec![summary];
    logs.extend(report.requested.iter().map(|id| format!("requested backup {id}")));
    Ok(Outcome::done(logs))
}

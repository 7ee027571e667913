//! `prune` (timer): applies every target's retention (see `workflows::prune`).

use lifeboat_shared::domain::retention::Options;
use lifeboat_shared::workflows::prune;

use super::{HandlerError, Outcome, TimerInput, retryable};
use crate::app::AppState;

pub(crate) async fn handle(app: &AppState, timer: TimerInput) -> Result<Outcome, HandlerError> {
    let options = Options::at(app.clock.now());
    let regions = app.replica_regions();
    let deps = app.prune_deps(&regions);
    let report = prune::run(&app.config, deps, &options, false)
        .await
        // What was removed stays removed; the next run (or the host's retry) finishes the rest.
        .map_err(|e| retryable(e.is_transient(), lifeboat_shared::errors::chain(&e)))?;
    let summary = report.summary();
    tracing::info!(past_due = timer.is_past_due, "{summary}");
    let mut logs = vec![summary];
    for b in &report.backups {
        if !b.decision.is_kept() {
            logs.push(format!(
                "{} {}/{}: {}{}",
                if b.removed { "removed" } else { "left for next run" },
                b.cluster,
                b.backup_id,
                b.decision,
                b.left_because.as_deref().map(|why| format!("; {why}")).unwrap_or_default()
            ));
        } else if let Some(replica) = b.replica.as_ref().filter(|r| !r.decision.is_kept()) {
            logs.push(format!(
                "{} replica of {}/{} in {}: {}{}",
                if replica.removed { "removed" } else { "left for next run" },
                b.cluster,
                b.backup_id,
                replica.region,
                replica.decision,
                replica.left_because.as_deref().map(|why| format!("; {why}")).unwrap_or_default()
            ));
        }
    }
    Ok(Outcome::done(logs))
}

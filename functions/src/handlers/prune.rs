//! `prune` (timer): applies every target's retention (see `workflows::prune`).

use lifeboat_shared::domain::retention::Options;
use lifeboat_shared::workflows::prune::{self, PruneDeps};

use super::{HandlerError, Outcome, TimerInput, retryable};
use crate::app::AppState;

pub(crate) async fn handle(app: &AppState, timer: TimerInput) -> Result<Outcome, HandlerError> {
    let options = Options::at(app.clock.now());
    let deps = PruneDeps { state: app.state.as_ref(), objects: app.objects.as_ref(), clusters: app.clusters.as_ref() };
    let report = prune::run(&app.config, deps, &options, false)
        .await
        // What was removed stays removed; the next run (or the host's retry) finishes the rest.
        .map_err(|e| retryable(e.is_transient(), format!("{e}: {}", error_chain(&e))))?;
    let summary = report.summary();
    tracing::info!(past_due = timer.is_past_due, "{summary}");
    let mut logs = vec![summary];
    logs.extend(report.backups.iter().filter(|b| !b.decision.is_kept()).map(|b| {
        format!(
            "{} {}/{}: {}{}",
            if b.removed { "removed" } else { "left for next run" },
            b.cluster,
            b.backup_id,
            b.decision,
            b.left_because.as_deref().map(|why| format!("; {why}")).unwrap_or_default()
        )
    }));
    Ok(Outcome::done(logs))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut causes = Vec::new();
    let mut source = e.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.join(": ")
}

//! Timer triggers on six-field NCRONTAB schedules, as the Functions host fires them.

use anyhow::Context;
use chrono::Utc;
use lifeboat_shared::domain::schedule::Schedule;
use lifeboat_shared::ports::state_store::Entity;

use super::{Shutdown, stopped};
use crate::app::AppState;
use crate::function_defs::FunctionDef;
use crate::handlers::{self, Outcome, TimerInput, TriggerInput};

/// One timer function and its schedule.
pub(crate) struct Timer {
    def: FunctionDef,
    schedule: Schedule,
    run_on_startup: bool,
}

impl Timer {
    /// Resolves `%Setting%` from the environment (as the Functions host resolves app settings)
    /// and parses the schedule.
    pub(crate) fn new(def: FunctionDef, expression: &str, run_on_startup: bool) -> anyhow::Result<Self> {
        let resolved = match expression.strip_prefix('%').and_then(|s| s.strip_suffix('%')) {
            Some(setting) => std::env::var(setting)
                .with_context(|| format!("timer {}: app setting {setting} is not set", def.name))?,
            None => expression.to_owned(),
        };
        let schedule = Schedule::parse(&resolved).with_context(|| format!("timer {}", def.name))?;
        Ok(Self { def, schedule, run_on_startup })
    }
}

/// Fires `timer` until shutdown. Wall-clock based: a sleep that overshoots (a suspended
/// laptop) fires once, marked past due, rather than once per missed slot.
///
/// Like the Functions host's schedule monitor (`useMonitor`), the last firing is recorded, and
/// a slot missed while the runtime was down fires once at start, marked past due.
pub(crate) async fn run(app: AppState, timer: Timer, shutdown: Shutdown) {
    let missed = last_fired(&app, timer.def.name)
        .await
        .and_then(|last| timer.schedule.next_after(last))
        .is_some_and(|next| next <= Utc::now());
    if missed || timer.run_on_startup {
        fire(&app, &timer.def, missed).await;
    }
    loop {
        let now = Utc::now();
        let Some(next) = timer.schedule.next_after(now) else {
            tracing::warn!(function = timer.def.name, "schedule has no future slot; timer stops");
            return;
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped(shutdown.clone()) => return,
        }
        let past_due = Utc::now() - next > chrono::Duration::seconds(30);
        fire(&app, &timer.def, past_due).await;
    }
}

/// Table of the local timers' last firings: partition `local`, row = function name.
const TABLE_TIMER_MONITOR: &str = "timermonitor";

async fn last_fired(app: &AppState, function: &str) -> Option<chrono::DateTime<Utc>> {
    let entity = app.state.get(TABLE_TIMER_MONITOR, "local", function).await.ok()??;
    let last = entity.str("lastFired")?;
    chrono::DateTime::parse_from_rfc3339(last).ok().map(|t| t.with_timezone(&Utc))
}

async fn record_fired(app: &AppState, function: &str) {
    let entity = Entity::new("local", function).with("lastFired", Utc::now().to_rfc3339());
    if let Err(e) = app.state.upsert(TABLE_TIMER_MONITOR, &entity).await {
        tracing::warn!(function, "recording the timer's firing failed: {e}");
    }
}

async fn fire(app: &AppState, def: &FunctionDef, is_past_due: bool) {
    record_fired(app, def.name).await;
    match handlers::dispatch(app, def, TriggerInput::Timer(TimerInput { is_past_due })).await {
        Ok(Outcome::Done { logs, .. }) => {
            for line in logs {
                tracing::info!(function = def.name, "{line}");
            }
        }
        Ok(Outcome::DeadLetter { reason, .. }) => {
            tracing::error!(function = def.name, reason, "a timer handler asked to dead-letter");
        }
        Err(e) => tracing::error!(function = def.name, status = e.status(), "{e}"),
    }
}

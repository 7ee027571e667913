//! The local runtime (`lifeboat up`): the same handlers as in Azure, on one machine. It reads
//! the same function.json files, fires timers on their NCRONTAB schedules, pumps the SQLite
//! queues into the queue-triggered handlers, accepts Event Grid deliveries and serves status.

mod http;
mod pump;
mod timers;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::AppState;
use crate::function_defs::TriggerKind;

pub use http::router;

/// How the local runtime runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port of the HTTP endpoint (status, Event Grid).
    pub port: u16,
    /// Schedules that replace a timer function's own (function name → NCRONTAB).
    pub timer_overrides: BTreeMap<String, String>,
    /// Most queue messages handled at once.
    pub workers: usize,
    /// How long shutdown waits for handlers in flight.
    pub drain_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self { port: 7071, timer_overrides: BTreeMap::new(), workers: 4, drain_timeout: Duration::from_secs(30) }
    }
}

/// A signal every part of the runtime watches: `true` once shutdown began.
pub(crate) type Shutdown = watch::Receiver<bool>;

/// Resolves when `shutdown` turns true.
pub(crate) async fn stopped(mut shutdown: Shutdown) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Runs until `shutdown` resolves, then stops taking work and drains what is in flight.
///
/// # Errors
/// When the port cannot be bound or a timer schedule is invalid.
pub async fn run(
    app: AppState,
    listener: tokio::net::TcpListener,
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut timer_tasks = Vec::new();
    for def in app.functions.iter() {
        if let TriggerKind::Timer { schedule, run_on_startup } = &def.trigger {
            let expression = options.timer_overrides.get(def.name).cloned().unwrap_or_else(|| schedule.clone());
            let timer = timers::Timer::new(def.clone(), &expression, *run_on_startup)?;
            timer_tasks.push(tokio::spawn(timers::run(app.clone(), timer, stop_rx.clone())));
        }
    }
    let pump = match &app.queues {
        Some(receiver) => {
            let pump = pump::Pump::new(app.clone(), Arc::clone(receiver), options.workers);
            Some(tokio::spawn(pump.run(stop_rx.clone(), options.drain_timeout)))
        }
        None => None,
    };
    let server = axum::serve(listener, router(app.clone())).with_graceful_shutdown(stopped(stop_rx.clone()));
    let server = tokio::spawn(async move { server.await });

    shutdown.await;
    tracing::info!("shutting down: no new work is taken, handlers in flight finish");
    let _ = stop_tx.send(true);
    for task in timer_tasks {
        let _ = task.await;
    }
    if let Some(pump) = pump {
        let _ = pump.await;
    }
    server.await??;
    Ok(())
}

//! `lifeboat up`: the local runtime on the embedded defaults.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;

use super::{Local, load_config, schedule_period};
use crate::app::{self, DataDir, Settings};
use crate::bus::BusChoice;
use crate::function_defs::TriggerKind;
use crate::hosts::local::{self, Options};
use crate::storage::Storage;

/// Arguments of `lifeboat up`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    local: Local,
    /// Port of the HTTP endpoint (status, Event Grid deliveries).
    #[arg(long, env = "LIFEBOAT_PORT", default_value_t = 7071)]
    port: u16,
    /// Replace a timer function's schedule: NAME=NCRONTAB (six fields), e.g.
    /// schedule_tick="*/10 * * * * *". Repeatable.
    #[arg(long = "timer", value_name = "NAME=SCHEDULE", value_parser = parse_override)]
    timers: Vec<(String, String)>,
    /// Most queue messages handled at once.
    #[arg(long, default_value_t = 4)]
    workers: usize,
}

fn parse_override(s: &str) -> Result<(String, String), String> {
    let (name, schedule) = s.split_once('=').ok_or("expected NAME=SCHEDULE")?;
    Ok((name.trim().to_owned(), schedule.trim().to_owned()))
}

pub(crate) async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(args.local.config.as_deref())?;
    let data = DataDir::new(&args.local.data);
    let timer_overrides: BTreeMap<String, String> = args.timers.into_iter().collect();
    let defs = crate::function_defs::all()?;
    for name in timer_overrides.keys() {
        let is_timer = defs.iter().any(|d| d.name == name && matches!(d.trigger, TriggerKind::Timer { .. }));
        anyhow::ensure!(is_timer, "--timer {name}: no timer function has that name");
    }
    let tick = timer_overrides.get("schedule_tick").cloned().or_else(|| {
        defs.iter().find(|d| d.name == "schedule_tick").and_then(|d| match &d.trigger {
            TriggerKind::Timer { schedule, .. } => Some(schedule.clone()),
            _ => None,
        })
    });
    let tick_period = tick.as_deref().map(schedule_period).transpose()?.unwrap_or(chrono::Duration::minutes(5));
    let (clusters, policies, targets) = (config.clusters.len(), config.policies.len(), config.targets().len());
    let storage = Storage::from_env()?;
    // The local runtime receives from its own queues: sending elsewhere would strand messages.
    anyhow::ensure!(
        BusChoice::from_env()? == BusChoice::Embedded,
        "lifeboat up pumps its local queues, so it sends to them too: unset LIFEBOAT_BUS \
         (LIFEBOAT_BUS=servicebus is for the function app, `lifeboat handler`, and the CLI)"
    );
    let clock = std::sync::Arc::new(lifeboat_shared::ports::SystemClock);
    let settings = Settings { tick_period, ..Settings::default() };
    let (app, _queue) = app::build(&data, config, settings, &storage, &BusChoice::Embedded, clock)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);

    match &storage {
        Storage::Embedded => {
            say(&format!("lifeboat up: data in {} (state.sqlite, queues.sqlite, objects/)", data.root.display()));
        }
        Storage::Azure(_) => {
            say(&format!("lifeboat up: data in {} (queues.sqlite)", data.root.display()));
            say(&format!("lifeboat up: {}", storage.describe()));
        }
    }
    match &args.local.config {
        Some(path) => say(&format!(
            "lifeboat up: {clusters} cluster(s), {policies} policy(ies), {targets} target(s) from {}",
            path.display()
        )),
        None => say("lifeboat up: no configuration given (--config or LIFEBOAT_CONFIG): nothing is protected yet"),
    }
    say(&format!("lifeboat up: listening on http://127.0.0.1:{port} (GET /status)"));
    say("lifeboat up: Ctrl-C stops; messages in flight are kept for the next start");

    let options = Options { port, timer_overrides, workers: args.workers, ..Options::default() };
    local::run(app, listener, options, shutdown_signal()).await?;
    say("lifeboat up: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Prints a line for people; a closed stdout (a supervisor gone) must not stop the runtime.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

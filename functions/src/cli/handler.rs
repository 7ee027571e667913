//! `lifeboat handler`: the Azure Functions custom handler, started by the Functions host.

use std::process::ExitCode;

use anyhow::Context;

use super::{Local, load_config, schedule_period};
use crate::app::{self, DataDir, Settings};
use crate::bus::BusChoice;
use crate::function_defs::TriggerKind;
use crate::hosts::custom_handler;
use crate::storage::Storage;

/// Arguments of `lifeboat handler`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    local: Local,
    /// The port the Functions host expects the handler on.
    #[arg(long, env = "FUNCTIONS_CUSTOMHANDLER_PORT")]
    port: Option<u16>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let port = args.port.context(
        "FUNCTIONS_CUSTOMHANDLER_PORT is not set: the Azure Functions host sets it when it starts \
         `lifeboat handler` (see host.json); to run on this machine, use `lifeboat up`",
    )?;
    let config = load_config(args.local.config.as_deref())?;
    let tick_period = tick_period()?;
    // State and objects where the settings say (Table and Blob Storage in Azure, see
    // crate::storage); sends to Service Bus when LIFEBOAT_BUS=servicebus (crate::bus), else to
    // SQLite queues under LIFEBOAT_DATA.
    let data = DataDir::new(&args.local.data);
    let storage = Storage::from_env()?;
    let bus = BusChoice::from_env()?;
    let (app, _queue) = app::build(
        &data,
        config,
        Settings { tick_period, ..Settings::from_env()? },
        &storage,
        &bus,
        std::sync::Arc::new(lifeboat_shared::ports::SystemClock),
    )
    .context("building the app")?;
    custom_handler::serve(app, port, super::up::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// How often `schedule_tick` runs, from its function.json (five minutes when it names a setting).
///
/// # Errors
/// When the function definitions or the schedule cannot be read.
pub(crate) fn tick_period() -> anyhow::Result<chrono::Duration> {
    let tick = crate::function_defs::all()?.into_iter().find_map(|d| match d.trigger {
        TriggerKind::Timer { schedule, .. } if d.name == "schedule_tick" => Some(schedule),
        _ => None,
    });
    Ok(match tick {
        Some(s) if !s.starts_with('%') => schedule_period(&s)?,
        _ => chrono::Duration::minutes(5),
    })
}

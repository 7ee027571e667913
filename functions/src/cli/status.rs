//! `lifeboat status`: targets, queues and dead letters of a local runtime's data, as a table
//! or JSON.

use std::process::ExitCode;

use serde_json::Value;

use super::{Local, load_config, table};
use crate::app::{self, DataDir, Settings};
use crate::bus::BusChoice;
use crate::handlers;
use crate::storage::Storage;

/// Arguments of `lifeboat status`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    local: Local,
    /// Print JSON for machines.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(args.local.config.as_deref())?;
    let data = DataDir::new(&args.local.data);
    let storage = Storage::from_env()?;
    let bus = BusChoice::from_env()?;
    let has_data = (bus != BusChoice::Embedded || data.queue_db().exists())
        && (storage != Storage::Embedded || data.state_db().exists());
    anyhow::ensure!(has_data, "no Lifeboat data in {} (run `lifeboat up` first)", data.root.display());
    let (app, _queue) = app::build(
        &data,
        config,
        Settings::default(),
        &storage,
        &bus,
        std::sync::Arc::new(lifeboat_shared::ports::SystemClock),
    )?;
    let report = handlers::status::report(&app).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render(&report));
    Ok(ExitCode::SUCCESS)
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}

/// The status report as tables for people.
fn render(report: &Value) -> String {
    let empty = Vec::new();
    let list = |key: &str| report.get(key).and_then(Value::as_array).unwrap_or(&empty).clone();
    let mut out = String::new();
    let targets: Vec<_> = list("targets")
        .iter()
        .map(|t| {
            ["target", "schedule", "rpo", "lastEvaluated", "lastRequestedBackup", "requestedLast7Days"]
                .iter()
                .map(|k| text(t, k))
                .collect()
        })
        .collect();
    if targets.is_empty() {
        out.push_str("No targets: no policy is configured (--config or LIFEBOAT_CONFIG).\n");
    } else {
        out.push_str(&table(&["TARGET", "SCHEDULE", "RPO", "LAST EVALUATED", "LAST REQUESTED", "7 DAYS"], targets));
        out.push('\n');
    }
    if let Some(queues) = report.get("queues").and_then(Value::as_object) {
        let rows = queues
            .iter()
            .map(|(name, s)| {
                let mut row = vec![name.clone()];
                row.extend(["active", "scheduled", "locked", "dead_lettered"].iter().map(|k| text(s, k)));
                row
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["QUEUE", "ACTIVE", "SCHEDULED", "LOCKED", "DEAD-LETTERED"], rows));
        out.push('\n');
    }
    let dead = list("deadLetters");
    if !dead.is_empty() {
        let rows =
            dead.iter().map(|d| ["queue", "messageId", "reason", "at"].iter().map(|k| text(d, k)).collect()).collect();
        out.push('\n');
        out.push_str(&table(&["QUEUE", "MESSAGE", "REASON", "AT"], rows));
        out.push('\n');
    }
    out
}

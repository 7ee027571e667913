//! `lifeboat prune [--dry-run]`: applies retention to a local runtime's data now, as the daily
//! `prune` timer does; `--dry-run` prints exactly what would go and why, and changes nothing.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use lifeboat_shared::domain::retention::{Decision, Options};
use lifeboat_shared::ports::{Clock, SystemClock};
use lifeboat_shared::workflows::prune;

use super::{Local, load_config, table};
use crate::app::{self, DataDir, Settings};
use crate::storage::Storage;

/// `lifeboat prune`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    local: Local,
    /// Only print what would be removed, and why.
    #[arg(long)]
    dry_run: bool,
    /// How long uncommitted backups may still be in progress before they are leftovers.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1d")]
    grace: Duration,
    /// Print JSON for machines.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(args.local.config.as_deref())?;
    let data = DataDir::new(&args.local.data);
    let storage = Storage::from_env()?;
    let has_data = storage != Storage::Embedded || data.state_db().exists();
    anyhow::ensure!(has_data, "no Lifeboat data in {} (run `lifeboat up` first)", data.root.display());
    let clock = Arc::new(SystemClock);
    let now = clock.now();
    let (app, _queue) =
        app::build(&data, config, Settings::default(), &storage, &crate::bus::BusChoice::from_env()?, clock)?;
    let options = Options { now, uncommitted_grace: args.grace };
    let regions = app.replica_regions();
    let deps = app.prune_deps(&regions);
    let report = prune::run(&app.config, deps, &options, args.dry_run).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows = report
        .backups
        .iter()
        .map(|b| {
            let replica = b.replica.as_ref().map_or_else(String::new, |r| {
                let done = result(r.decision.is_kept(), args.dry_run, r.removed);
                match &r.left_because {
                    Some(left) => format!("{}: {done} ({}; {left})", r.region, r.decision.because()),
                    None => format!("{}: {done} ({})", r.region, r.decision.because()),
                }
            });
            vec![
                b.cluster.to_string(),
                b.backup_id.to_string(),
                b.time.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                result(b.decision.is_kept(), args.dry_run, b.removed).to_owned(),
                why(&b.decision, b.left_because.as_deref()),
                replica,
            ]
        })
        .collect();
    println!("{}", table(&["CLUSTER", "BACKUP", "TIME", "RESULT", "WHY", "REPLICA"], rows));
    println!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}

/// What happened to a backup (or replica) `kept` or not, as the table says it.
fn result(kept: bool, dry_run: bool, removed: bool) -> &'static str {
    match (kept, dry_run, removed) {
        (true, _, _) => "kept",
        (false, true, _) => "would remove",
        (false, false, true) => "removed",
        (false, false, false) => "left for next run",
    }
}

/// The decision, and why a removal was left, when it was.
fn why(decision: &Decision, left_because: Option<&str>) -> String {
    match left_because {
        Some(left) => format!("{decision}; {left}"),
        None => decision.to_string(),
    }
}

//! `lifeboat prune [--dry-run]`: applies retention to a local runtime's data now, as the daily
//! `prune` timer does; `--dry-run` prints exactly what would go and why, and changes nothing.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use lifeboat_shared::domain::retention::Options;
use lifeboat_shared::ports::{Clock, SystemClock};
use lifeboat_shared::workflows::prune::{self, PruneDeps};

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
    let deps = PruneDeps { state: app.state.as_ref(), objects: app.objects.as_ref(), clusters: app.clusters.as_ref() };
    let report = prune::run(&app.config, deps, &options, args.dry_run).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows = report
        .backups
        .iter()
        .map(|b| {
            let done = match (b.decision.is_kept(), args.dry_run, b.removed) {
                (true, _, _) => "kept",
                (false, true, _) => "would remove",
                (false, false, true) => "removed",
                (false, false, false) => "left for next run",
            };
            let why = match &b.left_because {
                Some(left) => format!("{}; {left}", b.decision),
                None => b.decision.to_string(),
            };
            vec![
                b.cluster.to_string(),
                b.backup_id.to_string(),
                b.time.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                done.to_owned(),
                why,
            ]
        })
        .collect();
    println!("{}", table(&["CLUSTER", "BACKUP", "TIME", "RESULT", "WHY"], rows));
    println!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}

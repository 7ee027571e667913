//! Retention planning time over 1,000,000 catalog entries (target: under one second), and the
//! Table Storage requests a daily prune of 1,000 targets costs. See `bench/retention.sh`.

use std::process::ExitCode;

use lifeboat_bench::retention::{planning, requests};

const TARGETS: usize = 1_000;
const RUNS: usize = 5;

fn main() -> ExitCode {
    let json = std::env::args().skip(1).any(|a| a == "--json");
    match run(json) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("retention-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(json: bool) -> anyhow::Result<()> {
    let shapes = [planning::measure(TARGETS, 1_000, RUNS), planning::measure(1, 1_000_000, RUNS)];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let prune = runtime.block_on(requests::measure(TARGETS))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "planning": shapes, "dailyPrune": prune }))?);
        return Ok(());
    }
    println!(
        "retention planning ({RUNS} runs each; keepLast 24, hourly 48, daily 14, weekly 8, monthly 12, yearly 3, within 2d, Europe/Berlin):"
    );
    for m in &shapes {
        let verdict = if m.median_ms < 1000.0 { "under 1 s" } else { "OVER 1 s" };
        println!(
            "  {:<28} {:>9} entries  kept {:>6}  median {:>7.1} ms  best {:>7.1} ms  {verdict}",
            m.shape, m.entries, m.kept, m.median_ms, m.best_ms
        );
    }
    println!(
        "daily prune of {} targets (hourly backups, keepLast 24, daily 7; {} catalog entries, {} removed):",
        prune.targets, prune.entries, prune.removed
    );
    println!(
        "  Table Storage requests: {} = {} query pages + {} point reads + {} writes + {} deletes + {} transactions ({:.1} per target)",
        prune.total,
        prune.queries,
        prune.reads,
        prune.writes,
        prune.deletes,
        prune.transactions,
        prune.total as f64 / prune.targets as f64
    );
    println!(
        "  method: workflows::prune run against the SQLite state store (pages of 1,000 like Table Storage) behind a"
    );
    println!(
        "  counting wrapper of the StateStore port, one request per call; blob requests (a list and the deletes per removed"
    );
    println!("  backup) are not Table Storage and not counted. Run time against SQLite: {:.0} ms.", prune.elapsed_ms);
    Ok(())
}

//! Retention planning time over 1,000,000 catalog entries (target: under one second), and the
//! Table Storage requests a daily prune of 1,000 targets costs. See `bench/retention.sh`.

use std::process::ExitCode;

use lifeboat_bench::retention::planning;

fn main() -> ExitCode {
    let json = std::env::args().skip(1).any(|a| a == "--json");
    let runs = 5;
    let shapes = [planning::measure(1_000, 1_000, runs), planning::measure(1, 1_000_000, runs)];
    if json {
        match serde_json::to_string_pretty(&serde_json::json!({ "planning": shapes })) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("retention-bench: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "retention planning ({runs} runs each; policy keepLast 24, hourly 48, daily 14, weekly 8, monthly 12, yearly 3, within 2d, Europe/Berlin):"
    );
    for m in &shapes {
        let verdict = if m.median_ms < 1000.0 { "under 1 s" } else { "OVER 1 s" };
        println!(
            "  {:<32} {:>9} entries  kept {:>6}  median {:>8.1} ms  best {:>8.1} ms  {verdict}",
            m.shape, m.entries, m.kept, m.median_ms, m.best_ms
        );
    }
    ExitCode::SUCCESS
}

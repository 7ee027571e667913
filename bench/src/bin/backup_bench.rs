//! Compares the backup export with a raw parallel list of the same objects, and reports the
//! export's peak memory. See `backup-bench --help` and `bench/backup.sh`.

use std::process::ExitCode;

use anyhow::Context;
use lifeboat_bench::backup::args::{self, ChildArgs, Command, USAGE};
use lifeboat_bench::backup::{child, runner};

fn main() -> ExitCode {
    let result = match args::parse(std::env::args().skip(1)) {
        Ok(Command::Run(args)) => std::env::current_exe().context("find this binary").and_then(|exe| {
            let report = runner::run(&args, &exe)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).context("serialise the report")?);
            } else {
                print!("{report}");
            }
            Ok(())
        }),
        Ok(Command::Child(args)) => run_child(&args),
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("backup-bench: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("backup-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A child run: one line of JSON on stdout.
fn run_child(args: &ChildArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("start the runtime")?;
    let outcome = runtime.block_on(child::run(args)).with_context(|| format!("{} run", args.mode.as_str()))?;
    println!("{}", serde_json::to_string(&outcome).context("serialise the outcome")?);
    Ok(())
}

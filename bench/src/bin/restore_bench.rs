//! Restore of N objects against a raw parallel create of the same objects, and the RTO the
//! restore records. `restore-bench [--objects 10000] [--runs 3] [--parallelism 16] [--json]`.

use std::process::ExitCode;

use anyhow::Context;

const USAGE: &str = "usage: restore-bench [--objects N[,N…]] [--runs R] [--parallelism P] [--json]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("restore-bench: {e:#}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let (mut counts, mut runs, mut parallelism, mut json) = (vec![10_000], 3, 16, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--objects" => {
                counts = value()?.split(',').map(str::parse).collect::<Result<_, _>>().context("--objects")?;
            }
            "--runs" => runs = value()?.parse().context("--runs")?,
            "--parallelism" => parallelism = value()?.parse().context("--parallelism")?,
            "--json" => json = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let runtime = tokio::runtime::Runtime::new().context("start the runtime")?;
    let rows = runtime.block_on(lifeboat_bench::restore::run(&counts, runs, parallelism))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", lifeboat_bench::restore::table(&rows, parallelism));
    }
    Ok(())
}

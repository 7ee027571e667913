//! The parent: hosts a freshly seeded test API server per object count and starts one child
//! process per measured run, alternating the baseline and the export.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use lifeboat_test_apiserver::{Options, TestApiServer};

use super::args::{Args, Mode};
use super::child::Outcome;
use super::report::{Report, Row};
use super::seed;

/// Runs the whole benchmark; `exe` is this binary, started again for each run.
///
/// # Errors
///
/// When the server cannot start or be seeded, or a child run fails.
pub fn run(args: &Args, exe: &Path) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Runtime::new().context("start the server's runtime")?;
    let mut rows = Vec::with_capacity(args.objects.len());
    for &count in &args.objects {
        rows.push(measure_count(args, exe, &runtime, count).with_context(|| format!("{count} objects"))?);
    }
    Ok(Report::new(args.runs, args.page_size, args.concurrency, rows))
}

fn measure_count(args: &Args, exe: &Path, runtime: &tokio::runtime::Runtime, count: usize) -> anyhow::Result<Row> {
    let server = runtime.block_on(TestApiServer::start(Options::default())).context("start the test API server")?;
    let scratch = tempfile::tempdir().context("create a scratch directory")?;
    let kubeconfig = scratch.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).context("write the kubeconfig")?;
    let seeding = std::time::Instant::now();
    seed::seed(server.store(), count)?;
    eprintln!("backup-bench: seeded {count} objects in {:.1} s", seeding.elapsed().as_secs_f64());

    let child = |mode: Mode, run: &str| -> anyhow::Result<Outcome> {
        let dir = scratch.path().join(format!("{}-{run}", mode.as_str()));
        std::fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
        let outcome = run_child(exe, mode, &kubeconfig, &dir, args)?;
        // The archive is not needed afterwards; do not let a large one pile up on disk.
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
        Ok(outcome)
    };
    // One unrecorded run of each first, so both measure with the binary and the server warm.
    child(Mode::List, "warmup")?;
    child(Mode::Export, "warmup")?;
    let (mut baseline, mut export) = (Vec::with_capacity(args.runs), Vec::with_capacity(args.runs));
    for run in 0..args.runs {
        let order = if run % 2 == 0 { [Mode::List, Mode::Export] } else { [Mode::Export, Mode::List] };
        for mode in order {
            let outcome = child(mode, &run.to_string()).with_context(|| format!("run {} of {}", run + 1, args.runs))?;
            eprintln!("backup-bench: {count} objects, {}: {:.3} s", mode.as_str(), outcome.seconds);
            match mode {
                Mode::List => baseline.push(outcome),
                Mode::Export => export.push(outcome),
            }
        }
    }
    runtime.block_on(server.shutdown());
    check_counts(count, &baseline, &export)?;
    Row::new(count, &baseline, &export).context("no runs")
}

/// Both modes must have seen at least the seeded objects, or the comparison means nothing.
fn check_counts(count: usize, baseline: &[Outcome], export: &[Outcome]) -> anyhow::Result<()> {
    for outcome in baseline.iter().chain(export) {
        if outcome.objects < count as u64 {
            bail!("{} saw {} objects, fewer than the {count} seeded", outcome.mode.as_str(), outcome.objects);
        }
    }
    Ok(())
}

fn run_child(exe: &Path, mode: Mode, kubeconfig: &Path, scratch: &Path, args: &Args) -> anyhow::Result<Outcome> {
    let output = Command::new(exe)
        .args(["--child", mode.as_str(), "--page-size", &args.page_size.to_string()])
        .args(["--concurrency", &args.concurrency.to_string()])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--scratch")
        .arg(scratch)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("start {}", exe.display()))?;
    if !output.status.success() {
        bail!("the {} child failed ({})", mode.as_str(), output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("read the {} child's report {line:?}", mode.as_str()))
}

//! Compares a custom-handler binary's cold start and memory with a baseline binary.
//! See `coldstart --help` and `bench/run.sh`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use lifeboat_bench::args::{self, Args, Command, USAGE};
use lifeboat_bench::probe::{self, Sample, Target};
use lifeboat_bench::report::{Measured, Report};

/// Unrecorded starts per binary first, so both run with the binary in the page cache.
const WARMUP_RUNS: usize = 1;

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("coldstart: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("coldstart: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let targets = [
        Target {
            label: "candidate",
            path: args.candidate.clone(),
            args: args.candidate_args.clone(),
            fresh_data_dir: true,
        },
        Target {
            label: "baseline",
            path: args.baseline.clone(),
            args: args.baseline_args.clone(),
            fresh_data_dir: false,
        },
    ];
    let scratch = Scratch::create()?;
    for (i, target) in targets.iter().enumerate() {
        for warmup in 0..WARMUP_RUNS {
            probe::measure(target, &scratch.run_dir(&format!("warmup-{i}-{warmup}"))?).context("warm-up")?;
        }
    }

    let mut samples: [Vec<Sample>; 2] = [Vec::with_capacity(args.runs), Vec::with_capacity(args.runs)];
    for run in 0..args.runs {
        // Alternate which binary goes first, so neither always follows the other.
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let sample = probe::measure(&targets[i], &scratch.run_dir(&format!("run-{run}-{i}"))?)
                .with_context(|| format!("run {} of {}", run + 1, args.runs))?;
            samples[i].push(sample);
        }
    }

    let [candidate_samples, baseline_samples] = &samples;
    let candidate = Measured::new(command_line(&targets[0]), candidate_samples).context("no candidate samples")?;
    let baseline = Measured::new(command_line(&targets[1]), baseline_samples).context("no baseline samples")?;
    let report = Report::new(args.runs, WARMUP_RUNS, candidate, baseline);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).context("serialise the report")?);
    } else {
        print!("{report}");
    }
    Ok(())
}

fn command_line(target: &Target) -> String {
    std::iter::once(target.path.display().to_string()).chain(target.args.iter().cloned()).collect::<Vec<_>>().join(" ")
}

/// A temporary directory holding one fresh subdirectory per start; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("lifeboat-coldstart-{}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self(path))
    }

    fn run_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.0.join(name);
        fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(error) = fs::remove_dir_all(self.path()) {
            eprintln!("coldstart: could not remove {}: {error}", self.path().display());
        }
    }
}

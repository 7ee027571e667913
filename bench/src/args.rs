//! Command-line arguments of `coldstart`, parsed by hand (four flags do not need a parser).

use std::path::PathBuf;

/// Usage text printed by `--help` and after an argument error.
pub const USAGE: &str = "\
usage: coldstart --candidate PATH [--candidate-args ARGS] --baseline PATH [--baseline-args ARGS]
                 [--runs N] [--json]

  --candidate PATH       binary under test (started with LIFEBOAT_DATA set to a fresh directory)
  --candidate-args ARGS  its arguments, split on whitespace (e.g. \"handler\")
  --baseline PATH        binary to compare with (e.g. target/release/minimal-axum)
  --baseline-args ARGS   its arguments, split on whitespace
  --runs N               measured starts per binary (default 30)
  --json                 print the report as JSON instead of a table

Both binaries must listen on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT and answer GET /healthz with 200.";

/// Default number of measured starts per binary.
pub const DEFAULT_RUNS: usize = 30;

/// What `coldstart` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Measure, with these settings.
    Run(Args),
    /// Print the usage text.
    Help,
}

/// Settings for one benchmark.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub candidate: PathBuf,
    pub candidate_args: Vec<String>,
    pub baseline: PathBuf,
    pub baseline_args: Vec<String>,
    pub runs: usize,
    pub json: bool,
}

/// Parses the arguments after the program name.
///
/// # Errors
///
/// A message naming the unknown flag, the missing value or the missing required flag.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let (mut candidate, mut baseline) = (None, None);
    let (mut candidate_args, mut baseline_args) = (Vec::new(), Vec::new());
    let (mut runs, mut json) = (DEFAULT_RUNS, false);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--candidate" => candidate = Some(PathBuf::from(value()?)),
            "--candidate-args" => candidate_args = split(&value()?),
            "--baseline" => baseline = Some(PathBuf::from(value()?)),
            "--baseline-args" => baseline_args = split(&value()?),
            "--runs" => runs = value()?.parse().ok().filter(|n| *n > 0).ok_or("--runs needs a positive integer")?,
            "--json" => json = true,
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Command::Run(Args {
        candidate: candidate.ok_or("--candidate is required")?,
        candidate_args,
        baseline: baseline.ok_or("--baseline is required")?,
        baseline_args,
        runs,
        json,
    }))
}

fn split(args: &str) -> Vec<String> {
    args.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command, String> {
        parse(line.split(' ').filter(|s| !s.is_empty()).map(str::to_owned))
    }

    #[test]
    fn parses_all_flags_in_both_spellings() {
        let parsed = parse_str("--candidate a --candidate-args=handler --baseline=b --runs 5 --json");
        let expected = Args {
            candidate: "a".into(),
            candidate_args: vec!["handler".into()],
            baseline: "b".into(),
            baseline_args: vec![],
            runs: 5,
            json: true,
        };
        assert_eq!(parsed, Ok(Command::Run(expected)));
    }

    #[test]
    fn defaults_runs_to_thirty() {
        let Ok(Command::Run(args)) = parse_str("--candidate a --baseline b") else { panic!("should parse") };
        assert_eq!(args.runs, DEFAULT_RUNS);
        assert!(!args.json);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse_str("--baseline b").is_err_and(|e| e.contains("--candidate")));
        assert!(parse_str("--candidate a --baseline b --runs 0").is_err());
        assert!(parse_str("--candidate a --baseline b --runs").is_err_and(|e| e.contains("needs a value")));
        assert!(parse_str("--candidate a --baseline b --frobnicate").is_err_and(|e| e.contains("frobnicate")));
        assert_eq!(parse_str("--candidate a --help"), Ok(Command::Help));
    }
}

//! Command-line arguments of `backup-bench`, parsed by hand like `coldstart`'s.

use std::path::PathBuf;

/// Usage text printed by `--help` and after an argument error.
pub const USAGE: &str = "\
usage: backup-bench [--objects N,N,...] [--runs N] [--page-size N] [--concurrency N] [--json]

  --objects N,N,...  object counts to measure, each against a freshly seeded test API server
                     (default 10000,50000)
  --runs N           measured runs per mode and count, alternating list and export (default 3)
  --page-size N      objects per list page, for both modes (default 500, as the export's)
  --concurrency N    lists running at once, for both modes (default 4, as the export's)
  --json             print the report as JSON instead of a table

Each run is a fresh child process (this binary with --child), so its peak RSS is its own.";

/// Default object counts.
pub const DEFAULT_OBJECTS: [usize; 2] = [10_000, 50_000];
/// Default measured runs per mode and count.
pub const DEFAULT_RUNS: usize = 3;
/// Default page size (the export's default).
pub const DEFAULT_PAGE_SIZE: u32 = 500;
/// Default list concurrency (the export's default).
pub const DEFAULT_CONCURRENCY: usize = 4;

/// What `backup-bench` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Seed, measure and report.
    Run(Args),
    /// Measure one run against a running server (the parent starts these).
    Child(ChildArgs),
    /// Print the usage text.
    Help,
}

/// Settings of the whole benchmark.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub objects: Vec<usize>,
    pub runs: usize,
    pub page_size: u32,
    pub concurrency: usize,
    pub json: bool,
}

/// What a child process measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The baseline: a raw parallel list, items counted and dropped.
    List,
    /// The candidate: the real export into a local-directory object store.
    Export,
}

impl Mode {
    /// The `--child` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::List => "list",
            Mode::Export => "export",
        }
    }
}

/// Settings of one child run.
#[derive(Debug, PartialEq, Eq)]
pub struct ChildArgs {
    pub mode: Mode,
    pub kubeconfig: PathBuf,
    /// An empty directory the export may write its archive into.
    pub scratch: PathBuf,
    pub page_size: u32,
    pub concurrency: usize,
}

/// Parses the arguments after the program name.
///
/// # Errors
///
/// A message naming the unknown flag, the bad or missing value.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut parsed = Args {
        objects: DEFAULT_OBJECTS.to_vec(),
        runs: DEFAULT_RUNS,
        page_size: DEFAULT_PAGE_SIZE,
        concurrency: DEFAULT_CONCURRENCY,
        json: false,
    };
    let (mut child, mut kubeconfig, mut scratch) = (None, None, None);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--objects" => parsed.objects = counts(&value()?)?,
            "--runs" => parsed.runs = positive(&value()?).ok_or("--runs needs a positive integer")?,
            "--page-size" => parsed.page_size = positive(&value()?).ok_or("--page-size needs a positive integer")?,
            "--concurrency" => {
                parsed.concurrency = positive(&value()?).ok_or("--concurrency needs a positive integer")?
            }
            "--json" => parsed.json = true,
            "--child" => {
                child = Some(match value()?.as_str() {
                    "list" => Mode::List,
                    "export" => Mode::Export,
                    other => return Err(format!("--child is list or export, not {other:?}")),
                })
            }
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value()?)),
            "--scratch" => scratch = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    match child {
        None => Ok(Command::Run(parsed)),
        Some(mode) => Ok(Command::Child(ChildArgs {
            mode,
            kubeconfig: kubeconfig.ok_or("--child needs --kubeconfig")?,
            scratch: scratch.ok_or("--child needs --scratch")?,
            page_size: parsed.page_size,
            concurrency: parsed.concurrency,
        })),
    }
}

fn positive<T: std::str::FromStr + Default + PartialOrd>(value: &str) -> Option<T> {
    value.parse().ok().filter(|n| *n > T::default())
}

fn counts(value: &str) -> Result<Vec<usize>, String> {
    let counts: Option<Vec<usize>> = value.split(',').map(|n| positive(n.trim())).collect();
    counts.filter(|c| !c.is_empty()).ok_or_else(|| format!("--objects needs positive integers, not {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command, String> {
        parse(line.split(' ').filter(|s| !s.is_empty()).map(str::to_owned))
    }

    #[test]
    fn defaults_match_the_issue_and_the_export() {
        let expected = Args { objects: vec![10_000, 50_000], runs: 3, page_size: 500, concurrency: 4, json: false };
        assert_eq!(parse_str(""), Ok(Command::Run(expected)));
    }

    #[test]
    fn parses_all_flags_in_both_spellings() {
        let parsed = parse_str("--objects=200,1000 --runs 1 --page-size=50 --concurrency 2 --json");
        let expected = Args { objects: vec![200, 1000], runs: 1, page_size: 50, concurrency: 2, json: true };
        assert_eq!(parsed, Ok(Command::Run(expected)));
    }

    #[test]
    fn parses_a_child_run() {
        let parsed = parse_str("--child export --kubeconfig k --scratch s --page-size 50");
        let expected = ChildArgs {
            mode: Mode::Export,
            kubeconfig: "k".into(),
            scratch: "s".into(),
            page_size: 50,
            concurrency: DEFAULT_CONCURRENCY,
        };
        assert_eq!(parsed, Ok(Command::Child(expected)));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse_str("--objects 10,0").is_err_and(|e| e.contains("--objects")));
        assert!(parse_str("--objects").is_err_and(|e| e.contains("needs a value")));
        assert!(parse_str("--runs 0").is_err());
        assert!(parse_str("--child copy --kubeconfig k --scratch s").is_err_and(|e| e.contains("copy")));
        assert!(parse_str("--child list --scratch s").is_err_and(|e| e.contains("--kubeconfig")));
        assert!(parse_str("--frobnicate").is_err_and(|e| e.contains("frobnicate")));
        assert_eq!(parse_str("--runs 2 --help"), Ok(Command::Help));
    }
}

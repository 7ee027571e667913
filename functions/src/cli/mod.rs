//! The command line: one file per subcommand.

mod backup;
mod backups;
mod handler;
mod hold;
mod lambda;
mod policy;
mod prune;
mod restore;
mod retention;
mod status;
mod up;
mod wait;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use lifeboat_shared::config::{self, LoadError};
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::domain::schedule::Schedule;

/// Backup and disaster recovery for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the local runtime: timers, queues, Event Grid endpoint and status, on one machine.
    Up(up::Args),
    /// Run as the Azure Functions custom handler (started by the Functions host via host.json).
    Handler(handler::Args),
    /// Run as an AWS Lambda custom runtime (a `bootstrap` that execs `lifeboat lambda`).
    Lambda(lambda::Args),
    /// Show targets, queues and dead letters of a local runtime's data.
    Status(status::Args),
    /// Check policy files.
    #[command(subcommand)]
    Policy(policy::Command),
    /// Request backups.
    #[command(subcommand)]
    Backup(backup::Command),
    /// The backup catalog.
    #[command(subcommand)]
    Backups(backups::Command),
    /// Restore from a backup.
    #[command(subcommand)]
    Restore(restore::Command),
    /// Legal holds: backups retention never removes.
    #[command(subcommand)]
    Hold(hold::Command),
    /// Apply retention now (as the daily timer does); --dry-run shows what would go and why.
    Prune(prune::Args),
    /// Try retention policies before applying them.
    #[command(subcommand)]
    Retention(retention::Command),
}

/// Where the embedded defaults keep their data unless told otherwise.
pub(crate) const DEFAULT_DATA_DIR: &str = ".lifeboat";

/// Options shared by commands that use a local runtime's data and configuration.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Local {
    /// Directory of the embedded state, queues and objects.
    #[arg(long, env = "LIFEBOAT_DATA", default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Policy and cluster YAML: a file, or a directory of *.yaml files.
    #[arg(long, env = "LIFEBOAT_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Entry point: parses arguments, runs the command, maps errors to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Up(args) => runtime().and_then(|rt| rt.block_on(up::run(args))),
        Command::Handler(args) => runtime().and_then(|rt| rt.block_on(handler::run(args))),
        Command::Lambda(args) => runtime().and_then(|rt| rt.block_on(lambda::run(args))),
        Command::Status(args) => runtime().and_then(|rt| rt.block_on(status::run(args))),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Backup(cmd) => runtime().and_then(|rt| rt.block_on(backup::run(cmd))),
        Command::Backups(cmd) => runtime().and_then(|rt| rt.block_on(backups::run(cmd))),
        Command::Restore(cmd) => runtime().and_then(|rt| rt.block_on(restore::run(cmd))),
        Command::Hold(cmd) => runtime().and_then(|rt| rt.block_on(hold::run(cmd))),
        Command::Prune(args) => runtime().and_then(|rt| rt.block_on(prune::run(args))),
        Command::Retention(cmd) => retention::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LIFEBOAT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Loads the configuration, or an empty one when none is given.
///
/// # Errors
/// Every problem in the files, each naming file, document and field.
pub(crate) fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        None => Ok(Config::default()),
        Some(path) => config::load(path).map_err(|e| match e {
            LoadError::Invalid(_) => anyhow::anyhow!("{e}\nnothing was started"),
            LoadError::Read { .. } => anyhow::Error::new(e),
        }),
    }
}

/// The interval of a six-field schedule (the gap between its next two slots).
pub(crate) fn schedule_period(expression: &str) -> anyhow::Result<chrono::Duration> {
    let schedule = Schedule::parse(expression)?;
    let now = chrono::Utc::now();
    let first = schedule.next_after(now).context("schedule has no future slot")?;
    let second = schedule.next_after(first).context("schedule has no future slot")?;
    Ok(second - first)
}

/// Prints rows as a table for people.
pub(crate) fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING).set_header(header.to_vec());
    for row in rows {
        t.add_row(row);
    }
    t.to_string()
}

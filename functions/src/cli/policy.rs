//! `lifeboat policy validate`: checks policy files and lists the targets they define.

use std::path::PathBuf;
use std::process::ExitCode;

use lifeboat_shared::config::{self, LoadError};
use lifeboat_shared::domain::policy::format_duration;
use serde_json::json;

use super::table;

/// `lifeboat policy …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Check a policy file or directory; list the targets it defines.
    Validate {
        /// A YAML file, or a directory of *.yaml files.
        path: PathBuf,
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Validate { path, json } = command;
    match config::load(&path) {
        Ok(config) => {
            let targets = config.targets();
            if json {
                let list: Vec<_> = targets
                    .iter()
                    .map(|t| {
                        json!({"target": t.key(), "policy": t.policy.name, "cluster": t.cluster.name,
                        "schedule": t.policy.spec.schedule.expression(), "rpoSeconds": t.policy.spec.rpo.as_secs()})
                    })
                    .collect();
                println!("{}", json!({"valid": true, "targets": list}));
            } else {
                let rows = targets
                    .iter()
                    .map(|t| {
                        vec![
                            t.key(),
                            t.policy.spec.schedule.expression().to_owned(),
                            format_duration(t.policy.spec.rpo),
                            t.cluster.spec.region.clone(),
                            t.policy.spec.replication.as_ref().map(|r| r.region.clone()).unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect();
                println!("{}: valid, {} target(s)", path.display(), targets.len());
                println!("{}", table(&["TARGET", "SCHEDULE", "RPO", "REGION", "REPLICA"], rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(LoadError::Invalid(errors)) => {
            if json {
                let list: Vec<_> = errors
                    .iter()
                    .map(|e| json!({"file": e.source_name, "document": e.document, "field": e.field, "problem": e.problem}))
                    .collect();
                println!("{}", json!({"valid": false, "errors": list}));
            } else {
                eprintln!("{}: {} problem(s)", path.display(), errors.len());
                for e in &errors {
                    eprintln!("  {e}");
                }
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

//! `lifeboat retention simulate`: tries a retention policy on a list of backup times, before
//! it is applied, and prints what would be kept and removed, and why.
//!
//! `--policy FILE` is either policy YAML as `lifeboat policy validate` reads it (a file or a
//! directory; pick the policy with `--policy-name` when it holds several, and the replica's
//! retention with `--replica`), or a YAML document holding just a retention block:
//!
//! ```yaml
//! retention: { keepLast: 7, daily: 14, weekly: 8, timeZone: Europe/Berlin }
//! ```
//!
//! `--backups FILE` is a JSON array; each entry an RFC 3339 time, or an object
//! `{"time": "…", "id": "…", "pinned": true, "preUpgrade": true, "committed": false,
//! "immutableUntil": "…", "inUse": true}` (every field but `time` optional).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_shared::config;
use lifeboat_shared::domain::policy::{Retention, format_duration};
use lifeboat_shared::domain::retention::{self, Candidate, Decision, Options};
use serde::Deserialize;
use serde_json::json;

use super::table;

/// `lifeboat retention …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Show which backups a retention policy keeps and removes, each with its rules.
    Simulate(SimulateArgs),
}

/// `lifeboat retention simulate`
#[derive(Debug, clap::Args)]
pub(crate) struct SimulateArgs {
    /// Policy YAML (file or directory), or a YAML document with only a `retention:` block.
    #[arg(long)]
    policy: PathBuf,
    /// JSON array of backups: RFC 3339 times, or objects with `time` and flags.
    #[arg(long)]
    backups: PathBuf,
    /// The moment to decide at (RFC 3339); now when absent.
    #[arg(long)]
    now: Option<DateTime<Utc>>,
    /// Which policy of the file (needed when it declares several).
    #[arg(long)]
    policy_name: Option<String>,
    /// Use the policy's replica retention (`replication.retention`, else the primary's).
    #[arg(long)]
    replica: bool,
    /// How long uncommitted backups may still be in progress before they are leftovers.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1d")]
    grace: Duration,
    /// Print JSON for machines.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Simulate(args) = command;
    let retention = read_retention(&args.policy, args.policy_name.as_deref(), args.replica)?;
    let backups = read_backups(&args.backups)?;
    let options = Options { now: args.now.unwrap_or_else(Utc::now), uncommitted_grace: args.grace };
    let decisions = retention::plan(&retention, &backups.candidates, &options);
    let mut rows: Vec<(&Candidate, &Decision)> = backups.candidates.iter().zip(&decisions).collect();
    rows.sort_by(|a, b| b.0.time.cmp(&a.0.time).then_with(|| a.0.id.cmp(&b.0.id)));
    let kept = rows.iter().filter(|(_, d)| d.is_kept()).count();
    let zone = retention.time_zone.unwrap_or(chrono_tz::UTC);
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(b, d)| {
                json!({"id": b.id, "time": b.time, "keep": d.is_kept(), "why": why(d), "decision": d,
                       "committed": b.committed, "preUpgrade": b.pre_upgrade, "pinned": b.pinned,
                       "immutableUntil": b.immutable_until, "inUse": b.in_use})
            })
            .collect();
        let summary = json!({"now": options.now, "timeZone": zone.name(), "kept": kept,
                             "removed": rows.len() - kept, "backups": list});
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(ExitCode::SUCCESS);
    }
    let table_rows = rows
        .iter()
        .map(|(b, d)| {
            let mut cells = vec![b.time.with_timezone(&zone).to_rfc3339_opts(SecondsFormat::Secs, true)];
            if backups.explicit_ids {
                cells.push(b.id.clone());
            }
            cells.extend([
                flags(b, options.now),
                if d.is_kept() { "keep" } else { "remove" }.to_owned(),
                why(d).join(", "),
            ]);
            cells
        })
        .collect();
    let header: &[&str] = if backups.explicit_ids {
        &["TIME", "ID", "FLAGS", "DECISION", "WHY"]
    } else {
        &["TIME", "FLAGS", "DECISION", "WHY"]
    };
    println!("{}", table(header, table_rows));
    println!(
        "keep {kept}, remove {} (time zone {}, now {}, uncommitted grace {})",
        rows.len() - kept,
        zone.name(),
        options.now.to_rfc3339_opts(SecondsFormat::Secs, true),
        format_duration(options.uncommitted_grace),
    );
    Ok(ExitCode::SUCCESS)
}

/// Every rule that keeps it, or why it goes.
fn why(decision: &Decision) -> Vec<String> {
    match decision {
        Decision::Keep(reasons) => reasons.iter().map(ToString::to_string).collect(),
        Decision::Remove(reason) => vec![reason.to_string()],
    }
}

fn flags(b: &Candidate, now: DateTime<Utc>) -> String {
    let flags: Vec<&str> = [
        (!b.committed).then_some("uncommitted"),
        b.pre_upgrade.then_some("pre-upgrade"),
        b.pinned.then_some("pinned"),
        b.is_immutable_at(now).then_some("immutable"),
        b.in_use.then_some("in use"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if flags.is_empty() { "-".to_owned() } else { flags.join(",") }
}

/// A YAML document holding only a retention block.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionDocument {
    retention: Retention,
}

/// The retention to simulate: from a bare `retention:` block, or from a policy file.
fn read_retention(path: &Path, policy_name: Option<&str>, replica: bool) -> anyhow::Result<Retention> {
    if path.is_file() {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut documents = serde_yaml_ng::Deserializer::from_str(&text);
        let first = documents.next().map(serde_yaml_ng::Value::deserialize).transpose();
        let first = first.with_context(|| format!("{} is not YAML", path.display()))?;
        let single = documents.next().is_none();
        if let Some(value) = first.filter(|v| single && v.get("apiVersion").is_none()) {
            ensure!(
                policy_name.is_none() && !replica,
                "--policy-name and --replica need a policy document, not a bare retention block"
            );
            let doc: RetentionDocument = serde_path_to_error::deserialize(value).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {}: {} (expected `retention: {{ keepLast: 7, daily: 14 }}` or a BackupPolicy document)",
                    path.display(),
                    e.path(),
                    e.inner()
                )
            })?;
            ensure!(
                doc.retention.keeps_something(),
                "{}: retention keeps nothing: set keepLast, a bucket (hourly … yearly) or within",
                path.display()
            );
            return Ok(doc.retention);
        }
    }
    let config = config::load(path)?;
    let policy = match policy_name {
        Some(name) => config
            .policies
            .values()
            .find(|p| p.name.as_str() == name)
            .with_context(|| format!("{} declares no policy {name:?}", path.display()))?,
        None => {
            let mut policies = config.policies.values();
            match (policies.next(), policies.next()) {
                (Some(policy), None) => policy,
                (None, _) => bail!("{} declares no BackupPolicy", path.display()),
                (Some(_), Some(_)) => {
                    let names: Vec<_> = config.policies.keys().map(ToString::to_string).collect();
                    bail!(
                        "{} declares several policies ({}): choose one with --policy-name",
                        path.display(),
                        names.join(", ")
                    )
                }
            }
        }
    };
    Ok(if replica { policy.spec.replica_retention().clone() } else { policy.spec.retention.clone() })
}

/// One entry of the backups file, in its object form.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    time: DateTime<Utc>,
    id: Option<String>,
    #[serde(default = "yes")]
    committed: bool,
    #[serde(default)]
    pre_upgrade: bool,
    #[serde(default)]
    pinned: bool,
    immutable_until: Option<DateTime<Utc>>,
    #[serde(default)]
    in_use: bool,
}

fn yes() -> bool {
    true
}

/// The backups read from the file.
struct Backups {
    candidates: Vec<Candidate>,
    /// Whether some entry named its id (else ids are the times as written).
    explicit_ids: bool,
}

fn read_backups(path: &Path) -> anyhow::Result<Backups> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let serde_json::Value::Array(entries) =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?
    else {
        bail!("{}: expected a JSON array of RFC 3339 times or {{\"time\": …}} objects", path.display());
    };
    let mut backups = Backups { candidates: Vec::with_capacity(entries.len()), explicit_ids: false };
    for (index, entry) in entries.into_iter().enumerate() {
        let at = || format!("{}: entry {}", path.display(), index + 1);
        let (label, entry) = match entry {
            serde_json::Value::String(time) => {
                let parsed = DateTime::parse_from_rfc3339(&time)
                    .with_context(|| format!("{}: {time:?} is not an RFC 3339 time", at()))?;
                (
                    time,
                    Entry {
                        time: parsed.with_timezone(&Utc),
                        id: None,
                        committed: true,
                        pre_upgrade: false,
                        pinned: false,
                        immutable_until: None,
                        in_use: false,
                    },
                )
            }
            object @ serde_json::Value::Object(_) => {
                let entry: Entry = serde_json::from_value(object).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
                (entry.time.to_rfc3339_opts(SecondsFormat::AutoSi, true), entry)
            }
            other => bail!("{}: expected an RFC 3339 time or an object, found {other}", at()),
        };
        backups.explicit_ids |= entry.id.is_some();
        backups.candidates.push(Candidate {
            id: entry.id.unwrap_or(label),
            time: entry.time,
            committed: entry.committed,
            pre_upgrade: entry.pre_upgrade,
            pinned: entry.pinned,
            immutable_until: entry.immutable_until,
            in_use: entry.in_use,
        });
    }
    Ok(backups)
}

//! `lifeboat restore submit -f request.yaml [--dry-run] [--wait]`: checks a restore request
//! locally, then either prints its plan (dry run, computed here from the backup, nothing sent
//! or written) or puts it on `restore-requests` and, with `--wait`, follows it to its result.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use lifeboat_shared::domain::messages::{Message, RestorePhase, RestoreRequest, encode};
use lifeboat_shared::domain::records::RestoreRecord;
use lifeboat_shared::domain::restore::RestorePlan;
use lifeboat_shared::ports::OutgoingMessage;
use lifeboat_shared::restores;
use lifeboat_shared::workflows::restore::{self, RestoreError};
use serde_json::{Value, json};

use super::{Local, load_config, table};
use crate::app::{self, AppState, DataDir, Settings};
use crate::bus::BusChoice;
use crate::storage::Storage;

/// `lifeboat restore …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Check a restore request and submit it (or print its plan with --dry-run).
    Submit {
        #[command(flatten)]
        local: Local,
        /// The request, as YAML or JSON (the `restore-requests` message; `schemaVersion` and
        /// `requestId` may be left out: version 1 and a fresh id are filled in).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Print the plan (every object in apply order, exactly as it would be sent, and every
        /// skip with its reason) instead of submitting.
        #[arg(long)]
        dry_run: bool,
        /// Follow the restore until it ends: exit 0 completed, 1 failed or partially failed,
        /// 2 when --timeout passes first. A running `lifeboat up` on the same data does the work.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, e.g. 30m.
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// `table` for people, `json` for machines.
        #[arg(long, short = 'o', default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
}

pub(crate) async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Submit { local, file, dry_run, wait, timeout, output } = command;
    let json_out = output == "json";
    let config = load_config(local.config.as_deref())?;
    let mut request = read_request(&file)?;
    request.dry_run |= dry_run;
    if let Err(problems) = request.check() {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        anyhow::bail!("{}: the request is not valid:\n{}", file.display(), lines.join("\n"));
    }
    for cluster in [&request.source_cluster, &request.target_cluster] {
        anyhow::ensure!(
            config.clusters.contains_key(cluster),
            "cluster {cluster} is not declared in the configuration"
        );
    }
    let settings = Settings::from_env()?;
    let read = settings.restore.read.clone();
    let (app, _queue) = app::build(
        &DataDir::new(&local.data),
        config,
        settings,
        &Storage::from_env()?,
        &BusChoice::from_env()?,
        std::sync::Arc::new(lifeboat_shared::ports::SystemClock),
    )?;
    if request.dry_run {
        return plan(&app, &request, &read, json_out).await;
    }
    let mut message = OutgoingMessage::json(RestoreRequest::QUEUE.name(), request.message_id(), encode(&request));
    message.correlation_id = Some(request.restore_id());
    app.bus.send(message).await?;
    if wait {
        return follow(&app, &request, json_out, timeout).await;
    }
    if json_out {
        println!("{}", json!({"restoreId": request.restore_id(), "queue": RestoreRequest::QUEUE.name()}));
    } else {
        println!("submitted restore {} (queue {})", request.restore_id(), RestoreRequest::QUEUE.name());
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the request file: YAML (JSON is YAML), with field paths in errors.
fn read_request(path: &Path) -> anyhow::Result<RestoreRequest> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut value: Value =
        serde_yaml_ng::from_str(&text).with_context(|| format!("{}: not valid YAML", path.display()))?;
    let Some(map) = value.as_object_mut() else {
        anyhow::bail!("{}: expected a mapping of request fields", path.display());
    };
    map.entry("schemaVersion").or_insert(json!(RestoreRequest::SCHEMA_VERSION));
    map.entry("requestId").or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path_in = e.path().to_string();
        anyhow::anyhow!("{}: field {path_in}: {}", path.display(), e.into_inner())
    })
}

/// The dry run: the plan, computed here from the backup.
async fn plan(
    app: &AppState,
    request: &RestoreRequest,
    read: &lifeboat_shared::archive::ReadOptions,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let regions = app.replica_regions();
    let sources = restore::Sources { primary: app.objects.as_ref(), replicas: &regions };
    let prepared = match restore::prepare(app.state.as_ref(), sources, &app.config, request, read, None).await {
        Ok(p) => p,
        Err(RestoreError::Refused { code, reason }) => {
            eprintln!("error: the restore would be refused: {code}: {reason}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(anyhow::Error::new(e).context("planning the restore")),
    };
    if json_out {
        let answer = json!({
            "restoreId": request.restore_id(),
            "backupId": prepared.backup.backup_id,
            "targetCluster": request.target_cluster,
            "plan": prepared.plan,
        });
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print_plan(request, &prepared.backup.backup_id.to_string(), &prepared.plan);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_plan(request: &RestoreRequest, backup_id: &str, plan: &RestorePlan) {
    println!(
        "restore {} from backup {backup_id} into cluster {} (dry run: nothing sent)\n",
        request.restore_id(),
        request.target_cluster
    );
    let rows = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let resource = if s.group.is_empty() { s.resource.clone() } else { format!("{}.{}", s.resource, s.group) };
            let tier =
                serde_json::to_value(s.tier).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            vec![(i + 1).to_string(), tier, resource, s.namespace.clone().unwrap_or_default(), s.name.clone()]
        })
        .collect();
    println!("{}", table(&["#", "TIER", "RESOURCE", "NAMESPACE", "NAME"], rows));
    if !plan.skipped.is_empty() {
        let rows = plan
            .skipped
            .iter()
            .map(|s| {
                vec![s.resource.clone(), s.namespace.clone().unwrap_or_default(), s.name.clone(), s.reason.to_string()]
            })
            .collect();
        println!("\nskipped:\n{}", table(&["RESOURCE", "NAMESPACE", "NAME", "WHY"], rows));
    }
    println!("\n{} object(s) to send, {} skipped", plan.steps.len(), plan.skipped.len());
}

/// Follows the restore record with a spinner until it ends.
async fn follow(
    app: &AppState,
    request: &RestoreRequest,
    json_out: bool,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let id = request.restore_id();
    eprintln!(
        "submitted restore {id}; waiting up to {} for it to end. A running `lifeboat up` on the same data does \
         the work: without one, nothing takes it from the queue.",
        humantime::format_duration(timeout)
    );
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    let started = std::time::Instant::now();
    let mut last: Option<RestoreRecord> = None;
    while started.elapsed() < timeout {
        last = restores::get(app.state.as_ref(), &request.target_cluster, &id).await?.map(|(r, _)| r);
        if let Some(r) = &last {
            let c = &r.counts;
            spinner.set_message(format!(
                "restore {id}: {:?}, {}/{} applied, {} failed ({}s)",
                r.phase,
                c.created + c.updated + c.unchanged,
                c.planned,
                c.failed,
                started.elapsed().as_secs()
            ));
            if r.is_finished() {
                break;
            }
        } else {
            spinner.set_message(format!("restore {id}: queued ({}s)", started.elapsed().as_secs()));
        }
        tokio::time::sleep(super::wait::POLL).await;
    }
    spinner.finish_and_clear();
    let finished = last.as_ref().filter(|r| r.is_finished());
    let code = match finished.map(|r| r.phase) {
        Some(RestorePhase::Completed) => ExitCode::SUCCESS,
        Some(_) => ExitCode::from(1),
        None => ExitCode::from(2),
    };
    if json_out {
        let answer = json!({"restoreId": id, "timedOut": finished.is_none(), "record": last});
        println!("{answer}");
    } else if let Some(r) = finished {
        let c = &r.counts;
        println!(
            "restore {id}: {:?}; {} created, {} updated, {} unchanged, {} failed, {} skipped; RTO {}s",
            r.phase,
            c.created,
            c.updated,
            c.unchanged,
            c.failed,
            c.skipped,
            r.rto_seconds.unwrap_or(0)
        );
        if let Some(reason) = &r.reason {
            println!("reason: {reason}");
        }
        if !r.failures.is_empty() {
            let rows = r
                .failures
                .iter()
                .map(|f| {
                    vec![f.resource.clone(), f.namespace.clone().unwrap_or_default(), f.name.clone(), f.message.clone()]
                })
                .collect();
            println!("{}", table(&["RESOURCE", "NAMESPACE", "NAME", "ERROR"], rows));
        }
    } else {
        eprintln!(
            "error: restore {id} has not ended after {} (is `lifeboat up` running on the same data?)",
            humantime::format_duration(timeout)
        );
    }
    Ok(code)
}

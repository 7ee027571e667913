//! `lifeboat backup now`: an on-demand backup of one target, through the queue.

use std::process::ExitCode;
use std::time::Duration;

use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::messages::{BackupReason, BackupRequest, Message, Priority, encode};
use lifeboat_shared::domain::names::{ClusterName, PolicyName};
use lifeboat_shared::ports::OutgoingMessage;
use serde_json::json;

use super::wait::{self, Ended};
use super::{Local, load_config};
use crate::app::{self, AppState, DataDir, Settings};
use crate::bus::BusChoice;
use crate::storage::Storage;

/// `lifeboat backup …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Request a backup of one target now.
    Now {
        #[command(flatten)]
        local: Local,
        /// The cluster.
        #[arg(long)]
        cluster: ClusterName,
        /// The policy that selects what to back up.
        #[arg(long)]
        policy: PolicyName,
        /// Id of this request: the same id never backs up twice (give your pipeline's run id).
        #[arg(long)]
        request_id: Option<String>,
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
        /// Follow the backup until it is committed (exit 0) or failed (exit 1), or --timeout
        /// passes (exit 2). A running `lifeboat up` on the same data does the work.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, e.g. 90s, 10m.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

pub(crate) async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Now { local, cluster, policy, request_id, json, wait, timeout } = command;
    let config = load_config(local.config.as_deref())?;
    let protects = config.policies.get(&policy).is_some_and(|p| p.spec.clusters.contains(&cluster));
    anyhow::ensure!(protects, "policy {policy} does not protect cluster {cluster} in the given configuration");
    let data = DataDir::new(&local.data);
    let storage = Storage::from_env()?;
    let bus = BusChoice::from_env()?;
    let (app, _queue) = app::build(
        &data,
        config,
        Settings::default(),
        &storage,
        &bus,
        std::sync::Arc::new(lifeboat_shared::ports::SystemClock),
    )?;
    let request_id = request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request = BackupRequest {
        schema_version: BackupRequest::SCHEMA_VERSION,
        backup_id: BackupId::on_demand(&policy, &request_id),
        cluster,
        policy,
        reason: BackupReason::OnDemand { request_id, requested_by: std::env::var("USER").ok() },
        priority: Priority::High,
        requested_at: app.clock.now(),
    };
    let mut message = OutgoingMessage::json(BackupRequest::QUEUE.name(), request.message_id(), encode(&request));
    message.correlation_id = Some(request.backup_id.to_string());
    app.bus.send(message).await?;
    if wait {
        return follow(&app, &request, json, timeout).await;
    }
    if json {
        println!(
            "{}",
            json!({"backupId": request.backup_id, "cluster": request.cluster, "queue": BackupRequest::QUEUE.name()})
        );
    } else {
        println!(
            "requested backup {} of cluster {} (queue {})",
            request.backup_id,
            request.cluster,
            BackupRequest::QUEUE.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows the requested backup with a spinner until it ends; the exit code says how.
async fn follow(app: &AppState, request: &BackupRequest, json: bool, timeout: Duration) -> anyhow::Result<ExitCode> {
    let id = &request.backup_id;
    eprintln!(
        "requested backup {id} of cluster {}; waiting up to {} for it to commit. A running `lifeboat up` on \
         the same data does the work: without one, nothing takes it from the queue.",
        request.cluster,
        humantime::format_duration(timeout)
    );
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    let started = std::time::Instant::now();
    let ended = wait::follow(app.state.as_ref(), &request.cluster, id, timeout, wait::POLL, |state| {
        spinner.set_message(format!("backup {id}: {} ({}s)", wait::describe(state), started.elapsed().as_secs()));
    })
    .await;
    spinner.finish_and_clear();
    let (state, failure, code) = match ended? {
        Ended::Committed(r) => (Some(r.state), None, ExitCode::SUCCESS),
        Ended::Failed(r) => (Some(r.state), r.failure.clone(), ExitCode::from(1)),
        Ended::TimedOut(state) => (state, None, ExitCode::from(2)),
    };
    let state_name = wait::describe(state);
    if json {
        let answer = json!({
            "backupId": id, "cluster": request.cluster, "queue": BackupRequest::QUEUE.name(),
            "state": state_name, "failure": failure, "timedOut": code == ExitCode::from(2),
        });
        println!("{answer}");
    } else if code == ExitCode::SUCCESS {
        println!("backup {id} of cluster {} is {state_name}", request.cluster);
    } else if let Some(failure) = failure {
        eprintln!("error: backup {id} failed: {failure}");
    } else {
        eprintln!(
            "error: backup {id} is still {state_name} after {} (is `lifeboat up` running on the same data?)",
            humantime::format_duration(timeout)
        );
    }
    Ok(code)
}

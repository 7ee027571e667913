//! `lifeboat backup now`: an on-demand backup of one target, through the queue.

use std::process::ExitCode;

use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::messages::{BackupReason, BackupRequest, Message, Priority, encode};
use lifeboat_shared::domain::names::{ClusterName, PolicyName};
use lifeboat_shared::ports::OutgoingMessage;
use serde_json::json;

use super::{Local, load_config};
use crate::app::{self, DataDir, Settings};
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
    },
}

pub(crate) async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Now { local, cluster, policy, request_id, json } = command;
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

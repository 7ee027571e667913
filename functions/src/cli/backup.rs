//! `lifeboat backup now`: an on-demand backup of one target, through the queue.

use std::process::ExitCode;
use std::time::Duration;

use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::messages::{BackupReason, BackupRequest, BackupStep, Message, Priority, encode};
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
    /// Request a backup of one target now: `lifeboat backup now <policy> [--cluster c] [--wait]`.
    Now {
        #[command(flatten)]
        local: Local,
        /// The policy that selects what to back up.
        #[arg(value_name = "POLICY", required_unless_present = "policy_flag", conflicts_with = "policy_flag")]
        policy: Option<PolicyName>,
        /// The policy, as a flag (the same as the positional POLICY).
        #[arg(long = "policy", id = "policy_flag", value_name = "POLICY")]
        policy_flag: Option<PolicyName>,
        /// The cluster; may be left out when the policy protects exactly one.
        #[arg(long)]
        cluster: Option<ClusterName>,
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
    let Command::Now { local, policy, policy_flag, cluster, request_id, json, wait, timeout } = command;
    let policy =
        policy.or(policy_flag).ok_or_else(|| anyhow::anyhow!("name the policy: lifeboat backup now <policy>"))?;
    let config = load_config(local.config.as_deref())?;
    let cluster = target_cluster(&config, &policy, cluster).map_err(anyhow::Error::msg)?;
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
        step: BackupStep::Whole,
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

/// The cluster to back up with `policy`: the one given, which the policy must protect, or the
/// policy's only cluster.
fn target_cluster(
    config: &lifeboat_shared::domain::policy::Config,
    policy: &PolicyName,
    cluster: Option<ClusterName>,
) -> Result<ClusterName, String> {
    let Some(p) = config.policies.get(policy) else {
        let known: Vec<String> = config.policies.keys().map(ToString::to_string).collect();
        return Err(format!("no policy {policy} in the given configuration (policies: {})", list(&known)));
    };
    let protected = &p.spec.clusters;
    match cluster {
        Some(c) if protected.contains(&c) => Ok(c),
        Some(c) => Err(format!("policy {policy} does not protect cluster {c} (it protects {})", names(protected))),
        None => match protected.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(format!("policy {policy} protects {}: name one with --cluster", names(protected))),
        },
    }
}

fn names(clusters: &[ClusterName]) -> String {
    list(&clusters.iter().map(ToString::to_string).collect::<Vec<_>>())
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
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

#[cfg(test)]
mod tests {
    use lifeboat_shared::domain::policy::Config;

    use super::*;

    const CONFIG: &str = "apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: { name: prod }
spec: { region: westeurope, kubeconfig: {} }
---
apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: { name: staging }
spec: { region: westeurope, kubeconfig: {} }
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: { name: nightly }
spec: { clusters: [prod], schedule: '0 0 2 * * *', rpo: 26h, retention: { daily: 7 } }
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: { name: hourly }
spec: { clusters: [prod, staging], schedule: '0 0 * * * *', rpo: 2h, retention: { daily: 7 } }
";

    fn pick(policy: &str, cluster: Option<&str>) -> Result<String, String> {
        let config = Config::from_sources([("c.yaml", CONFIG)]).unwrap();
        let cluster = cluster.map(|c| ClusterName::new(c).unwrap());
        target_cluster(&config, &PolicyName::new(policy).unwrap(), cluster).map(|c| c.to_string())
    }

    #[test]
    fn the_cluster_is_the_policys_only_one_or_must_be_named() {
        assert_eq!(pick("nightly", None), Ok("prod".into()));
        assert_eq!(pick("hourly", Some("staging")), Ok("staging".into()));
        assert_eq!(pick("hourly", None), Err("policy hourly protects prod, staging: name one with --cluster".into()));
        assert_eq!(
            pick("nightly", Some("staging")),
            Err("policy nightly does not protect cluster staging (it protects prod)".into())
        );
        assert_eq!(
            pick("weekly", None),
            Err("no policy weekly in the given configuration (policies: hourly, nightly)".into())
        );
    }
}

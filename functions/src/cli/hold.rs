//! `lifeboat hold place|lift|list`: legal holds on backups (retention never removes a held
//! backup).

use std::process::ExitCode;
use std::sync::Arc;

use lifeboat_shared::domain::ids::BackupId;
use lifeboat_shared::domain::names::ClusterName;
use lifeboat_shared::holds;
use lifeboat_shared::ports::{Clock, SystemClock};

use super::{Local, load_config, table};
use crate::app::{self, AppState, DataDir, Settings};
use crate::storage::Storage;

/// `lifeboat hold …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Place a legal hold on a backup.
    Place {
        #[command(flatten)]
        local: Local,
        /// The backup's cluster.
        #[arg(long)]
        cluster: ClusterName,
        /// The backup.
        backup: String,
        /// Why (a case or ticket reference).
        #[arg(long)]
        reason: String,
    },
    /// Lift a legal hold.
    Lift {
        #[command(flatten)]
        local: Local,
        /// The backup's cluster.
        #[arg(long)]
        cluster: ClusterName,
        /// The backup.
        backup: String,
    },
    /// List the holds on a cluster's backups.
    List {
        #[command(flatten)]
        local: Local,
        /// The cluster.
        #[arg(long)]
        cluster: ClusterName,
    },
}

fn app(local: &Local) -> anyhow::Result<AppState> {
    let config = load_config(local.config.as_deref())?;
    let data = DataDir::new(&local.data);
    let storage = Storage::from_env()?;
    let has_data = storage != Storage::Embedded || data.state_db().exists();
    anyhow::ensure!(has_data, "no Lifeboat data in {} (run `lifeboat up` first)", data.root.display());
    let bus = crate::bus::BusChoice::from_env()?;
    Ok(app::build(&data, config, Settings::default(), &storage, &bus, Arc::new(SystemClock))?.0)
}

pub(crate) async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Place { local, cluster, backup, reason } => {
            let app = app(&local)?;
            let id = BackupId::parse(backup)?;
            holds::place(app.state.as_ref(), &cluster, &id, &reason, SystemClock.now()).await?;
            println!("held {cluster}/{id}: retention will not remove it until the hold is lifted");
        }
        Command::Lift { local, cluster, backup } => {
            let app = app(&local)?;
            let id = BackupId::parse(backup)?;
            if holds::lift(app.state.as_ref(), &cluster, &id).await? {
                println!("lifted the hold on {cluster}/{id}");
            } else {
                println!("{cluster}/{id} had no hold");
            }
        }
        Command::List { local, cluster } => {
            let app = app(&local)?;
            let rows = holds::list(app.state.as_ref(), &cluster)
                .await?
                .into_iter()
                .map(|h| vec![h.backup_id, h.placed_at.map(|t| t.to_rfc3339()).unwrap_or_default(), h.reason])
                .collect();
            println!("{}", table(&["BACKUP", "PLACED", "REASON"], rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

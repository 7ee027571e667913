//! The application state every host hands to the handlers, and the one composition root that
//! builds it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use lifeboat_shared::adapters::alert_config::AlertsConfig;
use lifeboat_shared::adapters::local_dir::LocalDirObjectStore;
use lifeboat_shared::adapters::sqlite::{QueueSettings, SqliteQueue, SqliteStateStore};
use lifeboat_shared::domain::policy::Config;
use lifeboat_shared::ports::{
    AlertSink, Bus, Clock, ClusterConnector, ObjectStore, QueueReceiver, StateStore, SystemClock,
};
use lifeboat_shared::workflows::backup::BackupSettings;
use lifeboat_shared::workflows::copy::CopySettings;
use lifeboat_shared::workflows::restore::RestoreSettings;

use crate::bus::BusChoice;
use crate::function_defs::{self, FunctionDef};
use crate::replica::Replica;
use crate::storage::Storage;

/// Settings of the handlers themselves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often `schedule_tick` runs (decides which slots count as missed).
    pub tick_period: chrono::Duration,
    /// Tuning of backups.
    pub backup: BackupSettings,
    /// Tuning of restores, and the identities that decrypt archives.
    pub restore: RestoreSettings,
    /// Staleness thresholds, alert repetition and sinks (from [`crate::alerts::ALERTS_FILE_VAR`]).
    pub alerts: AlertsConfig,
    /// Tuning of cross-region copies.
    pub copy: CopySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tick_period: chrono::Duration::minutes(5),
            backup: BackupSettings::default(),
            restore: RestoreSettings::default(),
            alerts: AlertsConfig::default(),
            copy: CopySettings::default(),
        }
    }
}

/// The environment variable naming a file of age identities (`AGE-SECRET-KEY-1…`, one per
/// line, `#` comments allowed, as `age-keygen` writes them) that decrypt encrypted archives.
pub const AGE_IDENTITY_FILE_VAR: &str = "LIFEBOAT_AGE_IDENTITY_FILE";

impl Settings {
    /// The defaults, with the age identities of [`AGE_IDENTITY_FILE_VAR`] and the alerts
    /// settings of [`crate::alerts::ALERTS_FILE_VAR`] when they are set.
    ///
    /// # Errors
    /// When a file named cannot be read or is invalid.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut settings = Settings::default();
        if let Some(path) = std::env::var_os(crate::alerts::ALERTS_FILE_VAR) {
            settings.alerts = crate::alerts::load(Path::new(&path))?;
        }
        if let Some(path) = std::env::var_os(AGE_IDENTITY_FILE_VAR) {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{AGE_IDENTITY_FILE_VAR}: reading {}", path.display()))?;
            let identities: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect();
            anyhow::ensure!(
                !identities.is_empty(),
                "{AGE_IDENTITY_FILE_VAR}: {} holds no identity (expected AGE-SECRET-KEY-1… lines)",
                path.display()
            );
            settings.restore.read.identities = identities;
        }
        Ok(settings)
    }
}

/// Everything a handler may use: ports behind `Arc<dyn …>`, the configuration, the functions.
#[derive(Clone)]
pub struct AppState {
    /// Declared clusters and policies.
    pub config: Arc<Config>,
    /// Table-shaped state.
    pub state: Arc<dyn StateStore>,
    /// Backup bytes.
    pub objects: Arc<dyn ObjectStore>,
    /// Sends chained messages.
    pub bus: Arc<dyn Bus>,
    /// Receives messages, where this host pumps queues itself (the local runtime).
    pub queues: Option<Arc<dyn QueueReceiver>>,
    /// Alert notifications.
    pub alerts: Arc<dyn AlertSink>,
    /// Reaches the declared clusters.
    pub clusters: Arc<dyn ClusterConnector>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Handler settings.
    pub settings: Settings,
    /// The app's functions, from their function.json files.
    pub functions: Arc<Vec<FunctionDef>>,
    /// The second regions' storage, where `copy` puts replicas (see [`crate::replica`]).
    pub replicas: Arc<Vec<Replica>>,
}

impl AppState {
    /// The function named `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The second regions' stores, as `prune` and `restore` reach them.
    pub fn replica_regions(&self) -> Vec<lifeboat_shared::workflows::regions::ReplicaRegion<'_>> {
        self.replicas.iter().map(Replica::region_stores).collect()
    }

    /// What `prune` reads and changes, the second regions' stores in `regions`.
    pub fn prune_deps<'a>(
        &'a self,
        regions: &'a [lifeboat_shared::workflows::regions::ReplicaRegion<'a>],
    ) -> lifeboat_shared::workflows::prune::PruneDeps<'a> {
        lifeboat_shared::workflows::prune::PruneDeps {
            state: self.state.as_ref(),
            objects: self.objects.as_ref(),
            clusters: self.clusters.as_ref(),
            replicas: regions,
            replica_retry: self.settings.copy.retry,
        }
    }
}

/// Where the embedded defaults keep their files.
#[derive(Debug, Clone)]
pub struct DataDir {
    /// The directory.
    pub root: PathBuf,
}

impl DataDir {
    /// The directory at `root` (made absolute).
    pub fn new(root: &Path) -> Self {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
        Self { root }
    }
    /// The state store's SQLite file.
    pub fn state_db(&self) -> PathBuf {
        self.root.join("state.sqlite")
    }
    /// The queues' SQLite file.
    pub fn queue_db(&self) -> PathBuf {
        self.root.join("queues.sqlite")
    }
    /// The object store's directory.
    pub fn objects(&self) -> PathBuf {
        self.root.join("objects")
    }
    /// The directory of `region`'s replicas (embedded defaults).
    pub fn replica(&self, region: &str) -> PathBuf {
        crate::replica::local_dir(&self.root, region)
    }
}

/// Builds the app on the embedded defaults in `data`: SQLite state and queues, objects in a
/// local directory, alerts to the log, the system clock.
///
/// # Errors
/// When a store cannot be opened.
pub fn embedded(data: &DataDir, config: Config, settings: Settings) -> anyhow::Result<(AppState, Arc<SqliteQueue>)> {
    embedded_with_clock(data, config, settings, Arc::new(SystemClock))
}

/// [`embedded`] with a given clock (tests).
///
/// # Errors
/// When a store cannot be opened.
pub fn embedded_with_clock(
    data: &DataDir,
    config: Config,
    settings: Settings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(AppState, Arc<SqliteQueue>)> {
    let (app, queue) = build(data, config, settings, &Storage::Embedded, &BusChoice::Embedded, clock)?;
    let queue = queue.context("the embedded bus keeps its queues in SQLite")?;
    Ok((app, queue))
}

/// The composition root: builds the app with state and objects where `storage` says (see
/// [`crate::storage`]), messages sent where `bus` says (see [`crate::bus`]), alerts where the settings say (see [`crate::alerts`]).
///
/// With the embedded bus the SQLite queues under `data` are returned too, and the app receives
/// from them (the local runtime pumps them). With Service Bus the app only sends: the Functions
/// host receives, so `AppState::queues` is `None` and no queue file is opened.
///
/// # Errors
/// When a store cannot be opened or a client cannot be configured.
pub fn build(
    data: &DataDir,
    config: Config,
    settings: Settings,
    storage: &Storage,
    bus: &BusChoice,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(AppState, Option<Arc<SqliteQueue>>)> {
    std::fs::create_dir_all(&data.root).with_context(|| format!("creating data directory {}", data.root.display()))?;
    let (state, objects): (Arc<dyn StateStore>, Arc<dyn ObjectStore>) = match storage {
        Storage::Embedded => (
            Arc::new(SqliteStateStore::open(&data.state_db()).context("opening the state store")?),
            Arc::new(LocalDirObjectStore::open(data.objects()).context("opening the object store")?),
        ),
        Storage::Azure(azure) => azure.open()?,
        Storage::Aws(aws) => {
            (Arc::new(SqliteStateStore::open(&data.state_db()).context("opening the state store")?), aws.open()?)
        }
    };
    let replicas = match storage {
        Storage::Embedded => crate::replica::embedded(&data.root, &config, &objects)?,
        Storage::Azure(azure) => azure.open_replica()?.into_iter().collect(),
        // No second region on AWS yet (see the README's "On AWS").
        Storage::Aws(_) => Vec::new(),
    };
    let (sender, queues, queue): (Arc<dyn Bus>, Option<Arc<dyn QueueReceiver>>, _) = match bus {
        BusChoice::Embedded => {
            let queue = Arc::new(
                SqliteQueue::open(&data.queue_db(), Arc::clone(&clock), QueueSettings::default())
                    .context("opening the queues")?,
            );
            (Arc::clone(&queue) as Arc<dyn Bus>, Some(Arc::clone(&queue) as Arc<dyn QueueReceiver>), Some(queue))
        }
        BusChoice::ServiceBus(service_bus) => (service_bus.open()?, None, None),
        BusChoice::Sqs(sqs) => (crate::bus::open_sqs(sqs)?, None, None),
    };
    let functions = function_defs::all().context("reading function definitions")?;
    let alerts = crate::alerts::build(&settings.alerts, &sender).context("building the alert sinks")?;
    let app = AppState {
        config: Arc::new(config),
        state,
        objects,
        bus: sender,
        queues,
        alerts,
        clusters: crate::clusters::connector(storage)?,
        clock,
        settings,
        functions: Arc::new(functions),
        replicas: Arc::new(replicas),
    };
    Ok((app, queue))
}

#[cfg(test)]
mod tests {
    use lifeboat_shared::adapters::azure::AzureAuthMode;

    use super::*;
    use crate::bus::ServiceBusChoice;

    #[test]
    fn service_bus_sends_and_leaves_receiving_to_the_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path());
        let bus = BusChoice::ServiceBus(ServiceBusChoice {
            namespace: "lifeboat-test.servicebus.windows.net".into(),
            auth: AzureAuthMode::AzureCli,
        });
        let (app, queue) =
            build(&data, Config::default(), Settings::default(), &Storage::Embedded, &bus, Arc::new(SystemClock))
                .expect("app");
        assert!(app.queues.is_none() && queue.is_none(), "no local queues with Service Bus");
        assert!(!data.queue_db().exists(), "no queue file is opened");

        let (app, queue) = build(
            &data,
            Config::default(),
            Settings::default(),
            &Storage::Embedded,
            &BusChoice::Embedded,
            Arc::new(SystemClock),
        )
        .expect("app");
        assert!(app.queues.is_some() && queue.is_some(), "the embedded bus receives locally");
        assert!(data.queue_db().exists());
    }
}

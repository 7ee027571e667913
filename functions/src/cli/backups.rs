//! `lifeboat backups list`: the backup catalog, as a table for people or JSON for machines.

use std::process::ExitCode;

use lifeboat_shared::catalog;
use lifeboat_shared::domain::manifest::Manifest;
use lifeboat_shared::domain::names::ClusterName;
use lifeboat_shared::domain::records::{BackupRecord, BackupState};
use lifeboat_shared::layout;
use lifeboat_shared::ports::ObjectStore;
use lifeboat_shared::ports::object_store::collect_bytes;
use serde::Serialize;

use super::{Local, load_config, table};
use crate::app::{self, DataDir, Settings};
use crate::storage::Storage;

/// `lifeboat backups …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List the backups in the catalog, newest first: every cluster's, declared or not.
    List {
        #[command(flatten)]
        local: Local,
        /// Only this cluster's backups.
        #[arg(long)]
        cluster: Option<ClusterName>,
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
    },
}

/// One backup as listed: the catalog record and, once committed, the object count of its
/// manifest.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Listed {
    #[serde(flatten)]
    pub record: BackupRecord,
    /// Objects in the archive (committed backups; `None` before, or when the manifest is unreadable).
    pub objects: Option<u64>,
    /// Committed with something left out (a forbidden resource type, a failed snapshot): see
    /// `warnings`.
    pub partial: bool,
}

impl Listed {
    /// A listed backup; `objects` from its manifest when committed.
    pub(crate) fn new(record: BackupRecord, objects: Option<u64>) -> Self {
        let left_out = !record.warnings.is_empty() || record.snapshots.iter().any(|s| !s.is_ready());
        let partial = record.state.is_restorable() && left_out;
        Self { record, objects, partial }
    }
}

pub(crate) async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::List { local, cluster, json } = command;
    let config = load_config(local.config.as_deref())?;
    let data = DataDir::new(&local.data);
    let storage = Storage::from_env()?;
    let has_data = storage != Storage::Embedded || data.state_db().exists();
    anyhow::ensure!(has_data, "no Lifeboat data in {} (run `lifeboat up` first)", data.root.display());
    let clock = std::sync::Arc::new(lifeboat_shared::ports::SystemClock);
    let (app, _queue) =
        app::build(&data, config, Settings::default(), &storage, &crate::bus::BusChoice::from_env()?, clock)?;
    let mut records = match &cluster {
        Some(c) => catalog::list(app.state.as_ref(), c).await?,
        None => catalog::list_all(app.state.as_ref()).await?,
    };
    records.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.backup_id.cmp(&b.backup_id)));
    let mut listed = Vec::with_capacity(records.len());
    for record in records {
        let objects = object_count(app.objects.as_ref(), &record).await;
        listed.push(Listed::new(record, objects));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "backups": listed }))?);
    } else {
        print!("{}", render(&listed, cluster.as_ref()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The number of objects the manifest of a committed backup lists.
async fn object_count(objects: &dyn ObjectStore, record: &BackupRecord) -> Option<u64> {
    if !record.state.is_restorable() {
        return None;
    }
    let key = layout::manifest_key(&record.cluster, &record.backup_id);
    let read = async {
        let (_, body) = objects.get(&key, None).await.ok()?;
        let bytes = collect_bytes(body).await.ok()?;
        serde_json::from_slice::<Manifest>(&bytes).ok()
    };
    match read.await {
        Some(manifest) => Some(manifest.object_count()),
        None => {
            tracing::warn!(blob.key = %key, "manifest of a committed backup is missing or unreadable");
            None
        }
    }
}

/// A state as stored (`committed`, `waitingForSnapshots`).
pub(crate) fn state_name(state: BackupState) -> String {
    match serde_json::to_value(state) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{state:?}"),
    }
}

/// The catalog as a table for people.
fn render(listed: &[Listed], cluster: Option<&ClusterName>) -> String {
    if listed.is_empty() {
        let of = cluster.map(|c| format!(" of cluster {c}")).unwrap_or_default();
        return format!("No backups{of} in the catalog yet.\n");
    }
    let rows = listed
        .iter()
        .map(|l| {
            let r = &l.record;
            let ready = r.snapshots.iter().filter(|s| s.is_ready()).count();
            vec![
                r.backup_id.to_string(),
                r.cluster.to_string(),
                r.policy.to_string(),
                if l.partial { format!("{} (partial)", state_name(r.state)) } else { state_name(r.state) },
                r.created_at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                l.objects.map_or_else(|| "-".to_owned(), |n| n.to_string()),
                format!("{ready}/{}", r.snapshots.len()),
                r.warnings.len().to_string(),
            ]
        })
        .collect();
    let header = ["ID", "CLUSTER", "POLICY", "STATE", "CREATED", "OBJECTS", "SNAPSHOTS", "WARNINGS"];
    let mut out = format!("{}\n", table(&header, rows));
    for l in listed.iter().filter(|l| !l.record.warnings.is_empty()) {
        out.push_str(&format!("\n{}:\n", l.record.backup_id));
        for w in &l.record.warnings {
            out.push_str(&format!("  - {w}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use lifeboat_shared::domain::ids::BackupId;
    use lifeboat_shared::domain::manifest::SnapshotRecord;
    use lifeboat_shared::domain::messages::BackupReason;
    use lifeboat_shared::domain::names::PolicyName;

    use super::*;

    fn listed(state: BackupState, objects: Option<u64>) -> Listed {
        let now = chrono::Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 30).unwrap();
        let slot = chrono::Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let mut record = BackupRecord::requested(
            BackupId::parse("demo-20261122t100000z").unwrap(),
            ClusterName::new("demo").unwrap(),
            PolicyName::new("demo").unwrap(),
            BackupReason::Scheduled { slot },
            now,
        );
        record.state = state;
        record.snapshots = vec![SnapshotRecord {
            namespace: "shop".into(),
            pvc: "data-db-0".into(),
            volume_snapshot: "lifeboat-x".into(),
            driver: "disk.csi.azure.com".into(),
            class: None,
            handle: Some("h".into()),
            restore_size: None,
            region: "local".into(),
            error: None,
        }];
        record.warnings = vec!["w".into()];
        Listed::new(record, objects)
    }

    #[test]
    fn the_table_has_one_row_per_backup_with_counts() {
        let text = render(&[listed(BackupState::Committed, Some(42))], None);
        let mut lines = text.lines();
        let header: Vec<_> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(header, ["ID", "CLUSTER", "POLICY", "STATE", "CREATED", "OBJECTS", "SNAPSHOTS", "WARNINGS"]);
        let row: Vec<_> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            row,
            [
                "demo-20261122t100000z",
                "demo",
                "demo",
                "committed",
                "(partial)",
                "2026-11-22",
                "10:00:30Z",
                "42",
                "1/1",
                "1"
            ]
        );
        assert!(text.ends_with("\ndemo-20261122t100000z:\n  - w\n"), "warnings follow the table: {text}");
    }

    #[test]
    fn an_empty_catalog_says_so() {
        assert_eq!(render(&[], None), "No backups in the catalog yet.\n");
        let c = ClusterName::new("prod").unwrap();
        assert_eq!(render(&[], Some(&c)), "No backups of cluster prod in the catalog yet.\n");
        assert!(render(&[listed(BackupState::WaitingForSnapshots, None)], None).contains("waitingForSnapshots"));
    }

    #[test]
    fn json_flattens_the_record_and_adds_the_object_count() {
        let v = serde_json::to_value(listed(BackupState::Committed, Some(7))).unwrap();
        assert_eq!(v["backupId"], "demo-20261122t100000z");
        assert_eq!(v["state"], "committed");
        assert_eq!(v["objects"], 7);
        assert_eq!(v["partial"], true, "it has a warning");
        let waiting = serde_json::to_value(listed(BackupState::WaitingForSnapshots, None)).unwrap();
        assert_eq!(waiting["partial"], false, "not committed: not partial yet");
        assert_eq!(v["snapshots"][0]["handle"], "h");
    }
}

//! Where things are kept: every blob key and table name, in one place. These names are a
//! compatibility surface (old backups must stay findable): change them only with a migration.

use crate::domain::ids::BackupId;
use crate::domain::names::ClusterName;

/// Table of schedule cursors: partition = policy, row = cluster.
pub const TABLE_SCHEDULE_CURSORS: &str = "schedulecursors";
/// Table of schedule slot claims: partition = target key, row = slot.
pub const TABLE_SLOT_CLAIMS: &str = "slotclaims";
/// Table of upgrade-event claims: partition = target key, row = the backup id the event
/// asked for (derived from the event id). Properties: `eventId`, `eventType`, `state`
/// (`claimed`, `sent`, `skipped`), `nodePool`, `freshBackupId`, `rollingOutcome`.
pub const TABLE_UPGRADE_CLAIMS: &str = "upgradeclaims";
/// The backup catalog: partition = cluster, row = backup id.
pub const TABLE_BACKUPS: &str = "backups";
/// Restores: partition = target cluster, row = restore id.
pub const TABLE_RESTORES: &str = "restores";
/// Messages refused by handlers: partition = queue, row = message id.
pub const TABLE_DEAD_LETTERS: &str = "deadletters";
/// Legal holds (pinned backups; retention never removes them): partition = cluster, row =
/// backup id. Set and lifted from the CLI.
pub const TABLE_HOLDS: &str = "holds";
/// Backups running restores read: partition = cluster, row = `{backup_id}.{restore_id}`,
/// property `until` (RFC 3339): the lease's end, renewed by the restore while it runs, so a
/// crashed restore does not hold a backup forever. Retention never removes a leased backup.
pub const TABLE_BACKUP_READERS: &str = "backupreaders";
/// Alert lifecycles: partition = cluster, row = alert id.
pub const TABLE_ALERTS: &str = "alerts";

/// The folder of one backup: `backups/{cluster}/{backup_id}/`.
pub fn backup_prefix(cluster: &ClusterName, backup: &BackupId) -> String {
    format!("backups/{cluster}/{backup}/")
}

/// The manifest of one backup, written last: its presence is the commit.
pub fn manifest_key(cluster: &ClusterName, backup: &BackupId) -> String {
    format!("{}manifest.json", backup_prefix(cluster, backup))
}

/// The objects archive of one backup.
pub fn archive_key(cluster: &ClusterName, backup: &BackupId) -> String {
    format!("{}resources.tar.zst", backup_prefix(cluster, backup))
}

/// The object index written beside the archive at `archive_key` (one JSON line per object:
/// path, SHA-256, size): `resources.tar.zst` → `resources.objects.jsonl`,
/// `parts/0.tar.zst` → `parts/0.objects.jsonl`.
pub fn object_index_key_for(archive_key: &str) -> String {
    let stem = archive_key.strip_suffix(".tar.zst").unwrap_or(archive_key);
    format!("{stem}.objects.jsonl")
}

/// The object index of an encrypted backup, sealed to its recipients, beside the archive at
/// `archive_key`: `resources.tar.zst` → `resources.objects.jsonl.age`.
pub fn sealed_index_key_for(archive_key: &str) -> String {
    format!("{}.age", object_index_key_for(archive_key))
}

/// The objects' paths of an encrypted backup (one JSON string per line, no digest), beside the
/// archive at `archive_key`, for the manifest: `resources.tar.zst` → `resources.paths.jsonl`.
pub fn object_paths_key_for(archive_key: &str) -> String {
    let stem = archive_key.strip_suffix(".tar.zst").unwrap_or(archive_key);
    format!("{stem}.paths.jsonl")
}

/// What the export found (objects with digests, counts, warnings), kept until the commit
/// folds it into the manifest.
pub fn export_key(cluster: &ClusterName, backup: &BackupId) -> String {
    format!("{}export.json", backup_prefix(cluster, backup))
}

/// The archive of part `index` of a sharded backup, deleted once the parts are joined.
pub fn part_archive_key(cluster: &ClusterName, backup: &BackupId, index: u32) -> String {
    format!("{}parts/{index}.tar.zst", backup_prefix(cluster, backup))
}

/// What part `index` of a sharded backup found, written last by that part: its presence
/// marks the part done.
pub fn part_export_key(cluster: &ClusterName, backup: &BackupId, index: u32) -> String {
    format!("{}parts/{index}.json", backup_prefix(cluster, backup))
}

/// The per-object results of one restore (and, for a dry run, its plan).
pub fn restore_results_key(target: &ClusterName, restore_id: &str) -> String {
    format!("restores/{target}/{restore_id}/results.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_stable() {
        let c = ClusterName::new("prod").unwrap();
        let b = BackupId::parse("nightly-20261122t020000z").unwrap();
        assert_eq!(manifest_key(&c, &b), "backups/prod/nightly-20261122t020000z/manifest.json");
        assert_eq!(archive_key(&c, &b), "backups/prod/nightly-20261122t020000z/resources.tar.zst");
        assert_eq!(
            object_index_key_for(&archive_key(&c, &b)),
            "backups/prod/nightly-20261122t020000z/resources.objects.jsonl"
        );
        assert_eq!(
            object_index_key_for(&part_archive_key(&c, &b, 2)),
            "backups/prod/nightly-20261122t020000z/parts/2.objects.jsonl"
        );
        assert_eq!(
            sealed_index_key_for(&archive_key(&c, &b)),
            "backups/prod/nightly-20261122t020000z/resources.objects.jsonl.age"
        );
        assert_eq!(
            object_paths_key_for(&archive_key(&c, &b)),
            "backups/prod/nightly-20261122t020000z/resources.paths.jsonl"
        );
    }
}

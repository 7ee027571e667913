//! The backup a restore reads: found in the catalog, its manifest loaded, and its archive read
//! through and checked against the manifest (for an encrypted backup, against the sealed object
//! index the manifest points to: see `expected`) before anything is planned. A digest that does
//! not match, an entry the manifest does not list (or one it lists that is missing), an unsafe
//! path, an oversized entry, an altered sealed index or an unknown format refuses the whole
//! restore.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::archive::{ArchiveReader, ReadOptions};
use crate::catalog;
use crate::domain::ids::BackupId;
use crate::domain::manifest::{MANIFEST_FORMAT, Manifest};
use crate::domain::names::ClusterName;
use crate::domain::records::BackupRecord;
use crate::domain::restore::SourceObject;
use crate::domain::restore_request::BackupSelector;
use crate::layout;
use crate::ports::object_store::{ObjectStore, collect_bytes};
use crate::ports::state_store::StateStore;

use super::expected::{self, Expected};
use super::{RestoreError, refused};

/// The newest restorable backup of `cluster` taken before `before`, or the named one.
///
/// # Errors
/// [`RestoreError::Refused`] (`BackupNotFound`, `BackupNotCommitted`, `NoCommittedBackup`);
/// [`RestoreError::Catalog`].
pub async fn resolve(
    state: &dyn StateStore,
    cluster: &ClusterName,
    selector: &BackupSelector,
    copy_in: Option<&str>,
) -> Result<BackupRecord, RestoreError> {
    match selector {
        BackupSelector::Id { backup_id } => match catalog::get(state, cluster, backup_id).await? {
            None => {
                Err(refused("BackupNotFound", format!("backup {backup_id} of cluster {cluster} is not in the catalog")))
            }
            Some((record, _)) if !record.state.is_restorable() => Err(refused(
                "BackupNotCommitted",
                format!("backup {backup_id} is {:?}: only committed backups are restored", record.state),
            )),
            Some((record, _)) => Ok(record),
        },
        BackupSelector::Latest { before } => {
            let mut records = catalog::list(state, cluster).await?;
            if let Some(region) = copy_in {
                records.retain(|r| check_copy(r, region).is_ok());
            }
            let newest = newest_restorable(records, *before);
            newest.ok_or_else(|| {
                let when = before.map(|b| format!(" before {}", b.to_rfc3339())).unwrap_or_default();
                let copied = copy_in.map(|r| format!(" with a complete copy in {r}")).unwrap_or_default();
                refused("NoCommittedBackup", format!("cluster {cluster} has no committed backup{copied}{when}"))
            })
        }
    }
}

/// Whether `backup` has a complete copy in `region` that retention is not removing.
///
/// # Errors
/// [`RestoreError::Refused`] (`CopyUnavailable`) saying why not.
pub fn check_copy(backup: &BackupRecord, region: &str) -> Result<(), RestoreError> {
    let id = &backup.backup_id;
    let why = match backup.replica.as_ref().filter(|r| r.region == region) {
        None => format!("backup {id} has no copy in {region}"),
        Some(r) if r.removing_since.is_some() || r.removed_at.is_some() => {
            format!("the copy of backup {id} in {region} was removed by retention")
        }
        Some(r) if r.failure.is_some() => {
            format!("the copy of backup {id} in {region} failed: {}", r.failure.as_deref().unwrap_or_default())
        }
        Some(r) if r.replicated_at.is_none() => format!("the copy of backup {id} in {region} is not complete yet"),
        Some(_) => return Ok(()),
    };
    Err(refused("CopyUnavailable", why))
}

fn newest_restorable(records: Vec<BackupRecord>, before: Option<DateTime<Utc>>) -> Option<BackupRecord> {
    records
        .into_iter()
        .filter(|r| r.state.is_restorable() && before.is_none_or(|b| r.created_at < b))
        .max_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.backup_id.as_str().cmp(b.backup_id.as_str())))
}

/// Loads the manifest of a committed backup.
///
/// # Errors
/// [`RestoreError::Refused`] when it is missing (`BackupNotCommitted`) or unreadable
/// (`UnreadableManifest`, `UnknownFormat`); [`RestoreError::Objects`].
pub async fn manifest(
    objects: &dyn ObjectStore,
    cluster: &ClusterName,
    backup: &BackupId,
) -> Result<Manifest, RestoreError> {
    let key = layout::manifest_key(cluster, backup);
    let bytes = match objects.get(&key, None).await {
        Ok((_, body)) => collect_bytes(body).await.map_err(|e| RestoreError::Read(format!("{key}: {e}")))?,
        Err(e) if e.is_not_found() => {
            return Err(refused(
                "BackupNotCommitted",
                format!("backup {backup} has no manifest: it was never committed"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| refused("UnreadableManifest", format!("{key} is not JSON: {e}")))?;
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(f) if f == u64::from(MANIFEST_FORMAT) => {}
        found => {
            return Err(refused(
                "UnknownFormat",
                format!("{key} has format {found:?}; this build reads format {MANIFEST_FORMAT}"),
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| refused("UnreadableManifest", format!("{key}: {e}")))
}

/// Reads the whole archive, checking every entry against the manifest (or the sealed object
/// index it points to), and returns the objects. Runs the synchronous reader on a blocking
/// thread fed by the object store's stream.
///
/// # Errors
/// [`RestoreError::Refused`] for anything that makes the archive untrustworthy;
/// [`RestoreError::Objects`] for a store failure.
pub async fn read_objects(
    objects: &dyn ObjectStore,
    manifest: &Manifest,
    options: ReadOptions,
) -> Result<Vec<SourceObject>, RestoreError> {
    let encrypted = manifest.archive.encryption.is_some();
    if encrypted && options.identities.is_empty() {
        return Err(refused(
            "IdentityRequired",
            "the backup is encrypted and no age identity is configured (LIFEBOAT_AGE_IDENTITY_FILE)".to_owned(),
        ));
    }
    let expected = expected::records(objects, manifest, &options.identities).await?;
    let (_, body) = objects.get(&manifest.archive.key, None).await?;
    let reader = SyncIoBridge::new(StreamReader::new(body.map_err(std::io::Error::other)));
    tokio::task::spawn_blocking(move || read_checked(reader, &options, expected, encrypted))
        .await
        .map_err(|e| RestoreError::Read(format!("the archive reader stopped: {e}")))?
}

fn read_checked(
    source: impl std::io::Read,
    options: &ReadOptions,
    expected: Expected,
    encrypted: bool,
) -> Result<Vec<SourceObject>, RestoreError> {
    let archive_refused = |e: crate::archive::ArchiveError| refused("UnreadableArchive", e.to_string());
    let mut reader = ArchiveReader::new(source, options).map_err(archive_refused)?;
    if reader.is_encrypted() != encrypted {
        return Err(refused(
            "ArchiveMismatch",
            format!("the manifest says encrypted: {encrypted}, the archive says {}", reader.is_encrypted()),
        ));
    }
    let Expected { records: mut expected, source: against } = expected;
    let mut out = Vec::with_capacity(expected.len());
    for entry in reader.entries().map_err(archive_refused)? {
        let entry = entry.map_err(archive_refused)?;
        let Some(want) = expected.remove(&entry.path) else {
            return Err(refused("ArchiveMismatch", format!("{} is in the archive but not in {against}", entry.path)));
        };
        if entry.record() != want {
            return Err(refused(
                "DigestMismatch",
                format!("{}: its digest does not match {against} (the archive was altered or damaged)", entry.path),
            ));
        }
        let path = entry
            .object_path()
            .map_err(|e| refused("ArchiveMismatch", format!("{}: not an object path: {e}", entry.path)))?;
        let object = serde_json::from_slice(&entry.bytes)
            .map_err(|e| refused("ArchiveMismatch", format!("{}: not a JSON object: {e}", entry.path)))?;
        out.push(SourceObject { path, object });
    }
    reader.finish().map_err(archive_refused)?;
    if let Some(missing) = expected.keys().min() {
        return Err(refused(
            "ArchiveMismatch",
            format!("{} object(s) of {against} are missing from the archive, e.g. {missing}", expected.len()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::messages::BackupReason;
    use crate::domain::names::PolicyName;
    use crate::domain::records::BackupState;

    fn record(id: &str, at: &str, state: BackupState) -> BackupRecord {
        let at = DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc);
        let mut r = BackupRecord::requested(
            BackupId::parse(id).unwrap(),
            ClusterName::new("prod").unwrap(),
            PolicyName::new("p").unwrap(),
            BackupReason::OnDemand { request_id: id.into(), requested_by: None },
            at,
        );
        r.state = state;
        r
    }

    /// An encrypted backup written before the object index was sealed (see `testdata/`).
    const BEFORE_SEALING: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/src/workflows/restore/testdata/encrypted-before-sealing");

    #[tokio::test]
    async fn an_encrypted_backup_written_before_sealing_still_reads_checked_against_its_manifest() {
        use crate::ports::object_store::{PutOptions, stream_from_bytes};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::adapters::local_dir::LocalDirObjectStore::open(dir.path()).unwrap();
        let (cluster, backup) =
            (ClusterName::new("prod").unwrap(), BackupId::parse("hourly-20261122t100000z").unwrap());
        let fixture = |name: &str| std::fs::read(format!("{BEFORE_SEALING}/{name}")).unwrap();
        let put = |key: String, bytes: Vec<u8>| {
            let store = &store;
            async move { store.put(&key, stream_from_bytes(bytes), PutOptions::default()).await.unwrap() }
        };
        put(layout::manifest_key(&cluster, &backup), fixture("manifest.json")).await;
        put(layout::archive_key(&cluster, &backup), fixture("resources.tar.zst")).await;
        let key = String::from_utf8(fixture("key.txt")).unwrap();
        let identity = key.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).unwrap().to_owned();

        let manifest = manifest(&store, &cluster, &backup).await.unwrap();
        assert!(manifest.sealed_index.is_none() && manifest.archive.encryption.is_some());
        let read = ReadOptions { identities: vec![identity.clone()], ..ReadOptions::default() };
        let objects = read_objects(&store, &manifest, read.clone()).await.unwrap();
        assert_eq!(objects.len(), manifest.objects.len());
        assert_eq!(manifest.object_count(), 24);

        // Its digests are still what every entry is checked against.
        let mut altered = manifest.clone();
        altered.objects[5].sha256 = "0".repeat(64);
        match read_objects(&store, &altered, read).await {
            Err(RestoreError::Refused { code, reason }) => {
                assert_eq!(code, "DigestMismatch", "{reason}");
                assert!(reason.contains("does not match the manifest"), "{reason}");
            }
            other => panic!("expected DigestMismatch, got {:?}", other.map(|o| o.len())),
        }
    }

    #[test]
    fn latest_is_the_newest_restorable_before_the_time() {
        let records = vec![
            record("a", "2026-11-20T02:00:00Z", BackupState::Committed),
            record("b", "2026-11-21T02:00:00Z", BackupState::Replicated),
            record("c", "2026-11-22T02:00:00Z", BackupState::Failed),
            record("d", "2026-11-22T03:00:00Z", BackupState::Running),
        ];
        assert_eq!(newest_restorable(records.clone(), None).unwrap().backup_id.as_str(), "b");
        let before = DateTime::parse_from_rfc3339("2026-11-21T00:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(newest_restorable(records.clone(), Some(before)).unwrap().backup_id.as_str(), "a");
        let early = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        assert!(newest_restorable(records, Some(early)).is_none());
    }
}

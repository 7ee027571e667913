//! What a restore checks each archive entry against: the manifest's records, or for an
//! encrypted backup the sealed object index the manifest points to (see
//! [`crate::workflows::backup::object_index`] for why its digests are sealed). The sealed index
//! is decrypted with the restore's identities and trusted only when its stored bytes are those
//! the manifest recorded (size first, before anything is decrypted; then the SHA-256 of every
//! byte); its records must then be exactly the objects the manifest lists.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::archive::{EntryRecord, SealedError, StoredDigest, read_sealed_lines};
use crate::domain::manifest::{Manifest, SealedIndex};
use crate::errors;
use crate::ports::object_store::ObjectStore;

use super::{RestoreError, refused};

/// The records every entry of the archive must match, by path, and what they come from (for
/// messages: `the manifest`, `the sealed object index`).
pub(crate) struct Expected {
    /// The records, by path.
    pub records: HashMap<String, EntryRecord>,
    /// Where they come from.
    pub source: &'static str,
}

/// The records of `manifest`'s objects: its own, or its sealed index's, opened with `identities`.
///
/// # Errors
/// [`RestoreError::Refused`] (`SealedIndexMismatch`, `UnreadableSealedIndex`);
/// [`RestoreError::Objects`] or [`RestoreError::Read`] (transient) when the store fails.
pub(crate) async fn records(
    objects: &dyn ObjectStore,
    manifest: &Manifest,
    identities: &[String],
) -> Result<Expected, RestoreError> {
    let Some(sealed) = &manifest.sealed_index else {
        let records = manifest.objects.iter().map(|r| (r.path.clone(), r.clone())).collect();
        return Ok(Expected { records, source: "the manifest" });
    };
    let records = unseal(objects, sealed, identities).await?;
    let listed = manifest.object_paths.len();
    let unlisted = manifest.object_paths.iter().find(|path| !records.contains_key(*path));
    if records.len() as u64 != sealed.count || records.len() != listed || unlisted.is_some() {
        return Err(mismatch(format!(
            "the sealed object index {} lists {} objects, where the manifest says {} and lists {listed}{}",
            sealed.key,
            records.len(),
            sealed.count,
            unlisted.map(|p| format!(" (e.g. {p}, not in the index)")).unwrap_or_default(),
        )));
    }
    Ok(Expected { records, source: "the sealed object index" })
}

async fn unseal(
    objects: &dyn ObjectStore,
    sealed: &SealedIndex,
    identities: &[String],
) -> Result<HashMap<String, EntryRecord>, RestoreError> {
    let key = sealed.key.clone();
    let (meta, body) = match objects.get(&key, None).await {
        Ok(found) => found,
        Err(e) if e.is_not_found() => return Err(mismatch(format!("the sealed object index {key} is missing"))),
        Err(e) => return Err(e.into()),
    };
    if meta.size != sealed.stored_bytes {
        return Err(mismatch(format!(
            "the sealed object index {key} has {} bytes where the manifest says {}: it was altered or damaged",
            meta.size, sealed.stored_bytes
        )));
    }
    let reader = SyncIoBridge::new(StreamReader::new(body.map_err(std::io::Error::other)));
    let expected = StoredDigest { bytes: sealed.stored_bytes, sha256: sealed.sha256.clone() };
    let identities = identities.to_vec();
    let read = tokio::task::spawn_blocking(move || {
        let mut records = HashMap::new();
        read_sealed_lines(reader, &identities, &expected, |_, line| {
            let record: EntryRecord =
                serde_json::from_slice(line).map_err(|e| format!("it is not an object's record: {e}"))?;
            match records.insert(record.path.clone(), record) {
                None => Ok(()),
                Some(again) => Err(format!("it lists {} a second time", again.path)),
            }
        })
        .map(|()| records)
    })
    .await
    .map_err(|e| RestoreError::Read(format!("the sealed index reader stopped: {e}")))?;
    read.map_err(|e| match e {
        SealedError::Altered { .. } => mismatch(format!("the sealed object index {key}: {e}")),
        // The store broke off: a later delivery may read it whole.
        SealedError::Read(_) => RestoreError::Read(format!("the sealed object index {key}: {}", errors::chain(&e))),
        other => refused("UnreadableSealedIndex", format!("the sealed object index {key}: {}", errors::chain(&other))),
    })
}

fn mismatch(reason: String) -> RestoreError {
    refused("SealedIndexMismatch", reason)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::adapters::local_dir::LocalDirObjectStore;
    use crate::archive::{SealWriter, generate_identity};
    use crate::ports::object_store::{PutOptions, stream_from_bytes};

    const KEY: &str = "backups/prod/b/resources.objects.jsonl.age";

    /// A store holding an index of `records` sealed to a new identity, and a manifest (only its
    /// object fields matter here) pointing to it.
    async fn sealed_backup(records: &[EntryRecord]) -> (tempfile::TempDir, LocalDirObjectStore, Manifest, String) {
        let (secret, public) = generate_identity();
        let mut writer = SealWriter::new(Vec::new(), &[public]).unwrap();
        for record in records {
            serde_json::to_writer(&mut writer, record).unwrap();
            writer.write_all(b"\n").unwrap();
        }
        let (bytes, stored) = writer.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirObjectStore::open(dir.path()).unwrap();
        store.put(KEY, stream_from_bytes(bytes), PutOptions::default()).await.unwrap();
        let mut manifest: Manifest = serde_json::from_value(serde_json::json!({
            "format": 1, "backupId": "b", "cluster": "prod", "policy": "p",
            "reason": {"kind": "onDemand", "requestId": "r"},
            "startedAt": "2026-11-22T10:00:00Z", "committedAt": "2026-11-22T10:01:00Z",
            "clusterVersion": "v1.31.2", "clusterRegion": "westeurope", "clusterTags": {}, "selection": {},
            "archive": {"key": "backups/prod/b/resources.tar.zst", "entries": 2, "uncompressedBytes": 1,
                        "storedBytes": 1, "encryption": {"format": "age", "recipients": []}},
            "counts": {}, "objects": [], "skippedResources": {}, "snapshots": [], "warnings": [],
        }))
        .unwrap();
        manifest.object_paths = records.iter().map(|r| r.path.clone()).collect();
        manifest.sealed_index = Some(SealedIndex {
            key: KEY.into(),
            count: records.len() as u64,
            stored_bytes: stored.bytes,
            sha256: stored.sha256,
        });
        (dir, store, manifest, secret)
    }

    fn listed() -> Vec<EntryRecord> {
        ["resources/secrets/namespaces/shop/db.json", "resources/configmaps/namespaces/shop/web.json"]
            .iter()
            .map(|p| EntryRecord::of(p, p.as_bytes()))
            .collect()
    }

    fn refusal(result: Result<Expected, RestoreError>) -> (String, String) {
        match result {
            Err(RestoreError::Refused { code, reason }) => (code, reason),
            Err(other) => panic!("expected a refusal, got {other}"),
            Ok(_) => panic!("expected a refusal, got the records"),
        }
    }

    #[tokio::test]
    async fn the_records_come_from_the_sealed_index_opened_with_the_identity() {
        let (_dir, store, manifest, secret) = sealed_backup(&listed()).await;
        let expected = records(&store, &manifest, &[secret]).await.unwrap();
        assert_eq!(expected.source, "the sealed object index");
        assert_eq!(expected.records.len(), 2);
        for record in listed() {
            assert_eq!(expected.records.get(&record.path), Some(&record));
        }
    }

    #[tokio::test]
    async fn an_index_listing_other_objects_than_the_manifest_is_refused() {
        let (_dir, store, mut manifest, secret) = sealed_backup(&listed()).await;
        manifest.object_paths[1] = "resources/secrets/namespaces/shop/other.json".into();
        let (code, reason) = refusal(records(&store, &manifest, std::slice::from_ref(&secret)).await);
        assert_eq!(code, "SealedIndexMismatch", "{reason}");
        assert!(reason.contains("other.json, not in the index"), "{reason}");
        manifest.object_paths.pop();
        let (code, reason) = refusal(records(&store, &manifest, &[secret]).await);
        assert_eq!(code, "SealedIndexMismatch", "{reason}");
    }

    #[tokio::test]
    async fn a_missing_or_resized_index_is_refused_before_any_decryption() {
        let (_dir, store, mut manifest, _) = sealed_backup(&listed()).await;
        let (wrong, _) = generate_identity();
        let sealed = manifest.sealed_index.as_mut().unwrap();
        sealed.stored_bytes += 1;
        let (code, reason) = refusal(records(&store, &manifest, std::slice::from_ref(&wrong)).await);
        assert_eq!(code, "SealedIndexMismatch", "the size is checked first, not the identity: {reason}");
        store.delete(KEY).await.unwrap();
        let (code, reason) = refusal(records(&store, &manifest, &[wrong]).await);
        assert_eq!((code.as_str(), reason.contains("is missing")), ("SealedIndexMismatch", true), "{reason}");
    }

    #[tokio::test]
    async fn the_wrong_identity_is_said_so() {
        let (_dir, store, manifest, _) = sealed_backup(&listed()).await;
        let (wrong, _) = generate_identity();
        let (code, reason) = refusal(records(&store, &manifest, &[wrong]).await);
        assert_eq!(code, "UnreadableSealedIndex", "{reason}");
        assert!(reason.contains("none of the 1 identities given can decrypt it"), "{reason}");
    }
}

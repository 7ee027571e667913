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
/// [`RestoreError::Objects`] when the store fails.
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
        other => refused("UnreadableSealedIndex", format!("the sealed object index {key}: {}", errors::chain(&other))),
    })
}

fn mismatch(reason: String) -> RestoreError {
    refused("SealedIndexMismatch", reason)
}

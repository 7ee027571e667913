//! The object index: one JSON line per archived object (its path, SHA-256 and size), streamed
//! to the object store beside the archive while the archive is written, so that a backup's
//! memory stays flat whatever the cluster's size. The commit streams the index into the
//! manifest's `objects` (the manifest still lists every object with its digest), again without
//! holding the list.
//!
//! The index is `resources.objects.jsonl` beside `resources.tar.zst` (and
//! `parts/{k}.objects.jsonl` beside each part of a sharded backup): see
//! [`crate::layout::object_index_key_for`]. It stays with the backup; `prune` removes it with the
//! rest of the backup's prefix.

use std::io::{self, Write};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::archive::EntryRecord;
use crate::domain::manifest::Manifest;
use crate::ports::object_store::ByteStream;

/// Where an export's object index is, and how many objects it lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectIndex {
    /// Its key in the object store.
    pub key: String,
    /// Objects listed.
    pub count: u64,
}

/// Writes index lines to a blocking sink (the writing end of an upload channel).
pub(crate) struct IndexWriter<W: Write> {
    sink: W,
    count: u64,
}

impl<W: Write> IndexWriter<W> {
    pub(crate) fn new(sink: W) -> Self {
        Self { sink, count: 0 }
    }

    /// Appends the record of one archived object.
    pub(crate) fn append(&mut self, record: &EntryRecord) -> io::Result<()> {
        serde_json::to_writer(&mut self.sink, record)?;
        self.sink.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    /// The objects appended so far, and the sink (to finish or fail it).
    pub(crate) fn into_parts(self) -> (u64, W) {
        (self.count, self.sink)
    }
}

/// The manifest as a stream: `header`'s fields (its `objects` ignored), then `objects` as the
/// records of `index` (JSON lines) in their order. The result parses as the [`Manifest`]
/// `header` with those objects.
///
/// # Errors
/// When `header` cannot be encoded.
pub(crate) fn manifest_stream(header: &Manifest, index: ByteStream) -> Result<ByteStream, serde_json::Error> {
    let serde_json::Value::Object(mut fields) = serde_json::to_value(header)? else {
        return Err(serde::ser::Error::custom("a manifest encodes as a JSON object"));
    };
    fields.remove("objects");
    let mut head = String::from("{\n");
    for (name, value) in &fields {
        head.push_str(&format!("  {}: {},\n", serde_json::to_string(name)?, serde_json::to_string(value)?));
    }
    head.push_str("  \"objects\": [");
    let mut separator = Separator::default();
    let lines = index.map(move |chunk| chunk.map(|chunk| separator.rewrite(&chunk)));
    let tail = futures_util::stream::iter([Ok(Bytes::from_static(b"\n  ]\n}\n"))]);
    Ok(Box::pin(futures_util::stream::iter([Ok(Bytes::from(head))]).chain(lines).chain(tail)))
}

/// Turns JSON lines into the elements of a JSON array, chunk by chunk: each record is put on
/// its own indented line, records separated by commas. JSON encodes a newline inside a string
/// as `\n`, so a raw newline byte only ever ends a record.
#[derive(Default)]
struct Separator {
    /// Whether a record has begun (the next one needs a comma).
    started: bool,
    /// Whether the last byte seen ended a record.
    at_line_start: bool,
}

impl Separator {
    fn rewrite(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(chunk.len() + chunk.len() / 32 + 8);
        for &byte in chunk {
            if byte == b'\n' {
                self.at_line_start = true;
                continue;
            }
            if !self.started || self.at_line_start {
                out.put_slice(if self.started { b",\n    " } else { b"\n    " });
                self.started = true;
                self.at_line_start = false;
            }
            out.put_u8(byte);
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::manifest::{ArchiveInfo, MANIFEST_FORMAT};
    use crate::domain::messages::BackupReason;
    use crate::ports::object_store::collect_bytes;

    fn header() -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            backup_id: crate::domain::ids::BackupId::parse("nightly-20261122t060000z").unwrap(),
            cluster: crate::domain::names::ClusterName::new("prod").unwrap(),
            policy: crate::domain::names::PolicyName::new("apps").unwrap(),
            reason: BackupReason::OnDemand { request_id: "r1".into(), requested_by: None },
            started_at: Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap(),
            committed_at: Utc.with_ymd_and_hms(2026, 11, 22, 6, 1, 0).unwrap(),
            cluster_version: "v1.31.2".into(),
            cluster_region: "westeurope".into(),
            cluster_tags: BTreeMap::from([("git_tag".into(), "v1 \"quoted\"\nline".into())]),
            platform: None,
            selection: Default::default(),
            archive: ArchiveInfo {
                key: "backups/prod/x/resources.tar.zst".into(),
                entries: 3,
                uncompressed_bytes: 10,
                stored_bytes: 5,
                encryption: None,
            },
            counts: BTreeMap::from([("objects".into(), 2)]),
            objects: Vec::new(),
            skipped_resources: BTreeMap::new(),
            snapshots: Vec::new(),
            warnings: vec!["\"objects\": [] in a warning".into()],
        }
    }

    fn records(n: usize) -> Vec<EntryRecord> {
        (0..n)
            .map(|i| EntryRecord::of(&format!("resources/configmaps/namespaces/a/cm-{i}\n\"x\".json"), &[i as u8; 3]))
            .collect()
    }

    fn index_bytes(records: &[EntryRecord]) -> Vec<u8> {
        let mut writer = IndexWriter::new(Vec::new());
        for r in records {
            writer.append(r).unwrap();
        }
        let (count, bytes) = writer.into_parts();
        assert_eq!(count, records.len() as u64);
        bytes
    }

    /// The index split into chunks of `size` bytes, as an upload would deliver it.
    fn chunked(bytes: Vec<u8>, size: usize) -> ByteStream {
        let chunks: Vec<std::io::Result<Bytes>> =
            bytes.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect::<Vec<_>>();
        Box::pin(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn the_streamed_manifest_parses_as_the_manifest_with_every_object_in_order() {
        for (n, chunk) in [(0, 7), (1, 1), (5, 1), (5, 3), (40, 4096)] {
            let records = records(n);
            let stream = manifest_stream(&header(), chunked(index_bytes(&records), chunk)).unwrap();
            let bytes = collect_bytes(stream).await.unwrap();
            let parsed: Manifest = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("{n} objects in {chunk}-byte chunks: {e}\n{}", String::from_utf8_lossy(&bytes))
            });
            let mut expected = header();
            expected.objects = records;
            assert_eq!(parsed, expected, "{n} objects in {chunk}-byte chunks");
        }
    }

    #[tokio::test]
    async fn a_failing_index_fails_the_manifest_stream() {
        let failing: ByteStream = Box::pin(futures_util::stream::iter([
            Ok(Bytes::from_static(b"{\"path\":\"a\",")),
            Err(std::io::Error::other("index read failed")),
        ]));
        let err = collect_bytes(manifest_stream(&header(), failing).unwrap()).await.unwrap_err();
        assert!(err.to_string().contains("index read failed"), "{err}");
    }
}

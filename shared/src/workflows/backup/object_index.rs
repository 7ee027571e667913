//! The object index: one JSON line per archived object (its path, SHA-256 and size), streamed
//! to the object store beside the archive while the archive is written, so that a backup's
//! memory stays flat whatever the cluster's size. The commit streams the index into the
//! manifest's `objects` (an unencrypted backup's manifest lists every object with its digest),
//! again without holding the list.
//!
//! The index is `resources.objects.jsonl` beside `resources.tar.zst` (and
//! `parts/{k}.objects.jsonl` beside each part of a sharded backup): see
//! [`crate::layout::object_index_key_for`]. It stays with the backup; `prune` removes it with the
//! rest of the backup's prefix.
//!
//! # Encrypted backups: the index is sealed
//!
//! A plain SHA-256 of a Secret's JSON lets anyone who can read the storage account confirm
//! guesses of a low-entropy value offline, which is what encryption promises to prevent. So
//! when the archive is encrypted the index is sealed: written with age to the same recipients
//! as `resources.objects.jsonl.age` ([`crate::layout::sealed_index_key_for`]), and only the
//! objects' paths go out in the clear, as `resources.paths.jsonl`, from which the commit streams
//! the manifest's `objectPaths` (names stay visible, as in Velero). The manifest records the
//! sealed index's stored size and SHA-256 (of the encrypted bytes), so a restore, which holds
//! an identity, refuses an index altered or replaced (anyone with the public recipient could
//! seal one) and then checks every entry against it, as it checks an unencrypted backup's
//! entries against the manifest.
//!
//! Why a sealed index rather than keyed digests (an HMAC under a random per-backup key sealed
//! to the recipients): the sealed index also hides each object's size (the length of a Secret's
//! values), it is readable with the standard tool (`age -d -i key.txt
//! resources.objects.jsonl.age`), it needs no cryptographic construction of our own, and the
//! restore checks entries against the same records, in the same way, encrypted or not.
//!
//! Memory stays as it was: both files are streamed as the archive is written and the paths
//! stream into the manifest; the restore holds the sealed records as it holds an unencrypted
//! manifest's. An encrypted backup whose export ended before this build (its export record has
//! no `sealed`) commits as it would have then, digests in the manifest.

use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::archive::{ArchiveError, ChannelWriter, EntryRecord, SealWriter, StoredDigest, channel};
use crate::domain::manifest::{Manifest, SealedIndex};
use crate::layout;
use crate::ports::object_store::{ByteStream, ObjectStore, ObjectStoreError, PutOptions};

/// Where an export's object index is, and how many objects it lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectIndex {
    /// Its key in the object store: the index itself, or for a sealed one the list of the
    /// objects' paths (JSON strings, one per line) that the manifest shows.
    pub key: String,
    /// Objects listed.
    pub count: u64,
    /// The sealed index, when the archive is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealedIndex>,
}

impl ObjectIndex {
    /// The index of the archive at `archive_key`, listing `count` objects: plain, or sealed
    /// when `sealed` says what the sealed index stored.
    pub(crate) fn of(archive_key: &str, count: u64, sealed: Option<StoredDigest>) -> Self {
        match sealed {
            None => Self { key: layout::object_index_key_for(archive_key), count, sealed: None },
            Some(stored) => Self {
                key: layout::object_paths_key_for(archive_key),
                count,
                sealed: Some(SealedIndex {
                    key: layout::sealed_index_key_for(archive_key),
                    count,
                    stored_bytes: stored.bytes,
                    sha256: stored.sha256,
                }),
            },
        }
    }

    /// The name of the manifest's field the listing at `key` becomes.
    pub(crate) fn manifest_field(&self) -> &'static str {
        if self.sealed.is_some() { "objectPaths" } else { "objects" }
    }
}

/// The index's uploads, consuming what the writer thread writes.
pub(crate) type IndexUpload<'a> = Pin<Box<dyn Future<Output = Result<(), ObjectStoreError>> + Send + 'a>>;

/// The writing ends of an object index's uploads, for the writer thread to turn into an
/// [`IndexWriter`] (sealing writes age's header, which is done there, not on the runtime).
pub(crate) enum IndexSinks {
    /// The plain index.
    Plain(ChannelWriter),
    /// The sealed index and the list of paths.
    Sealed {
        /// The records, to seal.
        records: ChannelWriter,
        /// The paths.
        paths: ChannelWriter,
        /// The archive's recipients.
        recipients: Vec<String>,
    },
}

impl IndexSinks {
    /// The writer of the index. A refusal drops the sinks unfinished, which fails their streams.
    ///
    /// # Errors
    /// [`ArchiveError`] when sealing cannot start (a bad recipient).
    pub(crate) fn into_writer(self) -> Result<IndexWriter<ChannelWriter>, ArchiveError> {
        match self {
            Self::Plain(sink) => Ok(IndexWriter::new(sink)),
            Self::Sealed { records, paths, recipients } => {
                let out = Out::Sealed { records: SealWriter::new(records, &recipients)?, paths };
                Ok(IndexWriter { count: 0, out })
            }
        }
    }
}

/// Starts the uploads of the object index of the archive at `archive_key`: plain, or sealed to
/// `recipients` (with the plain list of paths) when there are any.
pub(crate) fn start_upload<'a>(
    objects: &'a dyn ObjectStore,
    archive_key: &str,
    recipients: &[String],
) -> (IndexSinks, IndexUpload<'a>) {
    let ndjson = || PutOptions { if_absent: false, content_type: Some("application/x-ndjson".into()) };
    if recipients.is_empty() {
        let (sink, stream) = channel(4, 64 * 1024);
        let key = layout::object_index_key_for(archive_key);
        let upload = async move { objects.put(&key, stream, ndjson()).await.map(|_| ()) };
        return (IndexSinks::Plain(sink), Box::pin(upload));
    }
    let (records, records_stream) = channel(4, 64 * 1024);
    let (paths, paths_stream) = channel(4, 64 * 1024);
    let (sealed_key, paths_key) =
        (layout::sealed_index_key_for(archive_key), layout::object_paths_key_for(archive_key));
    let upload = async move {
        let sealed = PutOptions { if_absent: false, content_type: Some("application/octet-stream".into()) };
        let (sealed, listed) = tokio::join!(
            objects.put(&sealed_key, records_stream, sealed),
            objects.put(&paths_key, paths_stream, ndjson())
        );
        sealed.and(listed).map(|_| ())
    };
    (IndexSinks::Sealed { records, paths, recipients: recipients.to_vec() }, Box::pin(upload))
}

/// Writes index lines to blocking sinks (the writing ends of upload channels).
pub(crate) struct IndexWriter<W: Write> {
    count: u64,
    out: Out<W>,
}

enum Out<W: Write> {
    Plain(W),
    Sealed { records: SealWriter<W>, paths: W },
}

/// What an index writer leaves once ended.
pub(crate) struct Ended<W> {
    /// Objects listed.
    pub count: u64,
    /// What the sealed index stored, when sealed.
    pub sealed: Option<StoredDigest>,
    /// The sinks, to finish.
    pub sinks: Vec<W>,
}

impl<W: Write> IndexWriter<W> {
    /// A plain index on `sink`.
    pub(crate) fn new(sink: W) -> Self {
        Self { count: 0, out: Out::Plain(sink) }
    }

    /// Appends the record of one archived object.
    pub(crate) fn append(&mut self, record: &EntryRecord) -> io::Result<()> {
        match &mut self.out {
            Out::Plain(sink) => write_line(sink, record)?,
            Out::Sealed { records, paths } => {
                write_line(records, record)?;
                write_line(paths, &record.path)?;
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Ends the index (age's final chunk, when sealed) and hands back its sinks to finish.
    ///
    /// # Errors
    /// When a sink fails.
    pub(crate) fn end(self) -> io::Result<Ended<W>> {
        match self.out {
            Out::Plain(sink) => Ok(Ended { count: self.count, sealed: None, sinks: vec![sink] }),
            Out::Sealed { records, paths } => {
                let (records, stored) = records.finish()?;
                Ok(Ended { count: self.count, sealed: Some(stored), sinks: vec![records, paths] })
            }
        }
    }

    /// The sinks to fail (a sealed index's own sink is dropped unfinished, which fails it).
    pub(crate) fn into_sinks(self) -> Vec<W> {
        match self.out {
            Out::Plain(sink) => vec![sink],
            Out::Sealed { paths, .. } => vec![paths],
        }
    }
}

/// What an index written to upload channels left: the objects it lists and, sealed, what the
/// sealed index stored.
#[derive(Debug)]
pub(crate) struct IndexWritten {
    /// Objects listed.
    pub count: u64,
    /// What the sealed index stored.
    pub sealed: Option<StoredDigest>,
}

/// Ends an index written to upload channels, and finishes them.
///
/// # Errors
/// When a channel's consumer is gone.
pub(crate) fn finish(index: IndexWriter<ChannelWriter>) -> io::Result<IndexWritten> {
    let ended = index.end()?;
    for sink in ended.sinks {
        sink.finish()?;
    }
    Ok(IndexWritten { count: ended.count, sealed: ended.sealed })
}

/// Fails the uploads of an index written to upload channels, for `reason`.
pub(crate) fn fail(index: IndexWriter<ChannelWriter>, reason: &str) {
    for sink in index.into_sinks() {
        sink.fail(io::Error::other(reason.to_owned()));
    }
}

fn write_line(sink: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *sink, value)?;
    sink.write_all(b"\n")
}

/// The manifest as a stream: `header`'s fields (its `field` ignored), then `field` (`objects`,
/// or `objectPaths` for a sealed index: see [`ObjectIndex::manifest_field`]) as the values of
/// `index` (JSON lines) in their order. The result parses as the [`Manifest`] `header` with
/// those objects (or paths).
///
/// # Errors
/// When `header` cannot be encoded.
pub(crate) fn manifest_stream(
    header: &Manifest,
    field: &str,
    index: ByteStream,
) -> Result<ByteStream, serde_json::Error> {
    let serde_json::Value::Object(mut fields) = serde_json::to_value(header)? else {
        return Err(serde::ser::Error::custom("a manifest encodes as a JSON object"));
    };
    fields.remove(field);
    let mut head = String::from("{\n");
    for (name, value) in &fields {
        head.push_str(&format!("  {}: {},\n", serde_json::to_string(name)?, serde_json::to_string(value)?));
    }
    head.push_str(&format!("  {}: [", serde_json::to_string(field)?));
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
            object_paths: Vec::new(),
            sealed_index: None,
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
        let mut ended = writer.end().unwrap();
        assert_eq!((ended.count, ended.sealed), (records.len() as u64, None));
        ended.sinks.remove(0)
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
            let stream = manifest_stream(&header(), "objects", chunked(index_bytes(&records), chunk)).unwrap();
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
    async fn an_unencrypted_manifest_keeps_its_shape_digests_in_objects_and_nothing_sealed() {
        let stream = manifest_stream(&header(), "objects", chunked(index_bytes(&records(3)), 16)).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&collect_bytes(stream).await.unwrap()).unwrap();
        let fields = value.as_object().unwrap();
        assert!(!fields.contains_key("objectPaths") && !fields.contains_key("sealedIndex"), "{value}");
        for object in fields["objects"].as_array().unwrap() {
            let keys: Vec<&str> = object.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["path", "sha256", "size"], "{object}");
        }
    }

    #[tokio::test]
    async fn a_failing_index_fails_the_manifest_stream() {
        let failing: ByteStream = Box::pin(futures_util::stream::iter([
            Ok(Bytes::from_static(b"{\"path\":\"a\",")),
            Err(std::io::Error::other("index read failed")),
        ]));
        let err = collect_bytes(manifest_stream(&header(), "objects", failing).unwrap()).await.unwrap_err();
        assert!(err.to_string().contains("index read failed"), "{err}");
    }

    #[tokio::test]
    async fn a_sealed_index_lists_paths_in_the_clear_and_records_only_under_age() {
        let (secret, public) = crate::archive::generate_identity();
        let records = records(30);
        let ((records_sink, _records), (paths_sink, _paths)) = (channel(64, 1024), channel(64, 1024));
        let sinks = IndexSinks::Sealed { records: records_sink, paths: paths_sink, recipients: vec![public.clone()] };
        assert!(sinks.into_writer().is_ok(), "the channels' writer starts a sealed index");
        let out = Out::Sealed { records: SealWriter::new(Vec::new(), &[public]).unwrap(), paths: Vec::new() };
        let mut writer = IndexWriter { count: 0, out };
        for r in &records {
            writer.append(r).unwrap();
        }
        let ended = writer.end().unwrap();
        let [sealed, paths] = <[Vec<u8>; 2]>::try_from(ended.sinks).unwrap();
        let stored = ended.sealed.unwrap();
        assert_eq!(ended.count, 30);
        for r in &records {
            assert!(!String::from_utf8_lossy(&sealed).contains(&r.sha256), "a digest in the sealed bytes");
            assert!(!String::from_utf8_lossy(&paths).contains(&r.sha256), "a digest in the paths");
        }
        let mut unsealed = Vec::new();
        crate::archive::read_sealed_lines(sealed.as_slice(), &[secret], &stored, |_, line| {
            unsealed.push(serde_json::from_slice::<EntryRecord>(line).map_err(|e| e.to_string())?);
            Ok(())
        })
        .unwrap();
        assert_eq!(unsealed, records);

        let mut header = header();
        header.sealed_index = ObjectIndex::of("backups/prod/x/resources.tar.zst", 30, Some(stored)).sealed;
        let stream = manifest_stream(&header, "objectPaths", chunked(paths, 5)).unwrap();
        let parsed: Manifest = serde_json::from_slice(&collect_bytes(stream).await.unwrap()).unwrap();
        assert_eq!(parsed.object_paths, records.iter().map(|r| r.path.clone()).collect::<Vec<_>>());
        assert!(parsed.objects.is_empty());
        assert_eq!(parsed.object_count(), 30);
        assert_eq!(parsed.sealed_index.unwrap().key, "backups/prod/x/resources.objects.jsonl.age");
    }
}

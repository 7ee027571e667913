//! Writes an archive: tar entries, compressed with zstd, optionally encrypted with age, to any
//! [`Write`], in bounded memory. Synchronous: the backup engine runs it on a blocking thread.

use std::io::{self, Write};

use super::error::ArchiveError;
use super::layout::{EntryPath, FORMAT_VERSION, VERSION_PATH};
use super::record::{ArchiveSummary, EntryRecord};

/// The zstd levels the writer accepts: up to 19, whose window (8 MiB at most) every reader
/// decodes in bounded memory; levels 20 to 22 need up to 128 MiB.
pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = 1..=19;

/// How to write an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveOptions {
    /// zstd level, in [`ZSTD_LEVELS`]; 3 by default.
    pub zstd_level: i32,
    /// age X25519 public keys (`age1…`) to encrypt to, any of whose identities decrypts; empty
    /// for no encryption.
    pub recipients: Vec<String>,
    /// Modification time of every entry, in seconds since the Unix epoch (0 by default): with
    /// the same objects and options, the unencrypted output is byte for byte the same.
    pub mtime: u64,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        Self { zstd_level: 3, recipients: Vec::new(), mtime: 0 }
    }
}

/// Writes objects into an archive. Entries are tar headers with mode 0644, uid and gid 0, no
/// user or group names and the options' mtime; paths over 100 bytes use GNU long names.
///
/// Call [`ArchiveWriter::finish`]: an archive not finished is truncated and every reader
/// refuses it. To hand the sink on afterwards (e.g. a [`super::ChannelWriter`]), pass
/// `&mut sink`.
pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<Counting<zstd::stream::write::Encoder<'static, Sink<W>>>>,
    mtime: u64,
    entries: u64,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive on `sink`: checks the options, writes the age header if encrypting,
    /// and the `metadata/version` entry.
    ///
    /// # Errors
    /// [`ArchiveError::InvalidCompressionLevel`], [`ArchiveError::InvalidRecipient`] (naming
    /// the key), [`ArchiveError::StartEncryption`], [`ArchiveError::WriteStart`].
    pub fn new(sink: W, options: &ArchiveOptions) -> Result<Self, ArchiveError> {
        if !ZSTD_LEVELS.contains(&options.zstd_level) {
            return Err(ArchiveError::InvalidCompressionLevel { level: options.zstd_level });
        }
        let recipients = parse_recipients(&options.recipients)?;
        let sink = if recipients.is_empty() {
            Sink::Plain(sink)
        } else {
            let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|source| ArchiveError::StartEncryption { source })?;
            Sink::Encrypted(encryptor.wrap_output(sink).map_err(|source| ArchiveError::WriteStart { source })?)
        };
        let start = |source| ArchiveError::WriteStart { source };
        let mut encoder = zstd::stream::write::Encoder::new(sink, options.zstd_level).map_err(start)?;
        encoder.include_checksum(true).map_err(start)?;
        let mut writer =
            Self { tar: tar::Builder::new(Counting { inner: encoder, count: 0 }), mtime: options.mtime, entries: 0 };
        let version = format!("{FORMAT_VERSION}\n");
        writer.append(VERSION_PATH, version.as_bytes()).map_err(start)?;
        Ok(writer)
    }

    /// Appends one object (its JSON) at `path`, and returns its record for the manifest. The
    /// caller appends each path once.
    ///
    /// # Errors
    /// [`ArchiveError::WriteEntry`] when the sink fails (e.g. its consumer is gone).
    pub fn append_object(&mut self, path: &EntryPath, json: &[u8]) -> Result<EntryRecord, ArchiveError> {
        self.append(path.as_str(), json)
            .map_err(|source| ArchiveError::WriteEntry { path: path.as_str().to_owned(), source })?;
        self.entries += 1;
        Ok(EntryRecord::of(path.as_str(), json))
    }

    fn append(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_uid(0);
        header.set_gid(0);
        self.tar.append_data(&mut header, path, data)
    }

    /// Ends the archive (tar end blocks, zstd epilogue, age final chunk), flushes the sink and
    /// returns the totals.
    ///
    /// # Errors
    /// [`ArchiveError::WriteEnd`].
    pub fn finish(self) -> Result<ArchiveSummary, ArchiveError> {
        let end = |source| ArchiveError::WriteEnd { source };
        let counting = self.tar.into_inner().map_err(end)?;
        let uncompressed_bytes = counting.count;
        let mut sink = counting.inner.finish().map_err(end)?.finish().map_err(end)?;
        sink.flush().map_err(end)?;
        Ok(ArchiveSummary { entries: self.entries, uncompressed_bytes })
    }
}

pub(crate) fn parse_recipients(recipients: &[String]) -> Result<Vec<age::x25519::Recipient>, ArchiveError> {
    recipients
        .iter()
        .map(|r| r.trim().parse().map_err(|reason| ArchiveError::InvalidRecipient { recipient: r.clone(), reason }))
        .collect()
}

/// Where the compressed bytes go: straight to the sink, or through age.
enum Sink<W: Write> {
    Plain(W),
    Encrypted(age::stream::StreamWriter<W>),
}

impl<W: Write> Sink<W> {
    fn finish(self) -> io::Result<W> {
        match self {
            Self::Plain(w) => Ok(w),
            Self::Encrypted(w) => w.finish(),
        }
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(buf),
            Self::Encrypted(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Encrypted(w) => w.flush(),
        }
    }
}

/// Counts the bytes of the tar stream on their way to zstd.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{objects, read_all, write};
    use super::super::{ArchiveReader, ReadOptions, generate_identity};
    use super::*;

    fn assert_round_trip(objects: &[(EntryPath, Vec<u8>)], options: &ArchiveOptions, read: &ReadOptions) -> Vec<u8> {
        let (archive, records, summary) = write(objects, options);
        let (entries, read_summary) = read_all(&archive, read).unwrap();
        assert_eq!(entries.len(), objects.len());
        for (((path, json), record), entry) in objects.iter().zip(&records).zip(&entries) {
            assert_eq!(entry.path, path.as_str());
            assert_eq!(&entry.bytes, json, "{path}");
            assert_eq!(&entry.record(), record, "{path}");
            assert_eq!(&entry.object_path().unwrap(), path);
        }
        assert_eq!(
            summary,
            ArchiveSummary { entries: objects.len() as u64, uncompressed_bytes: summary.uncompressed_bytes }
        );
        assert_eq!(read_summary, summary);
        archive
    }

    #[test]
    fn round_trip_plain() {
        let objects = objects(120);
        let archive = assert_round_trip(&objects, &ArchiveOptions::default(), &ReadOptions::default());
        assert_eq!(archive.get(..4), Some(&[0x28, 0xb5, 0x2f, 0xfd][..]), "a zstd frame");
        assert!(!ArchiveReader::new(archive.as_slice(), &ReadOptions::default()).unwrap().is_encrypted());
    }

    #[test]
    fn round_trip_encrypted_to_several_recipients() {
        let (first_secret, first) = generate_identity();
        let (second_secret, second) = generate_identity();
        let objects = objects(130);
        let options = ArchiveOptions { recipients: vec![first, second], zstd_level: 9, mtime: 1_700_000_000 };
        for secret in [first_secret, second_secret] {
            let read = ReadOptions { identities: vec![secret], ..ReadOptions::default() };
            let archive = assert_round_trip(&objects, &options, &read);
            assert!(archive.starts_with(b"age-encryption.org/v1\n"));
            assert!(ArchiveReader::new(archive.as_slice(), &read).unwrap().is_encrypted());
        }
    }

    #[test]
    fn the_same_objects_give_the_same_bytes() {
        let objects = objects(50);
        let options = ArchiveOptions { mtime: 1_763_776_800, ..ArchiveOptions::default() };
        assert_eq!(write(&objects, &options).0, write(&objects, &options).0);
        let other = ArchiveOptions { mtime: 1_763_776_801, ..ArchiveOptions::default() };
        assert_ne!(write(&objects, &options).0, write(&objects, &other).0, "the mtime is used");
    }

    /// The tar stream itself is a compatibility surface: its digest changes only with a
    /// deliberate format change (this guards headers against a `tar` crate upgrade).
    #[test]
    fn tar_stream_is_golden() {
        let objects = objects(6);
        let options = ArchiveOptions { mtime: 1_763_776_800, ..ArchiveOptions::default() };
        let (archive, _, summary) = write(&objects, &options);
        let tar = zstd::decode_all(archive.as_slice()).unwrap();
        assert_eq!(tar.len() as u64, summary.uncompressed_bytes);
        assert_eq!(
            EntryRecord::of("", &tar).sha256,
            "7ccaf2581474228fb61eb95286250e7220bd704f9cdc62573e048aae76b2f9df"
        );
    }

    #[test]
    fn headers_are_deterministic() {
        let options = ArchiveOptions { mtime: 1_763_776_800, ..ArchiveOptions::default() };
        let (archive, _, _) = write(&objects(10), &options);
        let tar = zstd::decode_all(archive.as_slice()).unwrap();
        let mut tar = tar::Archive::new(tar.as_slice());
        let mut paths = Vec::new();
        for entry in tar.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            assert_eq!(h.entry_type(), tar::EntryType::Regular);
            assert_eq!((h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap()), (0o644, 0, 0));
            assert_eq!(h.mtime().unwrap(), 1_763_776_800);
            assert_eq!((h.username_bytes(), h.groupname_bytes()), (Some(&b""[..]), Some(&b""[..])));
            paths.push(String::from_utf8(entry.path_bytes().into_owned()).unwrap());
        }
        assert_eq!(paths.first().map(String::as_str), Some(VERSION_PATH));
        assert_eq!(paths.len(), 11);
    }

    #[test]
    fn a_bad_recipient_is_named() {
        let options =
            ArchiveOptions { recipients: vec![generate_identity().1, "age1nope".into()], ..Default::default() };
        let err = ArchiveWriter::new(Vec::new(), &options).err().unwrap();
        assert!(matches!(&err, ArchiveError::InvalidRecipient { recipient, .. } if recipient == "age1nope"), "{err}");
        assert!(err.to_string().contains("\"age1nope\""), "{err}");
    }

    #[test]
    fn levels_outside_the_bounded_window_range_are_refused() {
        for level in [0, 20, -1] {
            let options = ArchiveOptions { zstd_level: level, ..Default::default() };
            assert!(matches!(
                ArchiveWriter::new(Vec::new(), &options),
                Err(ArchiveError::InvalidCompressionLevel { level: l }) if l == level
            ));
        }
    }
}

//! Reads an archive from any [`Read`]: decrypts it when it starts with an age header,
//! decompresses it, and yields its entries one at a time (bounded memory), refusing anything
//! restore should not touch. Nothing is yielded past a refusal.

use std::fmt;
use std::io::{self, Read};

use super::decode::{self, Decoded, Limit};
use super::entry::{next_entry, stream_error};
use super::error::ArchiveError;
use super::layout::{EntryPath, FORMAT_VERSION, LayoutError, VERSION_PATH};
use super::record::{ArchiveSummary, EntryRecord};

/// How to read an archive.
#[derive(Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// age X25519 secret keys (`AGE-SECRET-KEY-1…`), tried in turn when the archive is
    /// encrypted. Never printed, `Debug` included.
    pub identities: Vec<String>,
    /// The largest entry accepted, in bytes; 16 MiB by default (Kubernetes objects stay under
    /// etcd's 1.5 MiB).
    pub max_entry_bytes: u64,
    /// The largest uncompressed tar stream accepted, in bytes; 8 GiB by default.
    pub max_total_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self { identities: Vec::new(), max_entry_bytes: 16 << 20, max_total_bytes: 8 << 30 }
    }
}

impl fmt::Debug for ReadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOptions")
            .field("identities", &format_args!("[{} redacted]", self.identities.len()))
            .field("max_entry_bytes", &self.max_entry_bytes)
            .field("max_total_bytes", &self.max_total_bytes)
            .finish()
    }
}

/// One entry read: a checked path under `resources/` (or `metadata/`) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// The path inside the archive.
    pub path: String,
    /// The contents (an object's JSON).
    pub bytes: Vec<u8>,
}

impl ArchiveEntry {
    /// Its record, to compare with the manifest's.
    pub fn record(&self) -> EntryRecord {
        EntryRecord::of(&self.path, &self.bytes)
    }

    /// The object it holds: resource, group, namespace and name.
    ///
    /// # Errors
    /// [`LayoutError`] for a path outside the objects layout (e.g. under `metadata/`).
    pub fn object_path(&self) -> Result<EntryPath, LayoutError> {
        EntryPath::parse(&self.path)
    }
}

/// Reads an archive written by [`super::ArchiveWriter`] (or by the standard tools in the same
/// layout). Synchronous, like the writer.
pub struct ArchiveReader<R: Read> {
    archive: tar::Archive<Decoded<R>>,
    state: ReadState,
}

struct ReadState {
    limit: Limit,
    max_entry_bytes: u64,
    encrypted: bool,
    entries: u64,
    last: String,
    started: bool,
    done: bool,
}

impl<R: Read> ArchiveReader<R> {
    /// Opens an archive: reads the age header if there is one and unwraps the file key with
    /// the identities, then starts decompressing.
    ///
    /// # Errors
    /// [`ArchiveError::InvalidIdentity`], [`ArchiveError::IdentityRequired`],
    /// [`ArchiveError::ReadAgeHeader`], [`ArchiveError::NoMatchingIdentity`],
    /// [`ArchiveError::Decrypt`], [`ArchiveError::ReadStart`].
    pub fn new(source: R, options: &ReadOptions) -> Result<Self, ArchiveError> {
        let limit = Limit::new(options.max_total_bytes);
        let (decoded, encrypted) = decode::open(source, &options.identities, limit.clone())?;
        let state = ReadState {
            limit,
            max_entry_bytes: options.max_entry_bytes,
            encrypted,
            entries: 0,
            last: String::new(),
            started: false,
            done: false,
        };
        Ok(Self { archive: tar::Archive::new(decoded), state })
    }

    /// Whether the archive was age-encrypted (compare with what the manifest says).
    pub fn is_encrypted(&self) -> bool {
        self.state.encrypted
    }

    /// Checks the format version (the first entry) and returns an iterator over the other
    /// entries. Call it once: the stream is read as it goes.
    ///
    /// # Errors
    /// [`ArchiveError::MissingVersion`], [`ArchiveError::UnknownVersion`], and any error of
    /// reading an entry; [`ArchiveError::ReadHeader`] if called a second time.
    pub fn entries(&mut self) -> Result<Entries<'_, R>, ArchiveError> {
        let Self { archive, state } = self;
        if std::mem::replace(&mut state.started, true) {
            let source = io::Error::other("the entries were read already");
            return Err(ArchiveError::ReadHeader { after: state.last.clone(), source });
        }
        let mut inner = archive.entries().map_err(|e| stream_error(&state.limit, e, ""))?.raw(true);
        let version = next_entry(&mut inner, state.max_entry_bytes, &state.limit, "").and_then(check_version);
        if version.is_err() {
            state.done = true;
        }
        version?;
        state.last = VERSION_PATH.to_owned();
        Ok(Entries { inner, state })
    }

    /// Reads the rest of the stream to its end, so age's final authentication tag and zstd's
    /// checksum are verified, and returns the totals: the entries yielded, and every
    /// uncompressed byte. Entries not iterated are read past without checks or counting.
    ///
    /// # Errors
    /// [`ArchiveError::ReadEnd`] for a truncated or tampered end,
    /// [`ArchiveError::TotalTooLarge`].
    pub fn finish(self) -> Result<ArchiveSummary, ArchiveError> {
        let mut rest = self.archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|source| {
            if self.state.limit.exceeded() {
                ArchiveError::TotalTooLarge { limit: self.state.limit.max }
            } else {
                ArchiveError::ReadEnd { source }
            }
        })?;
        Ok(ArchiveSummary { entries: self.state.entries, uncompressed_bytes: self.state.limit.count() })
    }
}

/// The entries of an archive after `metadata/version`, in order. After an error it yields
/// nothing more.
pub struct Entries<'a, R: Read + 'a> {
    inner: tar::Entries<'a, Decoded<R>>,
    state: &'a mut ReadState,
}

impl<R: Read> Iterator for Entries<'_, R> {
    type Item = Result<ArchiveEntry, ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state.done {
            return None;
        }
        let item =
            next_entry(&mut self.inner, self.state.max_entry_bytes, &self.state.limit, &self.state.last).transpose();
        match &item {
            Some(Ok(entry)) => {
                self.state.entries += 1;
                self.state.last.clone_from(&entry.path);
            }
            None | Some(Err(_)) => self.state.done = true,
        }
        item
    }
}

/// The first entry must be `metadata/version` holding a version this reader knows.
fn check_version(first: Option<ArchiveEntry>) -> Result<(), ArchiveError> {
    let Some(entry) = first else {
        return Err(ArchiveError::MissingVersion { found: String::new() });
    };
    if entry.path != VERSION_PATH {
        return Err(ArchiveError::MissingVersion { found: entry.path });
    }
    let text = String::from_utf8_lossy(&entry.bytes);
    if text.strip_suffix('\n').unwrap_or(&text) != FORMAT_VERSION {
        return Err(ArchiveError::UnknownVersion { found: text.chars().take(32).collect() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{objects, read_all, write};
    use super::super::{ArchiveOptions, generate_identity};
    use super::*;

    /// A hand-made entry: the name goes into the header raw, unchecked, as an attacker would.
    struct Raw<'a> {
        name: &'a [u8],
        kind: tar::EntryType,
        data: &'a [u8],
    }

    fn regular<'a>(name: &'a str, data: &'a [u8]) -> Raw<'a> {
        Raw { name: name.as_bytes(), kind: tar::EntryType::Regular, data }
    }

    fn crafted(entries: &[Raw<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for e in entries {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..e.name.len()].copy_from_slice(e.name);
            header.set_entry_type(e.kind);
            header.set_size(e.data.len() as u64);
            header.set_mode(0o644);
            if e.kind.is_symlink() || e.kind.is_hard_link() {
                header.set_link_name("resources/pods/cluster/a.json").unwrap();
            }
            header.set_cksum();
            builder.append(&header, e.data).unwrap();
        }
        zstd::encode_all(builder.into_inner().unwrap().as_slice(), 3).unwrap()
    }

    fn with_version<'a>(entries: &[Raw<'a>]) -> Vec<u8> {
        let mut all = vec![regular(VERSION_PATH, b"1\n")];
        all.extend(entries.iter().map(|e| Raw { ..*e }));
        crafted(&all)
    }

    /// Reads until the first error: what was yielded before it, and the error.
    fn refusal(archive: &[u8], options: &ReadOptions) -> (Vec<String>, ArchiveError) {
        let mut reader = match ArchiveReader::new(archive, options) {
            Ok(reader) => reader,
            Err(err) => return (Vec::new(), err),
        };
        let mut entries = match reader.entries() {
            Ok(entries) => entries,
            Err(err) => return (Vec::new(), err),
        };
        let mut seen = Vec::new();
        for entry in entries.by_ref() {
            match entry {
                Ok(entry) => seen.push(entry.path),
                Err(err) => {
                    assert!(entries.next().is_none(), "nothing is yielded past a refusal");
                    return (seen, err);
                }
            }
        }
        panic!("no refusal after {seen:?}");
    }

    const GOOD: &str = "resources/pods/namespaces/default/web.json";
    const LATER: &str = "resources/pods/namespaces/default/later.json";

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in ["../evil.json", "resources/../../etc/passwd", "/etc/passwd", "etc/passwd", "resources/./x.json"] {
            let archive = with_version(&[regular(GOOD, b"{}"), regular(bad, b"{}"), regular(LATER, b"{}")]);
            let (seen, err) = refusal(&archive, &ReadOptions::default());
            assert_eq!(seen, [GOOD], "{bad}");
            assert!(matches!(&err, ArchiveError::UnsafePath { path, .. } if path == bad), "{bad}: {err}");
        }
        let archive = with_version(&[Raw { name: b"resources/\xff.json", ..regular("", b"{}") }]);
        assert!(matches!(refusal(&archive, &ReadOptions::default()).1, ArchiveError::UnsafePath { .. }));
    }

    #[test]
    fn links_devices_and_directories_are_refused() {
        use tar::EntryType::{Block, Char, Directory, Fifo, Link, Symlink};
        for (kind, name) in [
            (Symlink, "symbolic link"),
            (Link, "hard link"),
            (Char, "device"),
            (Block, "device"),
            (Fifo, "FIFO"),
            (Directory, "directory"),
        ] {
            let archive = with_version(&[Raw { name: GOOD.as_bytes(), kind, data: b"" }, regular(LATER, b"{}")]);
            let (seen, err) = refusal(&archive, &ReadOptions::default());
            assert!(seen.is_empty());
            assert!(matches!(err, ArchiveError::NotARegularFile { kind: k, .. } if k == name), "{kind:?}: {err}");
        }
    }

    #[test]
    fn entries_over_the_limit_are_refused() {
        let options = ReadOptions { max_entry_bytes: 1000, ..ReadOptions::default() };
        let archive = with_version(&[regular(GOOD, &[b' '; 1000]), regular(LATER, &[b' '; 1001])]);
        let (seen, err) = refusal(&archive, &options);
        assert_eq!(seen, [GOOD]);
        assert!(matches!(err, ArchiveError::EntryTooLarge { size: 1001, limit: 1000, .. }), "{err}");
    }

    #[test]
    fn archives_over_the_total_limit_are_refused() {
        let (archive, _, summary) = write(&objects(40), &ArchiveOptions::default());
        let options = ReadOptions { max_total_bytes: summary.uncompressed_bytes / 2, ..ReadOptions::default() };
        let (seen, err) = refusal(&archive, &options);
        assert!(!seen.is_empty() && seen.len() < 40);
        assert!(matches!(err, ArchiveError::TotalTooLarge { .. }), "{err}");
        let exact = ReadOptions { max_total_bytes: summary.uncompressed_bytes, ..ReadOptions::default() };
        assert_eq!(read_all(&archive, &exact).unwrap().1, summary);
    }

    #[test]
    fn unknown_or_missing_versions_are_refused() {
        for version in [&b"2\n"[..], b"1.1.0\n", b"", b"1\n\n"] {
            let archive = crafted(&[regular(VERSION_PATH, version), regular(GOOD, b"{}")]);
            let (_, err) = refusal(&archive, &ReadOptions::default());
            assert!(matches!(err, ArchiveError::UnknownVersion { .. }), "{version:?}: {err}");
        }
        let archive = crafted(&[regular(GOOD, b"{}"), regular(VERSION_PATH, b"1\n")]);
        let (_, err) = refusal(&archive, &ReadOptions::default());
        assert!(matches!(&err, ArchiveError::MissingVersion { found } if found == GOOD), "{err}");
        let (_, err) = refusal(&crafted(&[]), &ReadOptions::default());
        assert!(matches!(&err, ArchiveError::MissingVersion { found } if found.is_empty()), "{err}");
    }

    #[test]
    fn identities_must_match_and_are_never_shown() {
        let (_, public) = generate_identity();
        let (wrong, _) = generate_identity();
        let options = ArchiveOptions { recipients: vec![public], ..ArchiveOptions::default() };
        let (archive, _, _) = write(&objects(3), &options);
        let read = |identities: Vec<String>| read_all(&archive, &ReadOptions { identities, ..ReadOptions::default() });
        let err = read(vec![wrong.clone()]).unwrap_err();
        assert!(matches!(err, ArchiveError::NoMatchingIdentity { count: 1 }), "{err}");
        assert_eq!(err.to_string(), "none of the 1 identities given can decrypt the archive");
        assert!(matches!(read(vec![]).unwrap_err(), ArchiveError::IdentityRequired));
        let garbled = wrong.clone() + "X";
        let err = read(vec![wrong.clone(), garbled.clone()]).unwrap_err();
        assert!(matches!(err, ArchiveError::InvalidIdentity { index: 1, .. }), "{err}");
        assert!(!format!("{err} {err:?}").contains(&garbled[20..]), "the secret is not shown");
        let options = ReadOptions { identities: vec![wrong], ..ReadOptions::default() };
        assert!(!format!("{options:?}").contains("AGE-SECRET-KEY"), "{options:?}");
    }

    #[test]
    fn tampered_or_truncated_archives_fail() {
        let (secret, public) = generate_identity();
        let options = ArchiveOptions { recipients: vec![public], ..ArchiveOptions::default() };
        let (archive, _, _) = write(&objects(200), &options);
        let read = ReadOptions { identities: vec![secret], ..ReadOptions::default() };
        let mut flipped = archive.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 1;
        assert!(read_all(&flipped, &read).is_err(), "a flipped bit is caught by age");
        let truncated = &archive[..archive.len() - 20];
        assert!(read_all(truncated, &read).is_err(), "a cut end is caught");

        let (plain, _, _) = write(&objects(200), &ArchiveOptions::default());
        let truncated = &plain[..plain.len() - 4];
        assert!(matches!(read_all(truncated, &ReadOptions::default()), Err(ArchiveError::ReadEnd { .. })));
        let (_, err) = refusal(b"not an archive at all", &ReadOptions::default());
        assert!(matches!(err, ArchiveError::ReadHeader { .. }), "{err}");
    }

    #[test]
    fn a_plain_archive_reads_with_identities_given_and_entries_are_read_once() {
        let (secret, _) = generate_identity();
        let (archive, _, _) = write(&objects(3), &ArchiveOptions::default());
        let options = ReadOptions { identities: vec![secret], ..ReadOptions::default() };
        let mut reader = ArchiveReader::new(archive.as_slice(), &options).unwrap();
        assert!(!reader.is_encrypted());
        assert_eq!(reader.entries().unwrap().count(), 3);
        assert!(matches!(reader.entries().err(), Some(ArchiveError::ReadHeader { .. })));
    }

    /// A pax record: `"{length} {key}={value}\n"`, the length counting itself.
    fn pax(key: &str, value: &str) -> Vec<u8> {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while len.to_string().len() + body.len() != len {
            len += 1;
        }
        format!("{len}{body}").into_bytes()
    }

    const X: tar::EntryType = tar::EntryType::XHeader;
    const L: tar::EntryType = tar::EntryType::GNULongName;

    #[test]
    fn pax_headers_may_rename_but_not_resize() {
        let renamed = pax("path", LATER);
        let archive = with_version(&[Raw { name: b"PaxHeaders/x", kind: X, data: &renamed }, regular("x", b"{}")]);
        let (entries, _) = read_all(&archive, &ReadOptions::default()).unwrap();
        assert_eq!(entries.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), [LATER]);

        let escape = pax("path", "resources/../../etc/cron.d/x");
        let archive = with_version(&[Raw { name: b"PaxHeaders/x", kind: X, data: &escape }, regular(GOOD, b"{}")]);
        let (_, err) = refusal(&archive, &ReadOptions::default());
        assert!(matches!(&err, ArchiveError::UnsafePath { path, .. } if path.contains("etc/cron.d")), "{err}");

        for data in [pax("size", "2"), pax("GNU.sparse.major", "1")] {
            let archive = with_version(&[Raw { name: b"PaxHeaders/x", kind: X, data: &data }, regular(GOOD, b"{}")]);
            let (_, err) = refusal(&archive, &ReadOptions::default());
            assert!(matches!(err, ArchiveError::Malformed { .. }), "{err}");
        }
    }

    #[test]
    fn long_names_must_be_short_single_and_followed() {
        let two = with_version(&[
            Raw { name: b"././@LongLink", kind: L, data: LATER.as_bytes() },
            Raw { name: b"././@LongLink", kind: L, data: LATER.as_bytes() },
            regular("x", b"{}"),
        ]);
        assert!(matches!(refusal(&two, &ReadOptions::default()).1, ArchiveError::Malformed { .. }));
        let dangling = with_version(&[Raw { name: b"././@LongLink", kind: L, data: LATER.as_bytes() }]);
        assert!(matches!(refusal(&dangling, &ReadOptions::default()).1, ArchiveError::Malformed { .. }));
        let huge = vec![b'a'; 5000];
        let long = with_version(&[Raw { name: b"././@LongLink", kind: L, data: &huge }, regular("x", b"{}")]);
        let (_, err) = refusal(&long, &ReadOptions::default());
        assert!(matches!(err, ArchiveError::EntryTooLarge { size: 5000, limit: 4096, .. }), "{err}");
    }

    /// A header claiming a huge size is refused from the header alone: nothing is read into
    /// memory, whatever the entry's kind.
    #[test]
    fn claimed_sizes_are_checked_before_reading() {
        for (name, kind) in
            [(&b"././@LongLink"[..], L), (b"PaxHeaders/x", X), (GOOD.as_bytes(), tar::EntryType::Regular)]
        {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_entry_type(kind);
            header.set_size(1 << 40);
            header.set_cksum();
            let mut tar = zstd::decode_all(with_version(&[]).as_slice()).unwrap();
            tar.truncate(1024); // the version entry, without the end blocks
            tar.extend_from_slice(header.as_bytes());
            let archive = zstd::encode_all(tar.as_slice(), 3).unwrap();
            let (_, err) = refusal(&archive, &ReadOptions::default());
            assert!(matches!(err, ArchiveError::EntryTooLarge { size, .. } if size == 1 << 40), "{kind:?}: {err}");
        }
    }
}

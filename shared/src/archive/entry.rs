//! One entry of the tar stream, assembled from raw tar records in bounded memory and checked.
//!
//! The tar crate's default iteration reads GNU long names and pax headers whole into memory,
//! however large they claim to be; here they are read raw, within small limits. A pax header
//! may rename the entry that follows (`path`), but not resize it (`size`) or make it sparse:
//! those would make this reader and `tar` disagree on where entries start.

use std::io::{self, Read};

use super::decode::Limit;
use super::error::ArchiveError;
use super::layout::check_entry_path;
use super::reader::ArchiveEntry;

/// The longest path accepted from a GNU long-name record (Linux `PATH_MAX`).
const MAX_LONG_NAME_BYTES: u64 = 4096;
/// The largest pax header accepted.
const MAX_PAX_BYTES: u64 = 64 << 10;

/// Reads the next entry, its long name or pax header included; `Ok(None)` at the end.
/// `after` is the previous entry's path, for errors.
pub(crate) fn next_entry<R: Read>(
    raw: &mut tar::Entries<'_, R>,
    max_bytes: u64,
    limit: &Limit,
    after: &str,
) -> Result<Option<ArchiveEntry>, ArchiveError> {
    let mut name = None;
    let mut extended = false;
    loop {
        let entry = match raw.next() {
            None if extended => return Err(malformed(after, "an extension header is not followed by its entry")),
            None => return Ok(None),
            Some(Err(source)) => return Err(stream_error(limit, source, after)),
            Some(Ok(entry)) => entry,
        };
        let kind = entry.header().entry_type();
        if kind.is_gnu_longname() || kind.is_pax_local_extensions() {
            if std::mem::replace(&mut extended, true) {
                return Err(malformed(after, "two extension headers describe one entry"));
            }
            name = extension_name(entry, limit)?;
            continue;
        }
        return read_entry(entry, name, max_bytes, limit).map(Some);
    }
}

/// The path a GNU long-name record or a pax header gives the next entry.
fn extension_name<R: Read>(mut entry: tar::Entry<'_, R>, limit: &Limit) -> Result<Option<Vec<u8>>, ArchiveError> {
    let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let long_name = entry.header().entry_type().is_gnu_longname();
    let max = if long_name { MAX_LONG_NAME_BYTES } else { MAX_PAX_BYTES };
    let data = read_data(&mut entry, &path, max, limit)?;
    if long_name {
        let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        return Ok(Some(data.get(..end).unwrap_or_default().to_vec()));
    }
    let mut name = None;
    for extension in tar::PaxExtensions::new(&data) {
        let extension = extension.map_err(|source| ArchiveError::ReadEntry { path: path.clone(), source })?;
        match extension.key_bytes() {
            b"path" => name = Some(extension.value_bytes().to_vec()),
            b"size" => return Err(malformed(&path, "pax size overrides are not supported")),
            key if key.starts_with(b"GNU.sparse") => return Err(malformed(&path, "sparse files are not supported")),
            _ => {}
        }
    }
    Ok(name)
}

/// Checks an entry (path, type, size) and reads its bytes.
fn read_entry<R: Read>(
    mut entry: tar::Entry<'_, R>,
    name: Option<Vec<u8>>,
    max: u64,
    limit: &Limit,
) -> Result<ArchiveEntry, ArchiveError> {
    let raw = name.unwrap_or_else(|| entry.path_bytes().into_owned());
    let path = String::from_utf8_lossy(&raw).into_owned();
    let checked = match std::str::from_utf8(&raw) {
        Ok(text) => check_entry_path(text),
        Err(_) => Err("it is not UTF-8"),
    };
    if let Err(reason) = checked {
        return Err(ArchiveError::UnsafePath { path, reason });
    }
    let kind = entry.header().entry_type();
    if !kind.is_file() {
        return Err(ArchiveError::NotARegularFile { path, kind: kind_name(kind) });
    }
    let bytes = read_data(&mut entry, &path, max, limit)?;
    Ok(ArchiveEntry { path, bytes })
}

fn read_data<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &str,
    max: u64,
    limit: &Limit,
) -> Result<Vec<u8>, ArchiveError> {
    let size = entry.size();
    if size > max {
        return Err(ArchiveError::EntryTooLarge { path: path.to_owned(), size, limit: max });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    match entry.read_to_end(&mut bytes) {
        Ok(_) => Ok(bytes),
        Err(_) if limit.exceeded() => Err(ArchiveError::TotalTooLarge { limit: limit.max }),
        Err(source) => Err(ArchiveError::ReadEntry { path: path.to_owned(), source }),
    }
}

/// An error of the tar stream itself: the size limit if it was passed, else a bad header.
pub(crate) fn stream_error(limit: &Limit, source: io::Error, after: &str) -> ArchiveError {
    if limit.exceeded() {
        ArchiveError::TotalTooLarge { limit: limit.max }
    } else {
        ArchiveError::ReadHeader { after: after.to_owned(), source }
    }
}

fn malformed(path: &str, reason: &'static str) -> ArchiveError {
    ArchiveError::Malformed { path: path.to_owned(), reason }
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char | tar::EntryType::Block => "device",
        tar::EntryType::Directory => "directory",
        tar::EntryType::Fifo => "FIFO",
        tar::EntryType::GNULongLink => "GNU long link name",
        tar::EntryType::XGlobalHeader => "pax global header",
        _ => "special entry",
    }
}

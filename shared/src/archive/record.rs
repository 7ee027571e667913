//! What the writer reports of each entry and of the whole archive, and the reader can compute
//! again, so the manifest's digests can be checked on restore.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One entry as written (or read): its path, the SHA-256 of its bytes and their count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntryRecord {
    /// The path inside the archive.
    pub path: String,
    /// SHA-256 of the entry's bytes, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl EntryRecord {
    /// The record of `bytes` stored at `path`.
    pub fn of(path: &str, bytes: &[u8]) -> Self {
        Self { path: path.to_owned(), sha256: sha256_hex(bytes), size: bytes.len() as u64 }
    }
}

/// Totals of a whole archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveSummary {
    /// Objects in it (`metadata/version` not counted).
    pub entries: u64,
    /// Length of the tar stream, what `zstd -d` outputs.
    pub uncompressed_bytes: u64,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_lowercase_hex_sha256() {
        let r = EntryRecord::of("metadata/version", b"abc");
        assert_eq!(r.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!((r.path.as_str(), r.size), ("metadata/version", 3));
    }
}

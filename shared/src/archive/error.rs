//! What can go wrong writing or reading an archive, each variant named after the step.

use std::io;

/// Errors of the archive module.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The zstd level is outside what the module allows.
    #[error("zstd level {level} is outside 1..=19")]
    InvalidCompressionLevel {
        /// The level given.
        level: i32,
    },
    /// A recipient is not an age X25519 public key.
    #[error("recipient {recipient:?} is not an age X25519 public key (age1…): {reason}")]
    InvalidRecipient {
        /// The recipient as given (a public key: safe to show).
        recipient: String,
        /// Why age refused it.
        reason: &'static str,
    },
    /// An identity is not an age X25519 secret key. The key itself is never shown.
    #[error("identity #{index} is not an age X25519 secret key (AGE-SECRET-KEY-1…): {reason}")]
    InvalidIdentity {
        /// Its position in the list given, from 0.
        index: usize,
        /// Why age refused it.
        reason: &'static str,
    },
    /// Setting up age encryption failed.
    #[error("starting age encryption failed")]
    StartEncryption {
        /// The cause.
        #[source]
        source: age::EncryptError,
    },
    /// Writing the archive's start (age header, zstd frame, version entry) failed.
    #[error("writing the archive's start failed")]
    WriteStart {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing one entry failed.
    #[error("writing entry {path} failed")]
    WriteEntry {
        /// The entry's path.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Finishing the archive (tar end, zstd epilogue, age final chunk) failed.
    #[error("finishing the archive failed")]
    WriteEnd {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The archive is age-encrypted and no identity was given.
    #[error("the archive is encrypted and no identity was given")]
    IdentityRequired,
    /// The age header could not be read.
    #[error("reading the archive's age header failed")]
    ReadAgeHeader {
        /// The cause.
        #[source]
        source: age::DecryptError,
    },
    /// None of the identities given can decrypt the archive.
    #[error("none of the {count} identities given can decrypt the archive")]
    NoMatchingIdentity {
        /// How many identities were tried.
        count: usize,
    },
    /// Decryption failed for another reason than a wrong identity.
    #[error("decrypting the archive failed")]
    Decrypt {
        /// The cause.
        #[source]
        source: age::DecryptError,
    },
    /// The start of the stream could not be read or is not a zstd stream.
    #[error("reading the archive's start failed")]
    ReadStart {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The next entry's header could not be read (corrupt, truncated or tampered with).
    #[error("reading the entry after {after:?} failed")]
    ReadHeader {
        /// The last entry read whole (`""` at the start).
        after: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An entry's contents could not be read.
    #[error("reading entry {path:?} failed")]
    ReadEntry {
        /// The entry's path.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading past the last entry (the age and zstd integrity checks) failed.
    #[error("reading the archive's end failed")]
    ReadEnd {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An entry path that is not a safe relative path under `resources/` or `metadata/`.
    #[error("entry path {path:?} is refused: {reason}")]
    UnsafePath {
        /// The path, lossily decoded.
        path: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A tar record this reader does not accept (e.g. a long name followed by nothing, a pax
    /// header resizing its entry).
    #[error("entry {path:?} is refused: {reason}")]
    Malformed {
        /// The path of the record, or of the entry before it.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An entry that is not a regular file.
    #[error("entry {path:?} is refused: it is a {kind}, not a regular file")]
    NotARegularFile {
        /// The path.
        path: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// An entry larger than the per-entry limit.
    #[error("entry {path:?} is refused: {size} bytes exceed the limit of {limit}")]
    EntryTooLarge {
        /// The path.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The archive's uncompressed size passed the limit.
    #[error("the archive is refused: it exceeds the limit of {limit} uncompressed bytes")]
    TotalTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The first entry is not `metadata/version`.
    #[error("the archive is refused: its first entry is {found:?}, not metadata/version")]
    MissingVersion {
        /// The first entry's path (`""` for an empty archive).
        found: String,
    },
    /// A format version this reader does not know.
    #[error("the archive is refused: format version {found:?} is unknown")]
    UnknownVersion {
        /// What `metadata/version` holds, lossily decoded, at most 32 characters.
        found: String,
    },
}

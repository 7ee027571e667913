//! The backup archive: a cluster's Kubernetes objects in Velero's layout ([`layout`]), as a
//! tar stream compressed with zstd and optionally encrypted with age, so an operator can
//! recover with the standard tools alone:
//!
//! ```sh
//! age -d -i key.txt resources.tar.zst | zstd -d | tar -x -C outdir
//! ```
//!
//! The module reads and writes streams, never paths or blob clients. [`ArchiveWriter`] and
//! [`ArchiveReader`] are synchronous and hold one object at a time: run them on a blocking
//! thread. [`channel`] turns the writer's output into the [`ByteStream`] an
//! [`ObjectStore`](crate::ports::object_store::ObjectStore) uploads, with backpressure.
//!
//! ```
//! use lifeboat_shared::archive::{ArchiveOptions, ArchiveReader, ArchiveWriter, EntryPath, ReadOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (secret, public) = lifeboat_shared::archive::generate_identity();
//! let options = ArchiveOptions { recipients: vec![public], ..ArchiveOptions::default() };
//! let mut archive = Vec::new();
//! let mut writer = ArchiveWriter::new(&mut archive, &options)?;
//! let path = EntryPath::namespaced("configmaps", "", "shop", "settings")?;
//! let record = writer.append_object(&path, br#"{"kind":"ConfigMap"}"#)?;
//! assert_eq!(record.path, "resources/configmaps/namespaces/shop/settings.json");
//! writer.finish()?;
//!
//! let options = ReadOptions { identities: vec![secret], ..ReadOptions::default() };
//! let mut reader = ArchiveReader::new(archive.as_slice(), &options)?;
//! for entry in reader.entries()? {
//!     assert_eq!(entry?.record(), record);
//! }
//! assert_eq!(reader.finish()?.entries, 1);
//! # Ok(())
//! # }
//! ```
//!
//! [`ByteStream`]: crate::ports::object_store::ByteStream

mod decode;
mod entry;
mod error;
#[cfg(test)]
mod fixtures;
mod keys;
pub mod layout;
mod reader;
mod record;
mod sealed;
mod stream;
mod writer;

pub use error::ArchiveError;
pub use keys::generate_identity;
pub use layout::{EntryPath, FORMAT_VERSION, LayoutError, VERSION_PATH};
pub use reader::{ArchiveEntry, ArchiveReader, Entries, ReadOptions};
pub use record::{ArchiveSummary, EntryRecord};
pub use sealed::{MAX_SEALED_LINE_BYTES, SealWriter, SealedError, StoredDigest, read_sealed_lines};
pub use stream::{ChannelWriter, channel};
pub use writer::{ArchiveOptions, ArchiveWriter, ZSTD_LEVELS};

//! The reader's lower layers: recognising age encryption by its header, decrypting,
//! decompressing, and counting the uncompressed bytes against a limit.

use std::io::{self, BufReader, Chain, Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::ArchiveError;

/// How every age file starts (`age-encryption.org/v1` today).
const AGE_MAGIC: &[u8] = b"age-encryption.org/";

/// The largest zstd window accepted (2^24 = 16 MiB), twice what the writer's levels use, so a
/// hostile frame cannot make the decoder allocate more.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

type Peeked<R> = Chain<Cursor<Vec<u8>>, R>;

/// The decompressed tar stream, counted.
pub(crate) type Decoded<R> = Limited<zstd::stream::read::Decoder<'static, BufReader<Source<R>>>>;

/// The compressed stream: as read, or decrypted.
pub(crate) enum Source<R: Read> {
    Plain(Peeked<R>),
    Encrypted(age::stream::StreamReader<BufReader<Peeked<R>>>),
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(r) => r.read(buf),
            Self::Encrypted(r) => r.read(buf),
        }
    }
}

/// Opens `input`: decrypts with `identities` when it starts with an age header, then
/// decompresses. Returns the tar stream and whether it was encrypted.
pub(crate) fn open<R: Read>(
    mut input: R,
    identities: &[String],
    counter: Limit,
) -> Result<(Decoded<R>, bool), ArchiveError> {
    let identities = parse_identities(identities)?;
    let start = |source| ArchiveError::ReadStart { source };
    let mut prefix = Vec::with_capacity(AGE_MAGIC.len());
    (&mut input).take(AGE_MAGIC.len() as u64).read_to_end(&mut prefix).map_err(start)?;
    let encrypted = prefix == AGE_MAGIC;
    let peeked = Cursor::new(prefix).chain(input);
    let source = if encrypted {
        if identities.is_empty() {
            return Err(ArchiveError::IdentityRequired);
        }
        let decryptor = age::Decryptor::new_buffered(BufReader::new(peeked))
            .map_err(|source| ArchiveError::ReadAgeHeader { source })?;
        let reader = decryptor.decrypt(identities.iter().map(|i| i as &dyn age::Identity)).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => ArchiveError::NoMatchingIdentity { count: identities.len() },
            source => ArchiveError::Decrypt { source },
        })?;
        Source::Encrypted(reader)
    } else {
        Source::Plain(peeked)
    };
    let mut decoder = zstd::stream::read::Decoder::new(source).map_err(start)?;
    decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(start)?;
    Ok((Limited { inner: decoder, limit: counter }, encrypted))
}

pub(crate) fn parse_identities(identities: &[String]) -> Result<Vec<age::x25519::Identity>, ArchiveError> {
    identities
        .iter()
        .enumerate()
        .map(|(index, i)| i.trim().parse().map_err(|reason| ArchiveError::InvalidIdentity { index, reason }))
        .collect()
}

/// The count of uncompressed bytes read, shared with the reader, and its limit.
#[derive(Debug, Clone)]
pub(crate) struct Limit {
    pub(crate) count: Arc<AtomicU64>,
    pub(crate) max: u64,
}

impl Limit {
    pub(crate) fn new(max: u64) -> Self {
        Self { count: Arc::new(AtomicU64::new(0)), max }
    }
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    pub(crate) fn exceeded(&self) -> bool {
        self.count() > self.max
    }
}

/// Fails reads once more than the limit has been read.
pub(crate) struct Limited<R> {
    inner: R,
    limit: Limit,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.limit.count.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.limit.max {
            return Err(io::Error::other("the uncompressed size limit is exceeded"));
        }
        Ok(n)
    }
}

//! Sealed files: small files kept beside the archive and encrypted with age to the archive's
//! recipients, uncompressed, so that `age -d -i key.txt resources.objects.jsonl.age` shows them.
//!
//! [`SealWriter`] reports the size and SHA-256 of what it stored (the ciphertext, which says
//! nothing of the content) for the manifest to record. [`read_sealed_lines`] reads a sealed
//! file through while digesting the stored bytes, and only reports success when they are the
//! bytes the manifest recorded: whatever it decrypted is not to be trusted otherwise. age alone
//! would not do, since anyone holding the public recipient can seal a file of their own.

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::decode::parse_identities;
use super::error::ArchiveError;
use super::writer::parse_recipients;

/// The longest line [`read_sealed_lines`] accepts (an object index's record is a path of at most
/// 4 KiB, a digest and a size).
pub const MAX_SEALED_LINE_BYTES: u64 = 64 << 10;

/// A sealed file as stored: its size and the SHA-256 of its (encrypted) bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDigest {
    /// Bytes stored.
    pub bytes: u64,
    /// SHA-256 of the stored bytes, lowercase hex.
    pub sha256: String,
}

/// Encrypts what is written to it with age, to the recipients given, and digests the result.
/// Call [`SealWriter::finish`]: a file not finished has no final chunk and every reader refuses
/// it.
pub struct SealWriter<W: Write> {
    inner: age::stream::StreamWriter<Digesting<W>>,
}

impl<W: Write> SealWriter<W> {
    /// Starts a sealed file on `sink`, encrypted to `recipients` (`age1…`, at least one).
    ///
    /// # Errors
    /// [`ArchiveError::InvalidRecipient`], [`ArchiveError::StartEncryption`] (no recipient),
    /// [`ArchiveError::WriteStart`].
    pub fn new(sink: W, recipients: &[String]) -> Result<Self, ArchiveError> {
        let recipients = parse_recipients(recipients)?;
        let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|source| ArchiveError::StartEncryption { source })?;
        let inner =
            encryptor.wrap_output(Digesting::new(sink)).map_err(|source| ArchiveError::WriteStart { source })?;
        Ok(Self { inner })
    }

    /// Writes age's final chunk and returns the sink and what was stored.
    ///
    /// # Errors
    /// When the sink fails.
    pub fn finish(self) -> io::Result<(W, StoredDigest)> {
        let digesting = self.inner.finish()?;
        let digest = digesting.digest();
        Ok((digesting.inner, digest))
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a sealed file is not to be trusted.
#[derive(Debug, thiserror::Error)]
pub enum SealedError {
    /// The stored bytes are not the ones the manifest recorded.
    #[error(
        "its stored bytes are not the ones the manifest recorded ({found_bytes} bytes with SHA-256 \
         {found_sha256}, where the manifest says {expected_bytes} with {expected_sha256}): it was \
         altered or damaged"
    )]
    Altered {
        /// Size the manifest recorded.
        expected_bytes: u64,
        /// SHA-256 the manifest recorded.
        expected_sha256: String,
        /// Size read.
        found_bytes: u64,
        /// SHA-256 of the bytes read.
        found_sha256: String,
    },
    /// None of the identities opens it.
    #[error("none of the {count} identities given can decrypt it")]
    NoMatchingIdentity {
        /// Identities tried.
        count: usize,
    },
    /// Opening it failed (no identity, a bad identity, a bad age header).
    #[error("opening it failed")]
    Open(#[source] ArchiveError),
    /// Reading it through failed (a store failure, or age refusing a chunk).
    #[error("reading it failed")]
    Read(#[source] io::Error),
    /// A line was refused (by the caller, or for its length).
    #[error("line {line} is refused: {reason}")]
    Line {
        /// Its number, from 1.
        line: u64,
        /// Why.
        reason: String,
    },
}

/// Decrypts the sealed file read from `source` with `identities` and hands `each` every line
/// (its number from 1, its bytes without the newline), then checks that the stored bytes were
/// the ones `expected` describes. Every stored byte is read and digested whatever happens, so a
/// file altered in any way is reported as [`SealedError::Altered`] rather than by the first
/// symptom age or `each` met; what `each` was given must be discarded on any error.
///
/// # Errors
/// [`SealedError`].
pub fn read_sealed_lines<R: Read>(
    source: R,
    identities: &[String],
    expected: &StoredDigest,
    each: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<(), SealedError> {
    let shared = Rc::new(RefCell::new(Digesting::new(source)));
    let result = read_lines(Shared(Rc::clone(&shared)), identities, each);
    let mut digesting = shared.borrow_mut();
    let drained = io::copy(&mut *digesting, &mut io::sink());
    if let Some(failure) = digesting.read_failure.take() {
        // Not every stored byte could be read (a store failure): there is nothing to compare.
        return Err(SealedError::Read(failure));
    }
    let found = digesting.digest();
    if found != *expected {
        return Err(SealedError::Altered {
            expected_bytes: expected.bytes,
            expected_sha256: expected.sha256.clone(),
            found_bytes: found.bytes,
            found_sha256: found.sha256,
        });
    }
    result?;
    drained.map(|_| ()).map_err(SealedError::Read)
}

fn read_lines<R: Read>(
    source: R,
    identities: &[String],
    mut each: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<(), SealedError> {
    let identities = parse_identities(identities).map_err(SealedError::Open)?;
    if identities.is_empty() {
        return Err(SealedError::Open(ArchiveError::IdentityRequired));
    }
    let decryptor = age::Decryptor::new_buffered(BufReader::new(source))
        .map_err(|source| SealedError::Open(ArchiveError::ReadAgeHeader { source }))?;
    let reader = decryptor.decrypt(identities.iter().map(|i| i as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => SealedError::NoMatchingIdentity { count: identities.len() },
        source => SealedError::Open(ArchiveError::Decrypt { source }),
    })?;
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let read = (&mut reader).take(MAX_SEALED_LINE_BYTES + 1).read_until(b'\n', &mut line);
        if read.map_err(SealedError::Read)? == 0 {
            return Ok(());
        }
        number += 1;
        let text = match line.strip_suffix(b"\n") {
            Some(text) => text,
            None if line.len() as u64 > MAX_SEALED_LINE_BYTES => {
                let reason = format!("it is longer than {MAX_SEALED_LINE_BYTES} bytes");
                return Err(SealedError::Line { line: number, reason });
            }
            None => &line,
        };
        each(number, text).map_err(|reason| SealedError::Line { line: number, reason })?;
    }
}

/// Counts and digests the bytes passing through, read or written, and keeps the first failure
/// to read.
struct Digesting<T> {
    inner: T,
    hasher: Sha256,
    bytes: u64,
    read_failure: Option<io::Error>,
}

impl<T> Digesting<T> {
    fn new(inner: T) -> Self {
        Self { inner, hasher: Sha256::new(), bytes: 0, read_failure: None }
    }

    fn digest(&self) -> StoredDigest {
        let sha256 = self.hasher.clone().finalize().iter().map(|b| format!("{b:02x}")).collect();
        StoredDigest { bytes: self.bytes, sha256 }
    }

    fn add(&mut self, done: &[u8]) {
        self.hasher.update(done);
        self.bytes += done.len() as u64;
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.add(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.add(buf.get(..n).unwrap_or_default());
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let reported = io::Error::new(e.kind(), e.to_string());
                self.read_failure.get_or_insert(e);
                Err(reported)
            }
        }
    }
}

/// A reader shared with [`read_sealed_lines`], which reads the rest after age is done with it.
struct Shared<R>(Rc<RefCell<Digesting<R>>>);

impl<R: Read> Read for Shared<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::super::generate_identity;
    use super::super::record::sha256_hex;
    use super::*;

    const LINES: &[&str] = &[r#"{"path":"a","sha256":"00","size":1}"#, "second", ""];

    fn sealed(recipient: &str, lines: &[&str]) -> (Vec<u8>, StoredDigest) {
        let mut writer = SealWriter::new(Vec::new(), &[recipient.to_owned()]).unwrap();
        for line in lines {
            writer.write_all(line.as_bytes()).unwrap();
            writer.write_all(b"\n").unwrap();
        }
        writer.finish().unwrap()
    }

    fn read(bytes: &[u8], identity: &str, expected: &StoredDigest) -> Result<Vec<String>, SealedError> {
        let mut lines = Vec::new();
        read_sealed_lines(bytes, &[identity.to_owned()], expected, |n, line| {
            assert_eq!(n, lines.len() as u64 + 1);
            lines.push(String::from_utf8_lossy(line).into_owned());
            Ok(())
        })?;
        Ok(lines)
    }

    #[test]
    fn what_is_sealed_reads_back_and_its_digest_is_that_of_the_stored_bytes() {
        let (secret, public) = generate_identity();
        let (bytes, digest) = sealed(&public, LINES);
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
        assert_eq!(digest, StoredDigest { bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) });
        assert!(!String::from_utf8_lossy(&bytes).contains("second"), "the content is not readable");
        assert_eq!(read(&bytes, &secret, &digest).unwrap(), LINES);
    }

    #[test]
    fn any_altered_byte_is_reported_as_altered() {
        let (secret, public) = generate_identity();
        let (bytes, digest) = sealed(&public, LINES);
        for at in [0, 30, bytes.len() / 2, bytes.len() - 1] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1;
            let err = read(&flipped, &secret, &digest).unwrap_err();
            assert!(matches!(err, SealedError::Altered { .. }), "byte {at}: {err}");
        }
        let err = read(&bytes[..bytes.len() - 5], &secret, &digest).unwrap_err();
        assert!(matches!(err, SealedError::Altered { found_bytes, .. } if found_bytes == bytes.len() as u64 - 5));
    }

    #[test]
    fn a_file_sealed_anew_with_the_public_key_is_refused() {
        let (secret, public) = generate_identity();
        let (_, digest) = sealed(&public, LINES);
        let (forged, _) = sealed(&public, &[r#"{"path":"a","sha256":"ff","size":1}"#]);
        let err = read(&forged, &secret, &digest).unwrap_err();
        assert!(err.to_string().contains("altered or damaged"), "{err}");
    }

    #[test]
    fn the_wrong_identity_or_none_is_said_so() {
        let (_, public) = generate_identity();
        let (wrong, _) = generate_identity();
        let (bytes, digest) = sealed(&public, LINES);
        let err = read(&bytes, &wrong, &digest).unwrap_err();
        assert!(matches!(err, SealedError::NoMatchingIdentity { count: 1 }), "{err}");
        let err = read_sealed_lines(bytes.as_slice(), &[], &digest, |_, _| Ok(())).unwrap_err();
        assert!(matches!(err, SealedError::Open(ArchiveError::IdentityRequired)), "{err}");
    }

    #[test]
    fn a_line_the_caller_refuses_fails_the_read_with_its_number() {
        let (secret, public) = generate_identity();
        let (bytes, digest) = sealed(&public, LINES);
        let err = read_sealed_lines(bytes.as_slice(), &[secret], &digest, |n, _| {
            if n == 2 { Err("not a record".into()) } else { Ok(()) }
        })
        .unwrap_err();
        assert!(matches!(&err, SealedError::Line { line: 2, reason } if reason == "not a record"), "{err}");
    }

    /// Fails once `left` bytes are read, as a store's stream that breaks off.
    struct BreaksOff<'a>(&'a [u8], usize);

    impl Read for BreaksOff<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 == 0 {
                return Err(io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            (self.0, self.1) = (&self.0[n..], self.1 - n);
            Ok(n)
        }
    }

    #[test]
    fn a_store_failure_is_reported_as_such_not_as_an_alteration() {
        let (secret, public) = generate_identity();
        let (bytes, digest) = sealed(&public, LINES);
        let err = read_sealed_lines(BreaksOff(&bytes, bytes.len() / 2), &[secret], &digest, |_, _| Ok(())).unwrap_err();
        assert!(matches!(&err, SealedError::Read(e) if e.to_string() == "connection reset"), "{err}");
    }

    #[test]
    fn no_recipient_is_refused() {
        assert!(matches!(SealWriter::new(Vec::new(), &[]), Err(ArchiveError::StartEncryption { .. })));
    }
}

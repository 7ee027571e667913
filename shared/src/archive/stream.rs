//! The bridge from the synchronous writer to an async upload: a [`Write`] on one side, a
//! [`ByteStream`] on the other, with a bounded channel between them so a slow consumer holds
//! the producer back and memory stays under `capacity × chunk` bytes, plus the chunk being
//! filled and the one being consumed.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::ports::object_store::ByteStream;

/// A pipe from a blocking producer to an async consumer: returns the writing end and the
/// stream that yields what was written, in chunks of `chunk_bytes` (the last one shorter).
/// At most `capacity_chunks` chunks wait in the channel. Zeros are taken as 1.
///
/// The stream ends cleanly only after [`ChannelWriter::finish`]; a writer dropped without it
/// (an early return, a panic) ends the stream with an `UnexpectedEof` error, so an upload of
/// a half-written archive fails instead of being committed.
pub fn channel(capacity_chunks: usize, chunk_bytes: usize) -> (ChannelWriter, ByteStream) {
    let (tx, rx) = mpsc::channel(capacity_chunks.max(1));
    let finished = Arc::new(AtomicBool::new(false));
    let chunk_bytes = chunk_bytes.max(1);
    let writer = ChannelWriter { tx, buf: Vec::with_capacity(chunk_bytes), chunk_bytes, finished: finished.clone() };
    let state = Receiving { rx, finished, ended: false };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        if state.ended {
            return None;
        }
        match state.rx.recv().await {
            Some(Ok(chunk)) => Some((Ok(chunk), state)),
            Some(Err(err)) => {
                state.ended = true;
                Some((Err(err), state))
            }
            None if state.finished.load(Ordering::Acquire) => None,
            None => {
                state.ended = true;
                let err = io::Error::new(io::ErrorKind::UnexpectedEof, "the producer stopped before finishing");
                Some((Err(err), state))
            }
        }
    });
    (writer, Box::pin(stream))
}

struct Receiving {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    finished: Arc<AtomicBool>,
    ended: bool,
}

/// The writing end of [`channel`]. It blocks while the channel is full, so use it on a
/// blocking thread (`spawn_blocking`, a std thread), never in async code: tokio panics when a
/// blocking send is made from a runtime thread. Writes fail with `BrokenPipe` once the stream
/// is dropped.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    chunk_bytes: usize,
    finished: Arc<AtomicBool>,
}

impl ChannelWriter {
    /// Sends what is buffered and ends the stream cleanly.
    ///
    /// # Errors
    /// `BrokenPipe` when the consumer is gone.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buffered()?;
        self.finished.store(true, Ordering::Release);
        Ok(())
    }

    /// Ends the stream with `err` after the chunks already sent, so the consumer fails (and an
    /// upload commits nothing). What is buffered is dropped.
    pub fn fail(self, err: io::Error) {
        // A consumer that is gone has failed already: nothing more to tell it.
        let _ = self.tx.blocking_send(Err(err));
    }

    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk_bytes));
        self.tx.blocking_send(Ok(Bytes::from(chunk))).map_err(|_| consumer_gone())
    }
}

fn consumer_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the stream's consumer is gone")
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.tx.is_closed() {
            return Err(consumer_gone());
        }
        let n = data.len().min(self.chunk_bytes.saturating_sub(self.buf.len()));
        self.buf.extend_from_slice(data.get(..n).unwrap_or_default());
        if self.buf.len() >= self.chunk_bytes {
            self.send_buffered()?;
        }
        Ok(n)
    }

    /// Sends what is buffered, even a short chunk.
    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::atomic::AtomicU64;

    use crate::ports::object_store::collect_bytes;

    #[tokio::test]
    async fn chunks_arrive_in_order_and_the_stream_ends_after_finish() {
        let (mut w, stream) = channel(2, 4);
        let producer = tokio::task::spawn_blocking(move || {
            w.write_all(b"hello, world")?;
            w.write_all(b"!")?;
            w.finish()
        });
        let chunks: Vec<_> = stream.map(|c| c.unwrap()).collect().await;
        producer.await.unwrap().unwrap();
        assert_eq!(chunks, [&b"hell"[..], b"o, w", b"orld", b"!"].map(Bytes::from_static));
    }

    #[tokio::test]
    async fn a_producer_error_reaches_the_consumer() {
        let (mut w, stream) = channel(2, 4);
        tokio::task::spawn_blocking(move || {
            w.write_all(b"partial data").unwrap();
            w.fail(io::Error::other("listing secrets failed"));
        });
        let err = collect_bytes(stream).await.unwrap_err();
        assert_eq!(err.to_string(), "listing secrets failed");
    }

    #[tokio::test]
    async fn a_writer_dropped_unfinished_fails_the_stream() {
        let (mut w, stream) = channel(2, 4);
        tokio::task::spawn_blocking(move || {
            w.write_all(b"half").unwrap();
            drop(w);
        });
        let err = collect_bytes(stream).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn writes_fail_with_broken_pipe_once_the_consumer_is_gone() {
        let (mut w, stream) = channel(1, 4);
        drop(stream);
        let err = w.write_all(b"anything").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    /// Counts what the archive writer hands the channel, and the most it ever got ahead of
    /// what the consumer has counted.
    struct Metered {
        inner: ChannelWriter,
        accepted: Arc<AtomicU64>,
        consumed: Arc<AtomicU64>,
        max_ahead: u64,
    }

    impl Write for Metered {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = self.inner.write(buf)?;
            let accepted = self.accepted.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            self.max_ahead = self.max_ahead.max(accepted - self.consumed.load(Ordering::SeqCst));
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    /// 4 MiB of pseudo-random letters (xorshift over 64 of them), more than zstd's window at
    /// level 3, so objects cut from it barely compress.
    fn noise() -> Vec<u8> {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..4 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[(x % 64) as usize]
            })
            .collect()
    }

    #[tokio::test]
    async fn a_slow_consumer_holds_the_writer_within_the_bound() {
        use super::super::{ArchiveOptions, ArchiveWriter, EntryPath};
        const CAPACITY: usize = 4;
        const CHUNK: usize = 256 << 10;
        const OBJECTS: u64 = 25_000;
        const PAYLOAD: usize = 2048;
        let (writer, mut stream) = channel(CAPACITY, CHUNK);
        let (accepted, consumed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut metered =
            Metered { inner: writer, accepted: accepted.clone(), consumed: consumed.clone(), max_ahead: 0 };
        let producer = std::thread::spawn(move || {
            let noise = noise();
            let mut archive = ArchiveWriter::new(&mut metered, &ArchiveOptions::default()).unwrap();
            for i in 0..OBJECTS {
                let path = EntryPath::namespaced("secrets", "", &format!("ns-{}", i % 50), &format!("s{i}")).unwrap();
                let at = (i as usize * PAYLOAD) % (noise.len() - PAYLOAD);
                let json = [br#"{"kind":"Secret","data":{"k":""#, &noise[at..at + PAYLOAD], br#""}}"#].concat();
                archive.append_object(&path, &json).unwrap();
            }
            let summary = archive.finish().unwrap();
            let max_ahead = metered.max_ahead;
            metered.inner.finish().unwrap();
            (summary, max_ahead)
        });

        // Consume nothing until the writer has filled the channel: it must then wait for us.
        while accepted.load(Ordering::SeqCst) < (CAPACITY * CHUNK) as u64 {
            tokio::task::yield_now().await;
        }
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            assert!(chunk.len() <= CHUNK);
            consumed.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
        let (summary, max_ahead) = producer.join().unwrap();

        let total = consumed.load(Ordering::SeqCst);
        assert_eq!(summary.entries, OBJECTS);
        assert_eq!(total, accepted.load(Ordering::SeqCst));
        // The channel's chunks, the one being filled and the one just received, never more.
        let bound = ((CAPACITY + 2) * CHUNK) as u64;
        assert!(max_ahead <= bound, "the writer got {max_ahead} bytes ahead, over the bound of {bound}");
        assert!(max_ahead >= (CAPACITY * CHUNK) as u64, "the channel did fill up ({max_ahead})");
        assert!(total > 20 * bound, "{total} compressed bytes passed through a {bound}-byte bound");
        eprintln!("{total} bytes passed through a {bound}-byte bound; the writer got at most {max_ahead} ahead");
    }
}

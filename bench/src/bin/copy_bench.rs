//! Copy of one large backup blob between two Azurite accounts: server-side (Copy Blob from URL
//! with a source SAS, as the `copy` function does) against download-and-upload through this
//! process, in the same run. `copy-bench --blob-endpoint URL --second-endpoint URL --second-key
//! KEY [--mib 1024] [--runs 1]`; `bench/copy.sh` starts Azurite and passes these.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use lifeboat_shared::adapters::azure::{
    AZURITE_ACCOUNT, AZURITE_KEY, BlobObjectCopier, BlobObjectStore, ClientSettings, SharedKeyCredential, StorageAuth,
};
use lifeboat_shared::adapters::streaming_copier::StreamingObjectCopier;
use lifeboat_shared::ports::object_store::ByteStream;
use lifeboat_shared::ports::{ObjectCopier, ObjectCopyState, ObjectStore, PutOptions};
use lifeboat_shared::testing::counting_policy::CountingPolicy;

const USAGE: &str = "usage: copy-bench --blob-endpoint URL --second-endpoint URL --second-account NAME --second-key KEY [--mib N] [--runs R]";
const CHUNK: usize = 1024 * 1024;
const KEY: &str = "backups/bench/copy-1/resources.tar.zst";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("copy-bench: {e:#}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    blob_endpoint: String,
    second_endpoint: String,
    second_account: String,
    second_key: String,
    mib: u64,
    runs: u32,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        blob_endpoint: String::new(),
        second_endpoint: String::new(),
        second_account: String::new(),
        second_key: String::new(),
        mib: 1024,
        runs: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--blob-endpoint" => a.blob_endpoint = value()?,
            "--second-endpoint" => a.second_endpoint = value()?,
            "--second-account" => a.second_account = value()?,
            "--second-key" => a.second_key = value()?,
            "--mib" => a.mib = value()?.parse().context("--mib")?,
            "--runs" => a.runs = value()?.parse().context("--runs")?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    anyhow::ensure!(!a.blob_endpoint.is_empty() && !a.second_endpoint.is_empty(), "both endpoints are needed");
    Ok(a)
}

/// `mib` MiB of incompressible bytes (xorshift), generated chunk by chunk, never held whole.
fn random_body(mib: u64) -> ByteStream {
    let stream = futures_util::stream::unfold((0u64, 0x9E37_79B9_7F4A_7C15u64), move |(i, mut x)| async move {
        if i == mib {
            return None;
        }
        let mut chunk = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.extend_from_slice(&x.to_le_bytes());
        }
        Some((Ok(Bytes::from(chunk)), (i + 1, x)))
    });
    Box::pin(stream)
}

fn store(
    endpoint: &str,
    container: &str,
    account: &str,
    key: &str,
    settings: &ClientSettings,
) -> anyhow::Result<Arc<BlobObjectStore>> {
    let auth = StorageAuth::SharedKey(SharedKeyCredential::new(account, key));
    Ok(Arc::new(BlobObjectStore::new(endpoint, container, &auth, settings)?))
}

/// Copies `KEY` with `copier`, waiting for a pending server-side copy; the time and the blob
/// bytes this process downloaded and uploaded meanwhile (counted on the wire by `http`).
async fn timed_copy(copier: &dyn ObjectCopier, size: u64, http: &CountingPolicy) -> anyhow::Result<(Duration, u64)> {
    let before = http.traffic();
    let started = Instant::now();
    let mut state = copier.start_copy(KEY).await?;
    while state == ObjectCopyState::Pending {
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = copier.inspect_target(KEY).await?.and_then(|t| t.copy).unwrap_or(ObjectCopyState::Pending);
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(state == ObjectCopyState::Succeeded, "copy ended {state:?}");
    let copied = copier.inspect_target(KEY).await?.context("the copy is missing")?;
    anyhow::ensure!(copied.fingerprint.size == size, "the copy has {} bytes, not {size}", copied.fingerprint.size);
    let after = http.traffic();
    Ok((elapsed, (after.downloaded - before.downloaded) + (after.uploaded - before.uploaded)))
}

fn run() -> anyhow::Result<()> {
    let a = args()?;
    let runtime = tokio::runtime::Runtime::new().context("start the runtime")?;
    runtime.block_on(async {
        let http = CountingPolicy::default();
        let settings = ClientSettings { policies: vec![Arc::new(http.clone())], ..ClientSettings::azurite() };
        let source = store(&a.blob_endpoint, "bench-source", AZURITE_ACCOUNT, AZURITE_KEY, &settings)?;
        let second = |container| store(&a.second_endpoint, container, &a.second_account, &a.second_key, &settings);
        let (server_target, stream_target) = (second("bench-server-side")?, second("bench-streamed")?);
        let size = a.mib * CHUNK as u64;
        let started = Instant::now();
        source.put(KEY, random_body(a.mib), PutOptions::default()).await.context("writing the source blob")?;
        eprintln!("source blob: {} MiB written in {:.1} s", a.mib, started.elapsed().as_secs_f64());
        let auth = StorageAuth::SharedKey(SharedKeyCredential::new(AZURITE_ACCOUNT, AZURITE_KEY));
        let server = BlobObjectCopier::new(source.clone(), &a.blob_endpoint, &auth, server_target, &settings)?;
        let streamed = StreamingObjectCopier::new(source.clone(), stream_target);
        let (mut server_times, mut stream_times) = (Vec::new(), Vec::new());
        let (mut server_traffic, mut stream_traffic) = (0, 0);
        for run in 0..a.runs {
            // Alternate which goes first, so neither always meets a warm (or tired) Azurite.
            for first in [run % 2 == 0, run % 2 != 0] {
                if first {
                    let (t, tr) = timed_copy(&server, size, &http).await.context("server-side copy")?;
                    server_times.push(t);
                    server_traffic = tr;
                } else {
                    let (t, tr) = timed_copy(&streamed, size, &http).await.context("download-and-upload copy")?;
                    stream_times.push(t);
                    stream_traffic = tr;
                }
            }
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v.get(v.len() / 2).copied().unwrap_or_default()
        };
        let (server, streamed) = (median(&mut server_times), median(&mut stream_times));
        let mib_s = |d: Duration| a.mib as f64 / d.as_secs_f64().max(1e-9);
        println!(
            "| copy of {} MiB, {} run(s), median | time | MiB/s | bytes through the process | ratio |",
            a.mib, a.runs
        );
        println!("|---|---:|---:|---:|---:|");
        println!(
            "| download and upload (baseline) | {:.2} s | {:.0} | {} | 1.00x |",
            streamed.as_secs_f64(),
            mib_s(streamed),
            stream_traffic
        );
        println!(
            "| server-side Copy Blob from URL | {:.2} s | {:.0} | {} | {:.2}x faster |",
            server.as_secs_f64(),
            mib_s(server),
            server_traffic,
            streamed.as_secs_f64() / server.as_secs_f64().max(1e-9)
        );
        println!(
            "\nAzurite copies a blob by reference (a new metadata record sharing the source's extents), \
             so its server-side time does not grow with the size; Azure copies the bytes itself, \
             asynchronously, while `copy` polls."
        );
        anyhow::ensure!(server_traffic == 0, "the server-side copy moved blob bytes through the process");
        Ok(())
    })
}

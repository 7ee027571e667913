//! Starts one binary, times it from `exec` to its first `200` on `GET /healthz`, reads its memory
//! from `/proc`, and stops it.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

/// Pause between probes: short enough for sub-millisecond resolution, long enough not to starve
/// the child of CPU on a two-core machine.
const POLL_INTERVAL: Duration = Duration::from_micros(100);
/// How long a binary may take to answer before the run counts as a harness failure.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to leave a binary idle before reading its resident memory.
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// Bound on a single probe's connect, write and read, so a wedged server cannot hang the harness.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/// A binary to measure.
#[derive(Debug)]
pub struct Target {
    pub label: &'static str,
    pub path: PathBuf,
    pub args: Vec<String>,
    /// Whether to point `LIFEBOAT_DATA` at a fresh directory for each start.
    pub fresh_data_dir: bool,
}

/// One start of one binary.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// From just before `exec` to the first `200` response.
    pub cold_start: Duration,
    /// `VmHWM` right after the first `200`.
    pub peak_rss_kib: u64,
    /// `VmRSS` after [`IDLE_WAIT`] with no requests.
    pub idle_rss_kib: u64,
}

/// Starts `target` once, with `scratch` (a fresh, empty directory) for its data and stderr.
///
/// # Errors
///
/// When the binary cannot be started, exits or does not answer `200` in time, or its `/proc`
/// status cannot be read. The error carries the tail of the binary's stderr.
pub fn measure(target: &Target, scratch: &Path) -> anyhow::Result<Sample> {
    let stderr_path = scratch.join("stderr.log");
    start_and_observe(target, scratch, &stderr_path).map_err(|error| {
        anyhow!("{} ({}): {error:#}{}", target.label, target.path.display(), stderr_tail(&stderr_path))
    })
}

fn start_and_observe(target: &Target, scratch: &Path, stderr_path: &Path) -> anyhow::Result<Sample> {
    let port = free_port()?;
    let stderr = File::create(stderr_path).with_context(|| format!("create {}", stderr_path.display()))?;
    let mut command = Command::new(&target.path);
    command
        .args(&target.args)
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if target.fresh_data_dir {
        let data = scratch.join("data");
        fs::create_dir(&data).with_context(|| format!("create {}", data.display()))?;
        command.env("LIFEBOAT_DATA", data);
    }

    let started = Instant::now();
    let mut child = KillOnDrop(command.spawn().context("start it")?);
    observe(&mut child.0, port, started)
}

fn observe(child: &mut Child, port: u16, started: Instant) -> anyhow::Result<Sample> {
    wait_for_ok(child, port, started)?;
    let cold_start = started.elapsed();
    let peak_rss_kib = proc_status_kib(child.id(), "VmHWM")?;
    thread::sleep(IDLE_WAIT);
    let idle_rss_kib = proc_status_kib(child.id(), "VmRSS")?;
    Ok(Sample { cold_start, peak_rss_kib, idle_rss_kib })
}

fn wait_for_ok(child: &mut Child, port: u16, started: Instant) -> anyhow::Result<()> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if probe(address) == Some(200) {
            return Ok(());
        }
        if let Some(status) = child.try_wait().context("poll the child's exit status")? {
            bail!("exited ({status}) before answering GET /healthz with 200");
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!("no 200 from GET /healthz on port {port} within {READY_TIMEOUT:?}");
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// One `GET /healthz` over a fresh connection: the status code, or `None` when the server is not
/// accepting or answering yet.
fn probe(address: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&address, IO_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
    stream.write_all(REQUEST).ok()?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0_u8; 64];
    while !head.contains(&b'\n') {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..n)?);
    }
    parse_status_code(&head)
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn parse_status_code(head: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(head.split(|b| *b == b'\n').next()?).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|version| version.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("bind an ephemeral port")?;
    Ok(listener.local_addr().context("read the ephemeral port")?.port())
}

/// A `kB` field (`VmHWM`, `VmRSS`) of `/proc/<pid>/status`, in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    parse_status_field(&status, field).with_context(|| format!("find {field} in {path}"))
}

fn parse_status_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

fn stderr_tail(path: &Path) -> String {
    const TAIL: usize = 2000;
    let text = fs::read_to_string(path).unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let start = text.char_indices().map(|(i, _)| i).find(|i| text.len() - i <= TAIL).unwrap_or(text.len());
    format!("\n--- its stderr ends with:\n{}", &text[start..])
}

/// Kills and reaps the child however `measure` ends, so a failed run leaves no process behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Either may fail only because the child already exited and was reaped: nothing to do.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_codes() {
        assert_eq!(parse_status_code(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"), Some(200));
        assert_eq!(parse_status_code(b"HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(parse_status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_code(b""), None);
    }

    #[test]
    fn reads_proc_status_fields() {
        let status = "Name:\tminimal-axum\nVmHWM:\t    4321 kB\nVmRSS:\t    4000 kB\n";
        assert_eq!(parse_status_field(status, "VmHWM"), Some(4321));
        assert_eq!(parse_status_field(status, "VmRSS"), Some(4000));
        assert_eq!(parse_status_field(status, "VmSwap"), None);
    }
}

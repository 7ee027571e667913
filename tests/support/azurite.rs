//! Azurite for one test: started on free ports with in-memory storage, stopped when dropped.
//!
//! Each test that needs Azurite starts its own (about a second), so tests stay independent and
//! run from a clean clone with `bash scripts/test.sh` (which installs Azurite through
//! `scripts/setup.sh`). Azurite runs under a small shell watchdog that reads the test's pipe:
//! when the test process ends, even killed, the pipe closes and the watchdog stops Azurite, so
//! nothing is left behind.
//!
//! When Azurite is not installed, tests skip with a printed reason, unless `CI=true` or
//! `LIFEBOAT_REQUIRE_AZURITE=1`: then they fail.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Azurite's development account (its key is public).
pub use lifeboat_shared::adapters::azure::{AZURITE_ACCOUNT, AZURITE_KEY};

/// A second account, as a second region's storage for cross-region tests.
pub const SECOND_ACCOUNT: &str = "lifeboatdr";
/// The second account's key (test-only, made up).
pub const SECOND_KEY: &str = "bGlmZWJvYXQtc2Vjb25kLXJlZ2lvbi10ZXN0LWtleS1ub3QtYS1zZWNyZXQ=";

/// Runs Azurite (`$1` and the rest: its command line) until standard input closes (the test
/// process ended or dropped its handle); exits when Azurite does.
const WATCHDOG: &str = r#"exec 3<&0
"$@" <&- & child=$!
{ read -r _ <&3; kill "$child" 2>/dev/null; } &
wait "$child""#;

/// A running Azurite.
pub struct Azurite {
    watchdog: Child,
    blob_port: u16,
    table_port: u16,
    dir: tempfile::TempDir,
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("LIFEBOAT_REQUIRE_AZURITE").is_ok_and(|v| v == "1" || v == "true")
}

/// Where Azurite is: `AZURITE_BIN`, or the copy `scripts/setup.sh` installs in `tools/azurite`.
fn binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("AZURITE_BIN") {
        return Some(PathBuf::from(path));
    }
    let installed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/azurite/node_modules/.bin/azurite");
    installed.exists().then_some(installed)
}

fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> =
        (0..N).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port")).collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local address").port())
}

impl Azurite {
    /// Starts Azurite with the development account and [`SECOND_ACCOUNT`]; `None` (after
    /// printing why) when it is not installed and not required.
    ///
    /// # Panics
    /// When Azurite is required but missing, or does not come up.
    pub fn start() -> Option<Self> {
        let Some(bin) = binary() else {
            let why = "Azurite is not installed (run `bash scripts/setup.sh`, or set AZURITE_BIN)";
            assert!(!required(), "{why}, and CI=true or LIFEBOAT_REQUIRE_AZURITE=1 requires it");
            eprintln!("skipped: {why}");
            return None;
        };
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&bin) {
                Ok(azurite) => return Some(azurite),
                Err(e) => last_error = e,
            }
        }
        panic!("Azurite ({}) did not start: {last_error}", bin.display());
    }

    fn try_start(bin: &PathBuf) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let [blob_port, queue_port, table_port] = free_ports::<3>();
        let log = std::fs::File::create(dir.path().join("azurite.log")).map_err(|e| e.to_string())?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "sh"])
            .arg(bin)
            .args(["--blobPort", &blob_port.to_string(), "--queuePort", &queue_port.to_string()])
            .args(["--tablePort", &table_port.to_string()])
            .args(["--inMemoryPersistence", "--disableTelemetry", "--silent"])
            .env("AZURITE_ACCOUNTS", format!("{AZURITE_ACCOUNT}:{AZURITE_KEY};{SECOND_ACCOUNT}:{SECOND_KEY}"))
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawning sh: {e}"))?;
        let mut azurite = Self { watchdog, blob_port, table_port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = |port| TcpStream::connect(("127.0.0.1", port)).is_ok();
            if up(blob_port) && up(table_port) {
                return Ok(azurite);
            }
            if Instant::now() > deadline || azurite.watchdog.try_wait().ok().flatten().is_some() {
                let log = std::fs::read_to_string(azurite.dir.path().join("azurite.log")).unwrap_or_default();
                return Err(format!("not listening on {blob_port}/{table_port}; its output:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The Blob endpoint of `account` (path style, no trailing slash).
    pub fn blob_endpoint(&self, account: &str) -> String {
        format!("http://127.0.0.1:{}/{account}", self.blob_port)
    }

    /// The Table endpoint of `account`.
    pub fn table_endpoint(&self, account: &str) -> String {
        format!("http://127.0.0.1:{}/{account}", self.table_port)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        // Closing the pipe tells the watchdog to stop Azurite; give it a moment, then insist.
        if let Some(mut stdin) = self.watchdog.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.watchdog.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

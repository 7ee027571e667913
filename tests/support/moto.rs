//! moto's server (an AWS emulator) for one test process: started on a free port, stopped when
//! dropped.
//!
//! Like Azurite (see azurite.rs), moto runs under a shell watchdog reading the test's pipe, so it
//! stops even when the test process is killed. `scripts/setup.sh` installs it into `tools/moto`.
//! When moto is not installed, tests skip with a printed reason, unless `CI=true` or
//! `LIFEBOAT_REQUIRE_MOTO=1`: then they fail.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lifeboat_shared::adapters::aws::AwsCredentials;

/// The region the tests use.
pub const REGION: &str = "eu-west-1";
/// moto's default account, which appears in its queue URLs.
pub const ACCOUNT: &str = "123456789012";

/// Runs moto (`$1` and the rest) until standard input closes; exits when moto does.
const WATCHDOG: &str = r#"exec 3<&0
"$@" <&- & child=$!
{ read -r _ <&3; kill "$child" 2>/dev/null; } &
wait "$child""#;

/// A running moto server.
pub struct Moto {
    watchdog: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("LIFEBOAT_REQUIRE_MOTO").is_ok_and(|v| v == "1" || v == "true")
}

/// Where moto is: `MOTO_SERVER_BIN`, or the copy `scripts/setup.sh` installs in `tools/moto`.
fn binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("MOTO_SERVER_BIN") {
        return Some(PathBuf::from(path));
    }
    let installed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/moto/bin/moto_server");
    installed.exists().then_some(installed)
}

impl Moto {
    /// Starts moto; `None` (after printing why) when it is not installed and not required.
    ///
    /// # Panics
    /// When moto is required but missing, or does not come up.
    pub fn start() -> Option<Self> {
        let Some(bin) = binary() else {
            let why = "moto is not installed (run `bash scripts/setup.sh`, or set MOTO_SERVER_BIN)";
            assert!(!required(), "{why}, and CI=true or LIFEBOAT_REQUIRE_MOTO=1 requires it");
            eprintln!("skipped: {why}");
            return None;
        };
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&bin) {
                Ok(moto) => return Some(moto),
                Err(e) => last_error = e,
            }
        }
        panic!("moto ({}) did not start: {last_error}", bin.display());
    }

    fn try_start(bin: &PathBuf) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let log = std::fs::File::create(dir.path().join("moto.log")).map_err(|e| e.to_string())?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "sh"])
            .arg(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawning sh: {e}"))?;
        let mut moto = Self { watchdog, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(moto);
            }
            if Instant::now() > deadline || moto.watchdog.try_wait().ok().flatten().is_some() {
                let log = std::fs::read_to_string(moto.dir.path().join("moto.log")).unwrap_or_default();
                return Err(format!("not listening on {port}; its output:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The endpoint of every service (moto serves them all on one port).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The prefix of this server's queue URLs, e.g. for `lifeboat-<queue>`.
    pub fn queue_url_prefix(&self, name_prefix: &str) -> String {
        format!("{}/{ACCOUNT}/{name_prefix}", self.endpoint())
    }

    /// Credentials moto accepts (any will do).
    pub fn credentials() -> AwsCredentials {
        AwsCredentials::new("AKIAMOTOTESTING", "moto-test-secret")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Closing the pipe tells the watchdog to stop moto; give it a moment, then insist.
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

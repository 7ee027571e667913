//! One emulator process (Azurite, moto) for one test: found, started on free ports, awaited
//! until it answers, stopped when dropped.
//!
//! The emulator runs under a small shell watchdog that reads the test's pipe: when the test
//! process ends, even killed, the pipe closes and the watchdog stops the emulator, so nothing is
//! left behind.
//!
//! When the emulator is not installed, tests skip with a printed reason, unless `CI=true` or the
//! tool's own switch (e.g. `LIFEBOAT_REQUIRE_AZURITE=1`) is set: then they fail.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the emulator (`$1` and the rest: its command line) until standard input closes (the
/// test process ended or dropped its handle); exits when the emulator does.
const WATCHDOG: &str = r#"exec 3<&0
"$@" <&- & child=$!
{ read -r _ <&3; kill "$child" 2>/dev/null; } &
wait "$child""#;

/// How to find an emulator, and whether it may be missing.
pub struct Tool {
    /// Its name in messages (`Azurite`); lowercased, its log file's (`azurite.log`).
    pub name: &'static str,
    /// The variable that names its binary (`AZURITE_BIN`).
    pub bin_var: &'static str,
    /// Where `scripts/setup.sh` installs it, relative to the repository's root.
    pub installed: &'static str,
    /// The variable that, set to `1` or `true` like `CI`, makes a missing tool fail the test.
    pub require_var: &'static str,
}

/// A running emulator; stopped when dropped.
pub struct Emulator {
    watchdog: Child,
    dir: tempfile::TempDir,
}

impl Tool {
    fn required(&self) -> bool {
        std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
            || std::env::var(self.require_var).is_ok_and(|v| v == "1" || v == "true")
    }

    /// The binary: the one `bin_var` names, or the installed copy.
    fn binary(&self) -> Option<PathBuf> {
        if let Ok(path) = std::env::var(self.bin_var) {
            return Some(PathBuf::from(path));
        }
        let installed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(self.installed);
        installed.exists().then_some(installed)
    }

    fn log_file(&self) -> String {
        format!("{}.log", self.name.to_lowercase())
    }

    /// Starts the tool on `N` free ports: `command` adds its arguments for those ports and says
    /// which of them must answer before it counts as up. `None` (after printing why) when the
    /// tool is not installed and not required.
    ///
    /// # Panics
    /// When the tool is required but missing, or does not come up in three tries.
    pub fn start<const N: usize>(
        &self,
        command: impl Fn(&mut Command, [u16; N]) -> Vec<u16>,
    ) -> Option<(Emulator, [u16; N])> {
        let Some(bin) = self.binary() else {
            let why = format!("{} is not installed (run `bash scripts/setup.sh`, or set {})", self.name, self.bin_var);
            assert!(!self.required(), "{why}, and CI=true or {}=1 requires it", self.require_var);
            eprintln!("skipped: {why}");
            return None;
        };
        let mut last_error = String::new();
        for _ in 0..3 {
            match self.try_start(&bin, &command) {
                Ok(started) => return Some(started),
                Err(e) => last_error = e,
            }
        }
        panic!("{} ({}) did not start: {last_error}", self.name, bin.display());
    }

    fn try_start<const N: usize>(
        &self,
        bin: &Path,
        command: &impl Fn(&mut Command, [u16; N]) -> Vec<u16>,
    ) -> Result<(Emulator, [u16; N]), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let ports = free_ports::<N>()?;
        let log = std::fs::File::create(dir.path().join(self.log_file())).map_err(|e| e.to_string())?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let mut watchdog = Command::new("sh");
        watchdog.args(["-c", WATCHDOG, "sh"]).arg(bin);
        let answering = command(&mut watchdog, ports);
        let watchdog = watchdog
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawning sh: {e}"))?;
        let mut emulator = Emulator { watchdog, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if answering.iter().all(|&port| TcpStream::connect(("127.0.0.1", port)).is_ok()) {
                return Ok((emulator, ports));
            }
            if Instant::now() > deadline || emulator.watchdog.try_wait().ok().flatten().is_some() {
                let log = std::fs::read_to_string(emulator.dir.path().join(self.log_file())).unwrap_or_default();
                let ports: Vec<String> = answering.iter().map(u16::to_string).collect();
                return Err(format!("not listening on {}; its output:\n{log}", ports.join("/")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `N` distinct free ports (all held open together while they are picked).
fn free_ports<const N: usize>() -> Result<[u16; N], String> {
    let mut ports = [0; N];
    let mut listeners = Vec::with_capacity(N);
    for port in &mut ports {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
        *port = listener.local_addr().map_err(|e| format!("finding a free port: {e}"))?.port();
        listeners.push(listener);
    }
    Ok(ports)
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Closing the pipe tells the watchdog to stop the emulator; give it a moment, then insist.
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

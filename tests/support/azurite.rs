//! Azurite for one test: started on free ports with in-memory storage, stopped when dropped.
//!
//! Each test that needs Azurite starts its own (about a second), so tests stay independent and
//! run from a clean clone with `bash scripts/test.sh` (which installs Azurite through
//! `scripts/setup.sh`). It runs under the watchdog of [`super::emulator`], so nothing is left
//! behind even when the test process is killed.
//!
//! When Azurite is not installed, tests skip with a printed reason, unless `CI=true` or
//! `LIFEBOAT_REQUIRE_AZURITE=1`: then they fail.

use super::emulator::{Emulator, Tool};

/// Azurite's development account (its key is public).
pub use lifeboat_shared::adapters::azure::{AZURITE_ACCOUNT, AZURITE_KEY};

/// A second account, as a second region's storage for cross-region tests.
pub const SECOND_ACCOUNT: &str = "lifeboatdr";
/// The second account's key (test-only, made up).
pub const SECOND_KEY: &str = "bGlmZWJvYXQtc2Vjb25kLXJlZ2lvbi10ZXN0LWtleS1ub3QtYS1zZWNyZXQ=";

/// Where Azurite is: `AZURITE_BIN`, or the copy `scripts/setup.sh` installs in `tools/azurite`.
const AZURITE: Tool = Tool {
    name: "Azurite",
    bin_var: "AZURITE_BIN",
    installed: "tools/azurite/node_modules/.bin/azurite",
    require_var: "LIFEBOAT_REQUIRE_AZURITE",
};

/// A running Azurite.
pub struct Azurite {
    _process: Emulator,
    blob_port: u16,
    table_port: u16,
}

impl Azurite {
    /// Starts Azurite with the development account and [`SECOND_ACCOUNT`]; `None` (after
    /// printing why) when it is not installed and not required.
    ///
    /// # Panics
    /// When Azurite is required but missing, or does not come up.
    pub fn start() -> Option<Self> {
        let (process, [blob_port, _, table_port]) = AZURITE.start(|command, [blob, queue, table]| {
            command
                .args(["--blobPort", &blob.to_string(), "--queuePort", &queue.to_string()])
                .args(["--tablePort", &table.to_string()])
                .args(["--inMemoryPersistence", "--disableTelemetry", "--silent"])
                .env("AZURITE_ACCOUNTS", format!("{AZURITE_ACCOUNT}:{AZURITE_KEY};{SECOND_ACCOUNT}:{SECOND_KEY}"));
            vec![blob, table]
        })?;
        Some(Self { _process: process, blob_port, table_port })
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

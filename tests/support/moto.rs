//! moto's server (an AWS emulator) for one test process: started on a free port, stopped when
//! dropped.
//!
//! Like Azurite, moto runs under the watchdog of [`super::emulator`], so it stops even when the
//! test process is killed. `scripts/setup.sh` installs it into `tools/moto`. When moto is not
//! installed, tests skip with a printed reason, unless `CI=true` or `LIFEBOAT_REQUIRE_MOTO=1`:
//! then they fail.

use lifeboat_shared::adapters::aws::AwsCredentials;

use super::emulator::{Emulator, Tool};

/// The region the tests use.
pub const REGION: &str = "eu-west-1";
/// moto's default account, which appears in its queue URLs.
pub const ACCOUNT: &str = "123456789012";

/// Where moto is: `MOTO_SERVER_BIN`, or the copy `scripts/setup.sh` installs in `tools/moto`.
const MOTO: Tool = Tool {
    name: "moto",
    bin_var: "MOTO_SERVER_BIN",
    installed: "tools/moto/bin/moto_server",
    require_var: "LIFEBOAT_REQUIRE_MOTO",
};

/// A running moto server.
pub struct Moto {
    _process: Emulator,
    port: u16,
}

impl Moto {
    /// Starts moto; `None` (after printing why) when it is not installed and not required.
    ///
    /// # Panics
    /// When moto is required but missing, or does not come up.
    pub fn start() -> Option<Self> {
        let (process, [port]) = MOTO.start(|command, [port]| {
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            vec![port]
        })?;
        Some(Self { _process: process, port })
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

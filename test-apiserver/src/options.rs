//! Server options and the `/version` document.

use std::time::Duration;

use serde_json::json;

/// Server options. `Options::default()` suits tests.
#[derive(Debug, Clone)]
pub struct Options {
    /// The bearer token clients must send (`None`: a random one).
    pub token: Option<String>,
    /// How long the simulated CSI driver takes to cut a snapshot.
    pub snapshot_delay: Duration,
    /// How long the simulated CSI provisioner takes to create a volume for a claim (empty, or
    /// restored from a snapshot).
    pub volume_provision_delay: Duration,
    /// How long a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet) takes from a new
    /// generation to all replicas ready.
    pub workload_ready_delay: Duration,
    /// Run the simulated workload controllers (status of Deployments, StatefulSets, DaemonSets and
    /// ReplicaSets). Off for tests that write those statuses themselves.
    pub simulate_workloads: bool,
    /// How long a new CRD takes to become `Established`.
    pub crd_establish_delay: Duration,
    /// How long a deleted namespace stays `Terminating` before its contents are removed.
    pub namespace_finalize_delay: Duration,
    /// How often a watch with `allowWatchBookmarks` gets a `BOOKMARK`.
    pub bookmark_interval: Duration,
    /// How many changes are kept for old lists, continue tokens and watches (older: 410 Gone).
    pub history: usize,
    /// The Kubernetes version reported by `/version` (`v1.33.5`).
    pub git_version: String,
    /// Serve HTTPS with a self-signed certificate (needs the `tls` feature). kubectl sends
    /// bearer tokens only over TLS; `kube` sends them over plain HTTP too.
    pub tls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            token: None,
            snapshot_delay: Duration::from_millis(200),
            volume_provision_delay: Duration::from_millis(100),
            workload_ready_delay: Duration::from_millis(200),
            simulate_workloads: true,
            crd_establish_delay: Duration::from_millis(20),
            namespace_finalize_delay: Duration::from_millis(50),
            bookmark_interval: Duration::from_secs(5),
            history: 10_000,
            git_version: "v1.33.5".into(),
            tls: false,
        }
    }
}

pub(crate) fn version_info(git_version: &str) -> serde_json::Value {
    let v = git_version.trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("33");
    json!({
        "major": major, "minor": minor, "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-09-01T00:00:00Z", "goVersion": "go1.24.6", "compiler": "gc", "platform": "linux/amd64",
    })
}

//! The demo of `lifeboat up --demo`: a Kubernetes API server in this process (the strict test
//! server, over HTTPS so kubectl works too), seeded with a sample application, and a policy
//! generated here that backs up every namespace but the system ones twice a minute.
//!
//! The cluster lives in memory and is gone when the process stops; the backups of it stay in
//! the data directory like any other.

use std::path::{Path, PathBuf};

use anyhow::Context;
use lifeboat_shared::domain::policy::Config;
use lifeboat_test_apiserver::{Options, Running, SampleApp, TestApiServer};

/// The demo cluster's name in the catalog.
pub const CLUSTER: &str = "demo";
/// The demo policy's name.
pub const POLICY: &str = "demo";
/// The demo policy's schedule (six-field NCRONTAB): every 30 seconds.
pub const SCHEDULE: &str = "*/30 * * * * *";
/// The namespace of the sample application.
pub const SAMPLE_NAMESPACE: &str = "shop";
/// Namespaces the demo policy leaves out.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];
/// How often `schedule_tick` runs in the demo unless `--timer` says otherwise, so the policy's
/// slots are taken when they come rather than every five minutes.
pub const TICK: &str = "*/10 * * * * *";

/// A running demo cluster and the configuration that protects it.
pub struct Demo {
    /// The API server; dropping it stops the cluster.
    pub server: Running,
    /// The kubeconfig written for it (the data directory's `demo/kubeconfig`).
    pub kubeconfig: PathBuf,
    /// The sample application.
    pub sample: SampleApp,
    /// The demo cluster and policy.
    pub config: Config,
    /// A copy of them as YAML (the data directory's `demo/lifeboat.yaml`), to read and to give
    /// to `lifeboat backup now --config`.
    pub config_file: PathBuf,
}

/// Where the demo's kubeconfig goes under the data directory.
pub fn kubeconfig_path(data: &Path) -> PathBuf {
    data.join("demo").join("kubeconfig")
}

/// Where the copy of the demo's configuration goes under the data directory.
pub fn config_path(data: &Path) -> PathBuf {
    data.join("demo").join("lifeboat.yaml")
}

/// Starts the demo cluster, seeds it, writes its kubeconfig under `data` and builds the
/// configuration that protects it.
///
/// # Errors
/// When the server cannot start or be seeded, or the kubeconfig cannot be written.
pub async fn start(data: &Path) -> anyhow::Result<Demo> {
    let server =
        TestApiServer::start(Options { tls: true, ..Options::default() }).await.context("starting the demo cluster")?;
    server.seed_snapshot_crds().await.context("installing the VolumeSnapshot CRDs in the demo cluster")?;
    let sample = server.seed_sample_app(SAMPLE_NAMESPACE).await.context("seeding the sample application")?;
    let kubeconfig = kubeconfig_path(data);
    if let Some(dir) = kubeconfig.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    server.write_kubeconfig(&kubeconfig).context("writing the demo kubeconfig")?;
    let config = config(&kubeconfig)?;
    let config_file = config_path(data);
    std::fs::write(&config_file, config_yaml(&kubeconfig))
        .with_context(|| format!("writing the demo configuration to {}", config_file.display()))?;
    Ok(Demo { server, kubeconfig, sample, config, config_file })
}

/// The demo cluster (reached through `kubeconfig`) and its policy, as YAML documents.
pub fn config_yaml(kubeconfig: &Path) -> String {
    // A JSON string is a YAML string: any path is quoted correctly.
    let path = serde_json::Value::String(kubeconfig.display().to_string());
    let excluded = SYSTEM_NAMESPACES.join(", ");
    format!(
        r#"apiVersion: lifeboat.io/v1alpha1
kind: Cluster
metadata: {{ name: {CLUSTER} }}
spec: {{ region: local, kubeconfig: {{ path: {path} }} }}
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{ name: {POLICY} }}
spec:
  clusters: [{CLUSTER}]
  schedule: "{SCHEDULE}"
  catchUp: latest
  rpo: 5m
  selection: {{ excludeNamespaces: [{excluded}] }}
  retention: {{ keepLast: 20 }}
  # Restores back into the demo cluster: any namespace but the system ones, and the
  # cluster-scoped objects a namespace needs (try `lifeboat restore submit --dry-run`).
  restores:
  - {{ clusters: [{CLUSTER}], namespaces: ["*"], excludeNamespaces: [{excluded}], clusterScoped: true }}
"#
    )
}

/// [`config_yaml`], parsed and validated like a user's files.
///
/// # Errors
/// Only if the generated documents are invalid (a bug), with every problem named.
pub fn config(kubeconfig: &Path) -> anyhow::Result<Config> {
    let yaml = config_yaml(kubeconfig);
    Config::from_sources([("demo policy (generated)", yaml.as_str())]).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the generated demo policy is invalid:\n{}", lines.join("\n"))
    })
}

/// Quotes `s` for a POSIX shell when it needs it, so a printed command can be pasted.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain { s.to_owned() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_policy_protects_every_namespace_but_the_system_ones() {
        let config = config(Path::new("/tmp/it's here/kubeconfig")).unwrap();
        let targets = config.targets();
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].key(), "demo.demo");
        let yaml = config_yaml(Path::new("/d/kubeconfig"));
        assert!(yaml.contains("excludeNamespaces: [kube-system, kube-public, kube-node-lease]"), "{yaml}");
        assert!(yaml.contains("catchUp: latest"), "{yaml}");
    }

    #[test]
    fn the_schedules_fire_within_a_minute() {
        for s in [SCHEDULE, TICK] {
            let period = crate::cli::schedule_period(s).unwrap();
            assert!(period <= chrono::Duration::seconds(30), "{s}: {period}");
        }
    }

    #[test]
    fn paths_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(shell_quote("/data/demo/kubeconfig"), "/data/demo/kubeconfig");
        assert_eq!(shell_quote("/my data/k"), "'/my data/k'");
        assert_eq!(shell_quote("/it's"), r"'/it'\''s'");
    }
}

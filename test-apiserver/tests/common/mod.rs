//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use lifeboat_test_apiserver::{Options, Running, TestApiServer};

/// Options tuned for fast tests.
pub fn fast_options() -> Options {
    Options {
        snapshot_delay: Duration::from_millis(50),
        volume_provision_delay: Duration::from_millis(30),
        workload_ready_delay: Duration::from_millis(50),
        crd_establish_delay: Duration::from_millis(10),
        namespace_finalize_delay: Duration::from_millis(20),
        bookmark_interval: Duration::from_millis(200),
        ..Options::default()
    }
}

/// A server and a `kube` client configured from the kubeconfig it writes.
pub async fn start() -> anyhow::Result<(Running, kube::Client, tempfile::TempDir)> {
    start_with(fast_options()).await
}

/// As [`start`], with options.
pub async fn start_with(options: Options) -> anyhow::Result<(Running, kube::Client, tempfile::TempDir)> {
    let server = TestApiServer::start(options).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path)?;
    let client = client_from(&path, true).await?;
    Ok((server, client, dir))
}

/// A client for the kubeconfig at `path`; `retry` keeps kube's default retries on 429/503/504.
pub async fn client_from(path: &std::path::Path, retry: bool) -> anyhow::Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(path)?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    config.default_retry = retry;
    Ok(kube::Client::try_from(config)?)
}

/// The API error inside a kube error, or a panic describing what came instead.
pub fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

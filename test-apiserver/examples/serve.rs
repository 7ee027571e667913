//! Runs the test API server with the sample application until Ctrl-C, writing a kubeconfig.
//!
//! `cargo run -p lifeboat-test-apiserver --example serve -- /tmp/kubeconfig`

use lifeboat_test_apiserver::{Options, TestApiServer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "kubeconfig".into());
    let server = TestApiServer::start(Options { tls: true, ..Options::default() }).await?;
    let app = server.seed_sample_app("shop").await?;
    server.write_kubeconfig(std::path::Path::new(&path))?;
    println!("serving {} ({} objects in {}); kubeconfig at {path}", server.url(), app.objects, app.namespace);
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}

//! Starting and stopping the server: options, the accept loop (hyper HTTP/1.1 on 127.0.0.1,
//! with fault injection before routing), the running handle and its kubeconfig.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::controllers;
use crate::faults::{Fault, Faults};
use crate::router::{AppState, router};
use crate::status::ApiError;
use crate::storage::Storage;
use crate::store::Store;

/// Server options. `Options::default()` suits tests.
#[derive(Debug, Clone)]
pub struct Options {
    /// The bearer token clients must send (`None`: a random one).
    pub token: Option<String>,
    /// How long the simulated CSI driver takes to cut a snapshot.
    pub snapshot_delay: Duration,
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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            token: None,
            snapshot_delay: Duration::from_millis(200),
            crd_establish_delay: Duration::from_millis(20),
            namespace_finalize_delay: Duration::from_millis(50),
            bookmark_interval: Duration::from_secs(5),
            history: 10_000,
            git_version: "v1.33.5".into(),
        }
    }
}

/// Failure to start the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Binding 127.0.0.1:0 failed.
    #[error("failed to bind the listener on 127.0.0.1")]
    Bind(#[source] std::io::Error),
}

/// Failure to write a kubeconfig.
#[derive(Debug, thiserror::Error)]
#[error("failed to write the kubeconfig to {path}")]
pub struct KubeconfigError {
    /// Where it was to be written.
    pub path: String,
    /// Why it failed.
    #[source]
    pub source: std::io::Error,
}

/// Entry point: `TestApiServer::start(Options::default()).await`.
pub struct TestApiServer;

/// A running server. Dropping it stops accepting connections; `shutdown` also waits.
pub struct Running {
    addr: SocketAddr,
    token: String,
    store: Store,
    faults: Faults,
    options: Options,
    shutdown: watch::Sender<bool>,
    tasks: Option<tokio::task::JoinHandle<()>>,
}

fn version_info(git_version: &str) -> serde_json::Value {
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

impl TestApiServer {
    /// Starts a server on 127.0.0.1 with an ephemeral port, with its controllers (CRD
    /// establishment, namespace termination, garbage collection, CSI snapshots).
    ///
    /// # Errors
    /// [`StartError::Bind`] when no port can be bound.
    pub async fn start(options: Options) -> Result<Running, StartError> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(StartError::Bind)?;
        let addr = listener.local_addr().map_err(StartError::Bind)?;
        let token = options.token.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let store = Store::new(Storage::new(options.history, 1000));
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let _ = store.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        }
        let faults = Faults::default();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = Arc::new(AppState {
            store: store.clone(),
            faults: faults.clone(),
            token: token.clone(),
            version: version_info(&options.git_version),
            server_version: options.git_version.clone(),
            address: addr.to_string(),
            bookmark_interval: options.bookmark_interval,
            shutdown: shutdown_rx.clone(),
        });
        let controllers = controllers::spawn(store.clone(), options.clone(), shutdown_rx.clone());
        let accept = tokio::spawn(accept_loop(listener, state, shutdown_rx));
        let tasks = tokio::spawn(async move {
            let _ = accept.await;
            let _ = controllers.await;
        });
        tracing::info!(k8s.api = %addr, "test API server started");
        Ok(Running { addr, token, store, faults, options, shutdown, tasks: Some(tasks) })
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let app = router(state.clone());
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (app, faults) = (app.clone(), state.faults.clone());
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let (app, faults) = (app.clone(), faults.clone());
            async move {
                match faults.take(req.method().as_str(), req.uri().path()) {
                    Some(Fault::DropConnection) => return Err(std::io::Error::other("injected: drop connection")),
                    Some(Fault::TooManyRequests { retry_after_seconds }) => {
                        return Ok(axum::response::IntoResponse::into_response(ApiError::too_many_requests(
                            retry_after_seconds,
                        )));
                    }
                    Some(Fault::InternalError) => {
                        return Ok(axum::response::IntoResponse::into_response(ApiError::internal(
                            "injected fault: internal error",
                        )));
                    }
                    Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
                    None => {}
                }
                Ok(app.oneshot(req.map(axum::body::Body::new)).await.unwrap_or_else(|e| match e {}))
            }
        });
        conns.spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
        while conns.try_join_next().is_some() {}
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

impl Running {
    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token clients must send.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The options the server runs with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Direct access to the objects, without HTTP, auth or faults.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The fault injector.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// A kubeconfig (cluster `lifeboat-test`, user with the bearer token, default namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: lifeboat-test\n  cluster:\n    server: {url}\ncontexts:\n- name: lifeboat-test\n  context:\n    cluster: lifeboat-test\n    user: lifeboat-test\n    namespace: default\ncurrent-context: lifeboat-test\nusers:\n- name: lifeboat-test\n  user:\n    token: {token}\npreferences: {{}}\n",
            url = self.url(),
            token = self.token
        )
    }

    /// Writes [`Running::kubeconfig_yaml`] to `path`.
    ///
    /// # Errors
    /// [`KubeconfigError`] when the file cannot be written.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), KubeconfigError> {
        std::fs::write(path, self.kubeconfig_yaml())
            .map_err(|source| KubeconfigError { path: path.display().to_string(), source })
    }

    /// Stops accepting, closes open connections and watches, stops the controllers, and waits.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.tasks.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

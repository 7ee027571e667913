//! Starting and stopping the server: options, the accept loop (hyper HTTP/1.1 on 127.0.0.1,
//! with fault injection before routing), the running handle and its kubeconfig.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::controllers;
use crate::exec::Execs;
use crate::faults::{Fault, Faults};
pub use crate::options::Options;
use crate::options::version_info;
use crate::router::{AppState, router};
use crate::status::ApiError;
use crate::storage::Storage;
use crate::store::Store;

/// Failure to start the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Binding 127.0.0.1:0 failed.
    #[error("failed to bind the listener on 127.0.0.1")]
    Bind(#[source] std::io::Error),
    /// TLS was asked for but could not be set up.
    #[cfg(feature = "tls")]
    #[error("failed to set up TLS")]
    Tls(#[source] crate::tls::TlsError),
    /// TLS was asked for but the crate was built without the `tls` feature.
    #[error("TLS was requested but the `tls` feature is off")]
    TlsUnavailable,
}

#[cfg(feature = "tls")]
type Acceptor = tokio_rustls::TlsAcceptor;
#[cfg(not(feature = "tls"))]
type Acceptor = std::convert::Infallible;

fn setup_tls(enabled: bool) -> Result<(Option<Acceptor>, Option<String>), StartError> {
    if !enabled {
        return Ok((None, None));
    }
    #[cfg(feature = "tls")]
    {
        let tls = crate::tls::generate().map_err(StartError::Tls)?;
        Ok((Some(tls.acceptor), Some(tls.cert_pem)))
    }
    #[cfg(not(feature = "tls"))]
    Err(StartError::TlsUnavailable)
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
    execs: Execs,
    options: Options,
    ca_pem: Option<String>,
    shutdown: watch::Sender<bool>,
    tasks: Option<tokio::task::JoinHandle<()>>,
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
        let (acceptor, ca_pem) = setup_tls(options.tls)?;
        let token = options.token.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let store = Store::new(Storage::new(options.history, 1000));
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let _ = store.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        }
        let faults = Faults::default();
        let execs = Execs::default();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = Arc::new(AppState {
            store: store.clone(),
            faults: faults.clone(),
            execs: execs.clone(),
            token: token.clone(),
            version: version_info(&options.git_version),
            server_version: options.git_version.clone(),
            address: addr.to_string(),
            bookmark_interval: options.bookmark_interval,
            shutdown: shutdown_rx.clone(),
        });
        let controllers = controllers::spawn(store.clone(), options.clone(), shutdown_rx.clone());
        let accept = tokio::spawn(accept_loop(listener, acceptor, state, shutdown_rx));
        let tasks = tokio::spawn(async move {
            let _ = accept.await;
            let _ = controllers.await;
        });
        tracing::info!(k8s.api = %addr, "test API server started");
        Ok(Running { addr, token, store, faults, execs, options, ca_pem, shutdown, tasks: Some(tasks) })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<Acceptor>,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
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
        #[cfg_attr(not(feature = "tls"), allow(clippy::clone_on_copy))]
        let acceptor = acceptor.clone();
        conns.spawn(async move {
            let http = hyper::server::conn::http1::Builder::new();
            match acceptor {
                #[cfg(feature = "tls")]
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = http.serve_connection(TokioIo::new(tls), svc).with_upgrades().await;
                    }
                }
                #[cfg(not(feature = "tls"))]
                Some(never) => match never {},
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), svc).with_upgrades().await;
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

impl Running {
    /// The base URL, `http://127.0.0.1:<port>` (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The server certificate in PEM, which clients must trust, when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
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

    /// The `pods/exec` responder and the record of every exec.
    pub fn execs(&self) -> &Execs {
        &self.execs
    }

    /// A kubeconfig (cluster `lifeboat-test`, user with the bearer token, default namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: lifeboat-test\n  cluster:\n    server: {url}\n{ca}contexts:\n- name: lifeboat-test\n  context:\n    cluster: lifeboat-test\n    user: lifeboat-test\n    namespace: default\ncurrent-context: lifeboat-test\nusers:\n- name: lifeboat-test\n  user:\n    token: {token}\npreferences: {{}}\n",
            url = self.url(),
            token = self.token,
            ca = self.ca_data_line()
        )
    }

    fn ca_data_line(&self) -> String {
        #[cfg(feature = "tls")]
        if let Some(pem) = &self.ca_pem {
            return format!("    certificate-authority-data: {}\n", crate::tls::base64(pem.as_bytes()));
        }
        String::new()
    }

    /// Writes [`Running::kubeconfig_yaml`] to `path`.
    ///
    /// # Errors
    /// [`KubeconfigError`] when the file cannot be written.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), KubeconfigError> {
        let fail = |source| KubeconfigError { path: path.display().to_string(), source };
        // It holds the bearer token: readable by its owner only, as kubectl writes its own.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(fail)?;
        std::io::Write::write_all(&mut file, self.kubeconfig_yaml().as_bytes()).map_err(fail)
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

//! Cluster port: what Lifeboat reads from and writes to a Kubernetes API server.
//!
//! Objects travel as JSON values exactly as the API server serves them, so the archive holds
//! what the cluster had, field for field. Contract:
//! - `discover` lists every resource at its group's preferred version, with its verbs and scope.
//! - `list` returns one page (at most `limit` objects) and the continue token while more
//!   remain; `label_selector` is applied by the server.
//! - `platform` describes the cluster as its cloud platform does (AKS: the managed cluster in
//!   ARM), for the manifest; a cluster reached by kubeconfig has none (the default).
//! - `exec` runs a command in a container and waits for it, at most `timeout`; a command that
//!   ran reports its exit code (non-zero is `Ok`), with the first [`EXEC_OUTPUT_LIMIT`] bytes of
//!   stdout and of stderr. One that could not start (no such pod or container, the server
//!   refused) is an error; one still running at the deadline is [`ClusterError::TimedOut`] and
//!   is left to finish in the container (the API cannot kill it).
//! - Errors are classified: `NotFound`, `AlreadyExists`, `Conflict` (stale resourceVersion),
//!   `Forbidden` (RBAC: recorded, the backup continues), `Throttled` (429: retry after the server's delay), `Unavailable`
//!   (5xx, connection failures: transient), `Invalid` (the request itself is wrong).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::domain::platform::PlatformInfo;

pub use crate::domain::resources::ApiResourceInfo;

/// One page of a list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    /// The objects, with `apiVersion` and `kind` set.
    pub items: Vec<Value>,
    /// Token for the next page, while more remain.
    pub continue_token: Option<String>,
}

/// Most bytes of stdout, and of stderr, that [`Cluster::exec`] keeps.
pub const EXEC_OUTPUT_LIMIT: usize = 4096;

/// What a command run in a container did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its exit code (0: success).
    pub exit_code: i32,
    /// The start of its stdout (lossy UTF-8, at most [`EXEC_OUTPUT_LIMIT`] bytes).
    pub stdout: String,
    /// The start of its stderr (lossy UTF-8, at most [`EXEC_OUTPUT_LIMIT`] bytes).
    pub stderr: String,
}

/// Errors of a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The object or resource does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// Create found the name taken.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What was created.
        what: String,
    },
    /// RBAC refused the request.
    #[error("{what}: forbidden: {message}")]
    Forbidden {
        /// What was attempted.
        what: String,
        /// The API server's message.
        message: String,
    },
    /// An update carried a stale `resourceVersion` (reload and decide again).
    #[error("{what}: the object was modified; reload it and try again")]
    Conflict {
        /// What was updated.
        what: String,
    },
    /// The server asked to slow down.
    #[error("{what}: throttled by the API server")]
    Throttled {
        /// What was attempted.
        what: String,
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
    },
    /// The server failed or could not be reached.
    #[error("{what}: the API server is unavailable: {message}")]
    Unavailable {
        /// What was attempted.
        what: String,
        /// The cause.
        message: String,
    },
    /// A command did not finish in time.
    #[error("{what}: still running after {after:?}")]
    TimedOut {
        /// What was run.
        what: String,
        /// How long it was given.
        after: Duration,
    },
    /// The server refused the request as invalid.
    #[error("{what}: {message}")]
    Invalid {
        /// What was attempted.
        what: String,
        /// The API server's message.
        message: String,
    },
}

impl ClusterError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClusterError::Throttled { .. } | ClusterError::Unavailable { .. })
    }
    /// Whether the object or resource does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClusterError::NotFound { .. })
    }
    /// Whether create found the name taken.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, ClusterError::AlreadyExists { .. })
    }
    /// Whether an update lost a race with another writer.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ClusterError::Conflict { .. })
    }
}

/// A Kubernetes API server.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// The server's version (`gitVersion`, e.g. `v1.33.2`).
    ///
    /// # Errors
    /// [`ClusterError`].
    async fn version(&self) -> Result<String, ClusterError>;

    /// What the cloud platform says about this cluster, when it was reached through the
    /// platform (AKS: the managed cluster as ARM described it when connecting). `None` for a
    /// cluster reached by kubeconfig, which is the default.
    ///
    /// # Errors
    /// [`ClusterError`] where an implementation asks the platform anew.
    async fn platform(&self) -> Result<Option<PlatformInfo>, ClusterError> {
        Ok(None)
    }

    /// Every resource type, at its group's preferred version.
    ///
    /// # Errors
    /// [`ClusterError`].
    async fn discover(&self) -> Result<Vec<ApiResourceInfo>, ClusterError>;

    /// One page of `resource` objects (in `namespace`, or all when `None`).
    ///
    /// # Errors
    /// [`ClusterError`].
    async fn list(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        limit: u32,
        continue_token: Option<&str>,
    ) -> Result<ListPage, ClusterError>;

    /// One object, if it exists.
    ///
    /// # Errors
    /// [`ClusterError`] (not for a missing object: that is `Ok(None)`).
    async fn get(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError>;

    /// Creates an object; returns it as stored.
    ///
    /// # Errors
    /// [`ClusterError::AlreadyExists`] when the name is taken; others.
    async fn create(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, ClusterError>;

    /// Replaces an object (HTTP PUT); `object.metadata.resourceVersion` must be the stored one.
    ///
    /// # Errors
    /// [`ClusterError::Conflict`] when it is stale, [`ClusterError::NotFound`]; others.
    async fn replace(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value, ClusterError>;

    /// Deletes an object (its dependents are collected in the background); whether it existed.
    ///
    /// # Errors
    /// [`ClusterError`] (not for a missing object: that is `Ok(false)`).
    async fn delete(
        &self,
        resource: &ApiResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ClusterError>;

    /// Runs `command` in `container` of pod `namespace`/`pod` (the `pods/exec` subresource) and
    /// waits at most `timeout` for it to finish.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] for a missing pod, [`ClusterError::Invalid`] for a missing
    /// container or a command that could not start, [`ClusterError::TimedOut`]; others.
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, ClusterError>;
}

/// Reaches the API server of a declared cluster.
#[async_trait]
pub trait ClusterConnector: Send + Sync {
    /// A client for `cluster` (connections may be cached and reused).
    ///
    /// # Errors
    /// [`ClusterError::Invalid`] when the cluster's connection settings cannot be used,
    /// [`ClusterError::Unavailable`] when it cannot be reached.
    async fn connect(
        &self,
        cluster: &crate::domain::policy::Cluster,
    ) -> Result<std::sync::Arc<dyn Cluster>, ClusterError>;
}

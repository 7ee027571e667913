//! A strict in-process Kubernetes API server for tests and the demo mode.
//!
//! No kube-apiserver can run here, so Lifeboat owns one. It speaks the real wire protocol (JSON
//! over HTTP/1.1) closely enough that `kube` and several `kubectl` versions work against it
//! unchanged, and it is strict where the real server is strict, with the real error bodies.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use lifeboat_test_apiserver::{Options, TestApiServer};
//! let server = TestApiServer::start(Options::default()).await?;
//! server.seed_sample_app("shop").await?;
//! server.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! println!("{} (token {})", server.url(), server.token());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Public API
//! - [`TestApiServer::start`]`(Options) -> Result<Running, StartError>` binds 127.0.0.1 on an
//!   ephemeral port (HTTPS with a self-signed certificate when [`Options::tls`]).
//! - [`Running`]: `url()`, `addr()`, `token()`, `ca_pem()`, `kubeconfig_yaml()`,
//!   `write_kubeconfig(&Path)`, `faults() -> &Faults`, `execs() -> &Execs`, `store() -> &Store`, `options()`,
//!   `seed_snapshot_crds()`, `seed_sample_app(namespace) -> SampleApp`,
//!   `wait_for_kind(api_version, kind)`, `shutdown()`.
//! - [`Store`]: `create`, `get`, `list`, `update`, `update_status`, `delete` on JSON objects with
//!   the HTTP API's semantics; `catalog()`, `resource_version()`, `compact()`.
//! - [`Execs`]: `respond_with(|&ExecRequest| ExecResult)` answers `pods/exec` (default: exit 0,
//!   no output), `recorded() -> Vec<ExecRequest>` lists every exec served.
//! - [`Faults`]: `inject(FaultRule)`, `deny(Denial)` (403 as RBAC words it), `pending()`,
//!   `served()`, `clear()`.
//!
//! # What is served
//! - Discovery: `/api`, `/api/v1`, `/apis`, `/apis/{group}`, `/apis/{group}/{version}`, and
//!   aggregated discovery (`apidiscovery.k8s.io` v2 and v2beta1) — generated from real
//!   `APIResourceList` documents embedded from `data/` (core v1, apps, batch, autoscaling/v2,
//!   networking, rbac, storage, apiextensions) plus established CRDs. `/version`, `/healthz`.
//! - OpenAPI v3 index and per-group-version documents listing paths and parameters but no
//!   schemas (enough for kubectl's `fieldValidation` check, so `kubectl apply` validates
//!   server-side by default). `/openapi/v2` is an empty document (protobuf or JSON).
//! - Verbs get, list, watch, create, update, patch (JSON, merge, strategic-merge subset, apply),
//!   delete, deletecollection, as each resource's discovery entry allows; the `status` and
//!   `scale` subresources (and `namespaces/finalize`); `pods/exec` over WebSocket
//!   (`v5.channel.k8s.io`, `v4.channel.k8s.io`), answered by the test's responder ([`Execs`]).
//! - Metadata: global resourceVersion, optimistic concurrency, `generateName`, `uid`,
//!   `creationTimestamp`, `generation`, minimal `managedFields`, finalizers and
//!   `deletionTimestamp`, ownerReference garbage collection, namespace termination.
//! - Lists with `limit`/`continue` (consistent snapshots rebuilt from history), selectors,
//!   `resourceVersion`/`resourceVersionMatch`; watches with bookmarks and `sendInitialEvents`.
//! - Bearer-token authentication and fault injection ([`Faults`]).
//! - Simulated controllers, each after its [`Options`] delay:
//!   - CSI snapshots: a `VolumeSnapshot` of a bound claim gets a bound content and
//!     `readyToUse`; a pre-provisioned pair (content with `spec.source.snapshotHandle`, snapshot
//!     with `spec.source.volumeSnapshotContentName`), as a restore creates it, binds and becomes
//!     ready, or reports the real controller's error. Snapshot handles are shared by every
//!     server in the process (one simulated Azure subscription): a second server can import a
//!     first one's, and a snapshot deleted with its `Delete` content cannot be imported.
//!   - Volumes: claims bind to the volume they name or that is pre-bound to them; a claim with a
//!     `VolumeSnapshot` data source gets a volume `pvc-<claim uid>` restored from it, annotated
//!     [`RESTORED_FROM_ANNOTATION`] with the snapshot handle; other claims of a storage class get
//!     an empty volume; a deleted claim's volume is deleted or released. Failures are `Warning`
//!     events with external-provisioner's messages.
//!   - Workloads: Deployments, StatefulSets, DaemonSets and ReplicaSets report their generation
//!     observed, then all replicas ready ([`NEVER_READY_ANNOTATION`] keeps one unready).
//!   - CRDs become `Established`; namespaces terminate; ownerReferences are garbage collected.
//! - Registry rules a restore meets: Services get cluster IPs (`10.0.0.0/16`) and node ports
//!   allocated, and a requested one must be free and in range; Jobs get a selector of their own
//!   uid (one carried over is refused); bound claims' specs, workload selectors and most of a
//!   StatefulSet's spec are immutable (422 with the real messages).
//!
//! # Not implemented
//! - Schema validation of built-in types: unknown fields are accepted even with
//!   `fieldValidation=Strict`, and there is no defaulting beyond a few fields. Custom resources are
//!   pruned to their structural schema (rejected under `Strict`), but types are not checked.
//! - Server-side apply field ownership and conflicts: apply creates or merges.
//! - Table output (kubectl falls back to client-side printing), protobuf request bodies (kubectl
//!   1.3x `create configmap`-style generators send them and get 415), HTTP/2, client certificates.
//! - Subresources other than `status`, `scale`, `finalize` and `exec` (log, attach, eviction: 500);
//!   exec over SPDY (kubectl before 1.30): 400 `Upgrade request required`.
//! - Pod graceful deletion (pods go at once), foreground deletion (treated as background),
//!   admission webhooks, RBAC (but see [`Faults`] for injected denials).
//! - Workload controllers create no Pods or ReplicaSets; there is no scheduler, so
//!   `WaitForFirstConsumer` storage classes bind at once; claims without a named volume are not
//!   matched to existing unbound volumes (they are provisioned); PVC clones are not provisioned.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![deny(missing_docs)]

mod admission;
mod auth;
pub mod catalog;
mod controllers;
mod delete;
pub mod discovery;
mod events;
mod exec;
mod faults;
pub mod fields;
mod handlers;
mod immutability;
mod jobs;
mod list;
pub mod meta;
mod openapi;
mod options;
pub mod patch;
mod patch_write;
pub mod pruning;
mod router;
mod scale;
mod seed;
pub mod selectors;
mod server;
mod services;
mod snapshot_import;
mod snapshot_registry;
mod snapshots;
pub mod status;
mod storage;
mod store;
#[cfg(feature = "tls")]
mod tls;
mod volumes;
mod watch;
mod workloads;
mod write;

pub use delete::DeleteOptions;
pub use exec::{ExecRequest, ExecResult, Execs};
pub use faults::{Denial, Fault, FaultRule, Faults};
pub use list::ListOptions;
pub use seed::{AZURE_DISK_DRIVER, SampleApp};
pub use server::{KubeconfigError, Options, Running, StartError, TestApiServer};
pub use snapshot_import::DEFAULT_RESTORE_SIZE_BYTES;
pub use status::ApiError;
pub use store::{Store, WriteOptions};
#[cfg(feature = "tls")]
pub use tls::TlsError;
pub use volumes::RESTORED_FROM_ANNOTATION;
pub use workloads::NEVER_READY_ANNOTATION;

/// Whether the simulated cloud deleted the disk snapshot `handle` (a VolumeSnapshotContent
/// with `deletionPolicy: Delete` holding it went away). Shared by every server in the process.
pub fn cloud_snapshot_deleted(handle: &str) -> bool {
    snapshot_registry::lookup(handle) == snapshot_registry::HandleState::Deleted
}

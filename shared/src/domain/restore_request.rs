//! The restore request: what a message on `restore-requests` (or the CLI's YAML file) asks for.
//!
//! It names the backup (by id, or the newest committed one of a cluster, optionally before a
//! time), the region whose copy to read, the cluster to restore into, and what to take from the
//! backup and how. [`RestoreRequest::check`] finds what makes a request impossible before
//! anything is read or written.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{BackupId, short_hash};
use super::messages::{Message, Queue};
use super::names::ClusterName;

/// Which backup a restore reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum BackupSelector {
    /// A named backup.
    #[serde(rename_all = "camelCase")]
    Id {
        /// Its id.
        backup_id: BackupId,
    },
    /// The newest committed backup of the cluster, optionally before a time.
    #[serde(rename_all = "camelCase")]
    Latest {
        /// Only backups committed before this.
        before: Option<DateTime<Utc>>,
    },
}

pub use super::restore::ConflictPolicy;

/// Waiting for restored workloads to become ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitSpec {
    /// How long to wait for Deployments, StatefulSets and DaemonSets to report ready replicas
    /// (`10m`). Workloads still not ready then make the restore partially failed.
    #[serde(with = "super::policy::humantime_serde_compat")]
    pub deadline: Duration,
}

/// `restore-requests`: restore from a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreRequest {
    /// Always [`RestoreRequest::SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The request's id (1–128 of `[A-Za-z0-9._-]`): the restore's id derives from it, so a
    /// request sent twice is one restore.
    pub request_id: String,
    /// Who asked, for the audit trail.
    #[serde(default)]
    pub requested_by: Option<String>,
    /// The cluster whose backups to read.
    pub source_cluster: ClusterName,
    /// Which backup.
    pub backup: BackupSelector,
    /// The region whose copy to read (the source cluster's own region when absent). Volume
    /// snapshots are taken from the same region.
    #[serde(default)]
    pub from_region: Option<String>,
    /// The cluster to restore into.
    pub target_cluster: ClusterName,
    /// Source namespace globs to restore (every namespace in the backup when empty).
    #[serde(default)]
    pub include_namespaces: Vec<String>,
    /// Source namespace globs to leave out.
    #[serde(default)]
    pub exclude_namespaces: Vec<String>,
    /// Source namespace → target namespace (`payments: payments-restore`).
    #[serde(default)]
    pub namespace_mapping: BTreeMap<String, String>,
    /// Resources (`deployments`, `deployments.apps`, `Deployment`) to restore (all when empty).
    #[serde(default)]
    pub include_resources: Vec<String>,
    /// Resources to leave out.
    #[serde(default)]
    pub exclude_resources: Vec<String>,
    /// Only objects whose labels match this Kubernetes label selector (namespaces exempt).
    #[serde(default)]
    pub label_selector: Option<String>,
    /// Also write cluster-scoped objects (ClusterRoles, CRDs, StorageClasses…); the policy
    /// must allow it too. Namespaces are always written.
    #[serde(default)]
    pub cluster_scoped: bool,
    /// What to do with objects that already exist.
    #[serde(default)]
    pub conflict_policy: ConflictPolicy,
    /// Restore PVC data from the backup's volume snapshots.
    #[serde(default = "yes")]
    pub volumes: bool,
    /// Keep Services' `nodePort`s (they fail to restore where the port is taken).
    #[serde(default)]
    pub keep_node_ports: bool,
    /// Plan only: nothing is written to the cluster.
    #[serde(default)]
    pub dry_run: bool,
    /// Wait for workloads to become ready before reporting the result.
    #[serde(default)]
    pub wait: Option<WaitSpec>,
}

fn yes() -> bool {
    true
}

/// Why a request cannot be carried out, found before anything is touched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("restore request field {field}: {problem}")]
pub struct RequestProblem {
    /// The field, e.g. `namespaceMapping.payments`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

fn problem(field: impl Into<String>, problem: impl Into<String>) -> RequestProblem {
    RequestProblem { field: field.into(), problem: problem.into() }
}

/// Whether `s` is a DNS-1123 label (a namespace name).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl RestoreRequest {
    /// The schema version this build writes and reads.
    pub const SCHEMA_VERSION: u32 = 1;

    /// The restore's id: readable, deterministic from the request id, and usable as a label
    /// value (at most 63 characters of `[a-z0-9-]`).
    pub fn restore_id(&self) -> String {
        let readable: String = self
            .request_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .take(40)
            .collect();
        let readable = readable.trim_matches('-');
        let hash = short_hash(&self.request_id);
        if readable.is_empty() { format!("restore-{hash}") } else { format!("{readable}-{hash}") }
    }

    /// The namespace a source namespace is restored into.
    pub fn target_namespace<'a>(&'a self, source: &'a str) -> &'a str {
        self.namespace_mapping.get(source).map_or(source, String::as_str)
    }

    /// Checks what can be checked without the backup: ids, names, the mapping.
    ///
    /// # Errors
    /// Every [`RequestProblem`] found.
    pub fn check(&self) -> Result<(), Vec<RequestProblem>> {
        let mut problems = Vec::new();
        let id_ok = !self.request_id.is_empty()
            && self.request_id.len() <= 128
            && self.request_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !id_ok {
            problems.push(problem("requestId", "must be 1-128 characters of letters, digits, '.', '_' and '-'"));
        }
        let mut targets: BTreeMap<&str, &str> = BTreeMap::new();
        for (source, target) in &self.namespace_mapping {
            let field = format!("namespaceMapping.{source}");
            if !is_dns_label(source) {
                problems.push(problem(&field, format!("{source:?} is not a namespace name")));
            }
            if !is_dns_label(target) {
                problems.push(problem(&field, format!("{target:?} is not a namespace name")));
            }
            if let Some(other) = targets.insert(target, source) {
                problems.push(problem(&field, format!("{other} and {source} are both mapped onto {target}")));
            }
        }
        // A mapped namespace must not land on a namespace that is itself restored unmapped.
        let mapped_sources: BTreeSet<&str> = self.namespace_mapping.keys().map(String::as_str).collect();
        for (target, source) in &targets {
            if !mapped_sources.contains(target)
                && target != source
                && self.include_namespaces.iter().any(|n| n == target)
            {
                problems.push(problem(
                    format!("namespaceMapping.{source}"),
                    format!("{target} is also restored as itself; map one of them elsewhere"),
                ));
            }
        }
        if let Some(selector) = &self.label_selector
            && selector.trim().is_empty()
        {
            problems.push(problem("labelSelector", "is empty; leave it out to restore every object"));
        }
        if let Some(wait) = &self.wait
            && wait.deadline.is_zero()
        {
            problems.push(problem("wait.deadline", "must be longer than zero"));
        }
        if let Some(region) = &self.from_region
            && region.trim().is_empty()
        {
            problems.push(problem("fromRegion", "is empty; leave it out to read the primary copy"));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

impl Message for RestoreRequest {
    const QUEUE: Queue = Queue::RestoreRequests;
    const SCHEMA_VERSION: u32 = 1;
    fn message_id(&self) -> String {
        format!("restore.{}", self.request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::messages::{ContractError, decode};

    fn minimal() -> &'static str {
        r#"{"schemaVersion":1,"requestId":"inc-4711","sourceCluster":"prod","backup":{"kind":"latest"},"targetCluster":"prod"}"#
    }

    #[test]
    fn a_minimal_request_takes_safe_defaults() {
        let r: RestoreRequest = decode(minimal().as_bytes()).unwrap();
        assert_eq!(r.conflict_policy, ConflictPolicy::Skip, "never overwrite unless asked");
        assert!(r.volumes, "volume data comes back by default");
        assert!(!r.cluster_scoped, "cluster-scoped objects only when asked");
        assert!(!r.dry_run);
        assert_eq!(r.message_id(), "restore.inc-4711");
        assert!(r.check().is_ok());
    }

    #[test]
    fn restore_ids_are_label_values_and_deterministic() {
        let mut r: RestoreRequest = decode(minimal().as_bytes()).unwrap();
        let id = r.restore_id();
        assert!(id.starts_with("inc-4711-"), "{id}");
        assert_eq!(id, r.restore_id());
        r.request_id = "X".repeat(128);
        let long = r.restore_id();
        assert!(long.len() <= 63, "{long}");
        assert!(long.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{long}");
        r.request_id = "...".into();
        assert!(r.restore_id().starts_with("restore-"));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_by_name() {
        let body = minimal().replace(r#""targetCluster""#, r#""conflictPolicy":"merge","targetCluster""#);
        match decode::<RestoreRequest>(body.as_bytes()) {
            Err(ContractError::InvalidField { field, .. }) => assert_eq!(field, "conflictPolicy"),
            other => panic!("{other:?}"),
        }
        let body = minimal().replace(r#""targetCluster""#, r#""namespaceMap":{},"targetCluster""#);
        assert!(matches!(decode::<RestoreRequest>(body.as_bytes()), Err(ContractError::InvalidField { .. })));
    }

    #[test]
    fn check_finds_every_problem_of_the_mapping() {
        let mut r: RestoreRequest = decode(minimal().as_bytes()).unwrap();
        r.request_id = "has space".into();
        r.namespace_mapping.insert("a".into(), "shared".into());
        r.namespace_mapping.insert("b".into(), "shared".into());
        r.namespace_mapping.insert("c".into(), "Not_A_Name".into());
        let problems = r.check().unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["requestId", "namespaceMapping.b", "namespaceMapping.c"], "{problems:?}");
        assert!(problems[1].problem.contains("a and b are both mapped onto shared"), "{problems:?}");
    }

    #[test]
    fn the_target_namespace_follows_the_mapping() {
        let mut r: RestoreRequest = decode(minimal().as_bytes()).unwrap();
        r.namespace_mapping.insert("payments".into(), "payments-restore".into());
        assert_eq!(r.target_namespace("payments"), "payments-restore");
        assert_eq!(r.target_namespace("shop"), "shop");
    }
}

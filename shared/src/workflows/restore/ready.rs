//! Waits for restored workloads to become ready: Deployments, StatefulSets and ReplicaSets
//! with all their replicas ready at the current generation, DaemonSets scheduled and ready on
//! every node they want, PersistentVolumeClaims bound.

use std::time::Duration;

use serde_json::Value;

use crate::domain::restore::PlannedObject;
use crate::ports::cluster::{Cluster, ClusterError};

use super::apply::resource_of;

/// Whether a workload object reports itself ready; `None` for kinds that are not workloads.
pub fn is_ready(object: &Value) -> Option<bool> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    let int = |p: &str| object.pointer(p).and_then(Value::as_i64);
    let current = int("/status/observedGeneration").unwrap_or(0) >= int("/metadata/generation").unwrap_or(0);
    match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let wanted = int("/spec/replicas").unwrap_or(1);
            Some(current && int("/status/readyReplicas").unwrap_or(0) >= wanted)
        }
        "DaemonSet" => {
            let wanted = int("/status/desiredNumberScheduled").unwrap_or(0);
            Some(current && int("/status/numberReady").unwrap_or(0) >= wanted && object.pointer("/status").is_some())
        }
        "PersistentVolumeClaim" => Some(object.pointer("/status/phase").and_then(Value::as_str) == Some("Bound")),
        _ => None,
    }
}

/// Whether a planned object is one to wait for: workloads, and claims (a volume restored from
/// a snapshot is provisioned asynchronously; until it is bound, pods using it cannot start).
pub fn is_workload(step: &PlannedObject) -> bool {
    (step.group == "apps" && matches!(step.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet"))
        || (step.group.is_empty() && step.kind == "PersistentVolumeClaim")
}

/// Polls every `poll` until each workload is ready or `deadline` passes; returns those still
/// not ready (`deployments.apps shop/web`), empty when all are.
///
/// # Errors
/// A [`ClusterError`] other than not-found (a workload deleted meanwhile counts as not ready).
pub async fn wait_ready(
    cluster: &dyn Cluster,
    workloads: &[&PlannedObject],
    deadline: Duration,
    poll: Duration,
) -> Result<Vec<String>, ClusterError> {
    let until = tokio::time::Instant::now() + deadline;
    let mut pending: Vec<&PlannedObject> = workloads.to_vec();
    loop {
        let mut still = Vec::new();
        for step in pending {
            let resource = resource_of(step);
            let ready = match cluster.get(&resource, step.namespace.as_deref(), &step.name).await {
                Ok(Some(object)) => is_ready(&object).unwrap_or(true),
                Ok(None) => false,
                Err(e) if e.is_transient() => false,
                Err(e) => return Err(e),
            };
            if !ready {
                still.push(step);
            }
        }
        pending = still;
        if pending.is_empty() || tokio::time::Instant::now() >= until {
            break;
        }
        tokio::time::sleep(poll.min(until.saturating_duration_since(tokio::time::Instant::now()))).await;
    }
    Ok(pending
        .iter()
        .map(|s| format!("{} {}/{}", resource_of(s).group_resource(), s.namespace.as_deref().unwrap_or("-"), s.name))
        .collect())
}

/// Whether a CustomResourceDefinition reports the `Established` condition.
pub fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|conditions| {
        conditions.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Established")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    })
}

/// Waits until every CRD is established, so its custom resources can be created.
///
/// # Errors
/// [`ClusterError::Unavailable`] naming the CRDs still not established at the deadline (the
/// restore is resumed by redelivery), or the cluster's error.
pub async fn wait_established(
    cluster: &dyn Cluster,
    crds: &[&PlannedObject],
    timeout: Duration,
    poll: Duration,
) -> Result<(), ClusterError> {
    let until = tokio::time::Instant::now() + timeout;
    let mut pending: Vec<&PlannedObject> = crds.to_vec();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for crd in pending {
            match cluster.get(&resource_of(crd), None, &crd.name).await {
                Ok(Some(object)) if is_established(&object) => {}
                Ok(_) => still.push(crd),
                Err(e) if e.is_transient() => still.push(crd),
                Err(e) => return Err(e),
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= until {
            let names: Vec<&str> = pending.iter().map(|c| c.name.as_str()).collect();
            return Err(ClusterError::Unavailable {
                what: "waiting for custom resource definitions".into(),
                message: format!("not established after {}s: {}", timeout.as_secs(), names.join(", ")),
            });
        }
        tokio::time::sleep(poll.min(Duration::from_millis(500))).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readiness_follows_the_status_at_the_current_generation() {
        let ready = json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 3},
            "status": {"observedGeneration": 2, "readyReplicas": 3}});
        assert_eq!(is_ready(&ready), Some(true));
        let stale = json!({"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 3},
            "status": {"observedGeneration": 2, "readyReplicas": 3}});
        assert_eq!(is_ready(&stale), Some(false), "the controller has not seen the latest spec");
        let short = json!({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "readyReplicas": 1}});
        assert_eq!(is_ready(&short), Some(false));
        let ds = json!({"kind": "DaemonSet", "metadata": {"generation": 1},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": 2, "numberReady": 2}});
        assert_eq!(is_ready(&ds), Some(true));
        assert_eq!(is_ready(&json!({"kind": "DaemonSet", "metadata": {"generation": 1}})), Some(false));
        assert_eq!(is_ready(&json!({"kind": "ConfigMap"})), None);
        assert_eq!(is_ready(&json!({"kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}})), Some(false));
        assert_eq!(is_ready(&json!({"kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}})), Some(true));
    }
}

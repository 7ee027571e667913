//! Workload controllers, as far as their `status` goes: Deployments, StatefulSets, DaemonSets and
//! ReplicaSets report a new generation at once (observed, not yet available), then all replicas
//! ready after the workload delay, so that a restore can wait for them.
//!
//! No Pods or ReplicaSets are created. A DaemonSet wants one pod per `Node` object (one when there
//! are none). A workload annotated [`NEVER_READY_ANNOTATION`]` = "true"` never gets ready (like
//! a crash-looping image), for tests of deadlines.

use serde_json::{Value, json};

use crate::meta::{self, meta_str};
use crate::server::Options;
use crate::storage::{GroupResource, ObjectKey};
use crate::store::Store;

/// The annotation that keeps a workload from ever becoming ready.
pub const NEVER_READY_ANNOTATION: &str = "lifeboat.test/never-ready";

/// Whether `(group, resource)` is a workload this module reports on.
pub(crate) fn is_workload(group: &str, resource: &str) -> bool {
    group == "apps" && matches!(resource, "deployments" | "statefulsets" | "daemonsets" | "replicasets")
}

/// Reacts to a workload added or changed: a generation not yet observed is observed now (not
/// ready), and becomes ready after the delay unless it changed again meanwhile.
pub(crate) fn changed(store: &Store, opts: &Options, gr: &GroupResource, key: &ObjectKey) {
    let Some(obj) = store.raw_get(gr, key) else { return };
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    if obj["status"]["observedGeneration"].as_i64() == Some(generation)
        || !meta_str(&obj, "deletionTimestamp").is_empty()
    {
        return;
    }
    let nodes = store.raw_list(&GroupResource::new("", "nodes")).len().max(1);
    let desired = desired_replicas(&gr.resource, &obj, nodes);
    store.mutate(gr, key, |o| {
        let s = status(&gr.resource, o, generation, desired, 0);
        o["status"] = s;
    });
    if obj["metadata"]["annotations"][NEVER_READY_ANNOTATION] == "true" {
        return;
    }
    let (store, gr, key, delay) = (store.clone(), gr.clone(), key.clone(), opts.workload_ready_delay);
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        store.mutate(&gr, &key, |o| {
            if o["metadata"]["generation"].as_i64().unwrap_or(1) == generation {
                let s = status(&gr.resource, o, generation, desired, desired);
                o["status"] = s;
            }
        });
    });
}

fn desired_replicas(resource: &str, obj: &Value, nodes: usize) -> i64 {
    match resource {
        "daemonsets" => i64::try_from(nodes).unwrap_or(1),
        _ => obj["spec"]["replicas"].as_i64().unwrap_or(1),
    }
}

/// Drops zero counts, as the real types' `omitempty` does.
fn without_zeros(mut v: Value, keep: &[&str]) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, v| v.as_i64() != Some(0) || keep.contains(&k.as_str()));
    }
    v
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": if ok { "True" } else { "False" }, "reason": reason, "message": message,
        "lastUpdateTime": now, "lastTransitionTime": now})
}

/// The status a controller reports with `ready` of `desired` replicas ready.
fn status(resource: &str, obj: &Value, generation: i64, desired: i64, ready: i64) -> Value {
    let now = meta::now();
    let name = meta_str(obj, "name");
    match resource {
        "deployments" => {
            let available = ready >= desired;
            let mut s = without_zeros(
                json!({"observedGeneration": generation, "replicas": desired, "updatedReplicas": desired,
                    "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": desired - ready}),
                &[],
            );
            let (a_reason, a_msg) = if available {
                ("MinimumReplicasAvailable", "Deployment has minimum availability.")
            } else {
                ("MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
            };
            let (p_reason, p_msg) = if available {
                ("NewReplicaSetAvailable", format!("ReplicaSet \"{name}\" has successfully progressed."))
            } else {
                ("ReplicaSetUpdated", format!("ReplicaSet \"{name}\" is progressing."))
            };
            s["conditions"] = json!([
                condition("Available", available, a_reason, a_msg, &now),
                condition("Progressing", true, p_reason, &p_msg, &now),
            ]);
            s
        }
        "statefulsets" => {
            let revision = format!("{name}-{generation:x}");
            let mut s = without_zeros(
                json!({"observedGeneration": generation, "replicas": desired, "readyReplicas": ready,
                    "currentReplicas": desired, "updatedReplicas": desired, "availableReplicas": ready}),
                &["replicas", "availableReplicas"],
            );
            s["currentRevision"] = json!(revision);
            s["updateRevision"] = json!(revision);
            s["collisionCount"] = json!(0);
            s
        }
        "daemonsets" => without_zeros(
            json!({"observedGeneration": generation, "currentNumberScheduled": desired, "numberMisscheduled": 0,
                "desiredNumberScheduled": desired, "numberReady": ready, "updatedNumberScheduled": desired,
                "numberAvailable": ready, "numberUnavailable": desired - ready}),
            &["currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"],
        ),
        _ => without_zeros(
            json!({"observedGeneration": generation, "replicas": desired, "fullyLabeledReplicas": desired,
                "readyReplicas": ready, "availableReplicas": ready}),
            &["replicas"],
        ),
    }
}

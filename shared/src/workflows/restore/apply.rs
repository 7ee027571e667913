//! Applies planned objects to the target cluster, with bounded parallelism, retries of 429/5xx
//! and the request's conflict policy. Every object carries the restore's id as a label, so an
//! object found already there *with our label* was created by an earlier attempt of this
//! restore (a redelivery, a crash): it counts as created, and nothing is created twice.

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use crate::domain::resources::ApiResourceInfo;
use crate::domain::restore::PlannedObject;
use crate::domain::restore_request::ConflictPolicy;
use crate::ports::cluster::{Cluster, ClusterError};
use crate::workflows::retry::{RetryPolicy, with_retry};

/// The label every restored object carries.
pub const RESTORE_ID_LABEL: &str = "lifeboat.io/restore-id";

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum ObjectOutcome {
    /// Created (now, or by an earlier attempt of this restore).
    Created,
    /// Replaced under conflict policy `update`.
    Updated,
    /// Already there and left alone.
    Unchanged {
        /// Why.
        reason: String,
    },
    /// Not written.
    Failed {
        /// The API server's message, or the conflict.
        message: String,
    },
}

/// One object's result, as the results document lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// `deployments.apps`.
    pub resource: String,
    /// Target namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: ObjectOutcome,
}

/// How objects are applied.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Objects in flight at once within a tier.
    pub parallelism: usize,
    /// Retries of throttling and unavailability.
    pub retry: RetryPolicy,
    /// What to do with objects that exist.
    pub conflict: ConflictPolicy,
}

/// The resource type a planned object is sent to.
pub fn resource_of(step: &PlannedObject) -> ApiResourceInfo {
    ApiResourceInfo {
        group: step.group.clone(),
        version: step.version.clone(),
        resource: step.resource.clone(),
        kind: step.kind.clone(),
        namespaced: step.namespace.is_some(),
        verbs: Vec::new(),
    }
}

/// Applies `steps` (one tier) and returns each one's result in the steps' order.
///
/// # Errors
/// A transient [`ClusterError`] that outlived its retries: the API server is not reachable,
/// and the restore stops here to be resumed by redelivery.
pub async fn apply_all(
    cluster: &dyn Cluster,
    steps: &[PlannedObject],
    restore_id: &str,
    options: ApplyOptions,
) -> Result<Vec<Applied>, ClusterError> {
    // Boxed so the future stays `Send` for every lifetime (a closure returning an `async fn`'s
    // future into `buffered` trips rustc's higher-ranked `Send` check in the callers).
    let calls: Vec<BoxFuture<'_, Result<Applied, ClusterError>>> =
        steps.iter().map(|step| Box::pin(apply_one(cluster, step, restore_id, options)) as BoxFuture<'_, _>).collect();
    let results: Vec<Result<Applied, ClusterError>> =
        futures_util::stream::iter(calls).buffered(options.parallelism.max(1)).collect().await;
    results.into_iter().collect()
}

async fn apply_one(
    cluster: &dyn Cluster,
    step: &PlannedObject,
    restore_id: &str,
    options: ApplyOptions,
) -> Result<Applied, ClusterError> {
    let resource = resource_of(step);
    let ns = step.namespace.as_deref();
    let outcome = match with_retry(options.retry, || cluster.create(&resource, ns, &step.object)).await {
        Ok(_) => ObjectOutcome::Created,
        Err(e) if e.is_already_exists() => on_conflict(cluster, &resource, step, restore_id, options).await?,
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => ObjectOutcome::Failed { message: server_message(&e) },
    };
    Ok(Applied {
        resource: resource.group_resource(),
        namespace: step.namespace.clone(),
        name: step.name.clone(),
        outcome,
    })
}

/// Namespaces, and objects the control plane makes in every namespace: finding them is not a
/// conflict.
fn made_by_control_plane(step: &PlannedObject) -> bool {
    step.created_by_control_plane || (step.group.is_empty() && step.kind == "Namespace")
}

async fn on_conflict(
    cluster: &dyn Cluster,
    resource: &ApiResourceInfo,
    step: &PlannedObject,
    restore_id: &str,
    options: ApplyOptions,
) -> Result<ObjectOutcome, ClusterError> {
    let ns = step.namespace.as_deref();
    for _ in 0..3 {
        let existing = match with_retry(options.retry, || cluster.get(resource, ns, &step.name)).await {
            Ok(Some(existing)) => existing,
            // Deleted since: try creating once more.
            Ok(None) => {
                return match with_retry(options.retry, || cluster.create(resource, ns, &step.object)).await {
                    Ok(_) => Ok(ObjectOutcome::Created),
                    Err(e) if e.is_transient() => Err(e),
                    Err(e) => Ok(ObjectOutcome::Failed { message: server_message(&e) }),
                };
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => return Ok(ObjectOutcome::Failed { message: server_message(&e) }),
        };
        if label(&existing, RESTORE_ID_LABEL) == Some(restore_id) {
            return Ok(ObjectOutcome::Created);
        }
        match options.conflict {
            ConflictPolicy::Skip => {
                return Ok(ObjectOutcome::Unchanged { reason: "already exists (conflict policy skip)".into() });
            }
            _ if made_by_control_plane(step) => {
                return Ok(ObjectOutcome::Unchanged { reason: "already exists (made by the control plane)".into() });
            }
            ConflictPolicy::Fail => {
                return Ok(ObjectOutcome::Failed { message: "already exists (conflict policy fail)".into() });
            }
            ConflictPolicy::Update => {
                let desired = replacement(&step.object, &existing);
                match with_retry(options.retry, || cluster.replace(resource, ns, &desired)).await {
                    Ok(_) => return Ok(ObjectOutcome::Updated),
                    Err(e) if e.is_conflict() => continue,
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => return Ok(ObjectOutcome::Failed { message: server_message(&e) }),
                }
            }
        }
    }
    Ok(ObjectOutcome::Failed { message: "kept changing while being replaced (three conflicts in a row)".into() })
}

/// The body that replaces `existing`: the planned object with the stored `resourceVersion`,
/// and the fields the API server assigned and will not let change (a Service's cluster IPs,
/// a bound claim's volume).
fn replacement(planned: &Value, existing: &Value) -> Value {
    let mut desired = planned.clone();
    if let Some(rv) = existing.pointer("/metadata/resourceVersion").cloned()
        && let Some(meta) = desired.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("resourceVersion".into(), rv);
    }
    let kind = planned.get("kind").and_then(Value::as_str).unwrap_or_default();
    let kept: &[&str] = match kind {
        "Service" => &["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"],
        "PersistentVolumeClaim" => &["volumeName", "dataSource", "dataSourceRef"],
        "Job" => &["selector"],
        _ => &[],
    };
    for field in kept {
        if let Some(v) = existing.pointer(&format!("/spec/{field}")).cloned()
            && let Some(spec) = desired.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert((*field).to_owned(), v);
        }
    }
    if kind == "Job"
        && let Some(labels) = existing.pointer("/spec/template/metadata/labels").cloned()
        && let Some(meta) = desired.pointer_mut("/spec/template/metadata").and_then(Value::as_object_mut)
    {
        meta.insert("labels".into(), labels);
    }
    desired
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str)
}

/// The API server's own words, without our "creating x/y:" prefix doubled.
fn server_message(e: &ClusterError) -> String {
    match e {
        ClusterError::Invalid { message, .. } | ClusterError::Forbidden { message, .. } => message.clone(),
        ClusterError::NotFound { what } => format!("{what} not found (is its resource type served?)"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_replacement_keeps_what_the_server_assigned() {
        let planned = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"a": "b"}},
            "spec": {"ports": [{"port": 80}]}});
        let existing = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "resourceVersion": "42"},
            "spec": {"clusterIP": "10.0.0.7", "clusterIPs": ["10.0.0.7"], "ports": [{"port": 81}]}});
        let desired = replacement(&planned, &existing);
        assert_eq!(desired["metadata"]["resourceVersion"], "42");
        assert_eq!(desired["spec"]["clusterIP"], "10.0.0.7");
        assert_eq!(desired["spec"]["ports"][0]["port"], 80, "the backed-up spec wins elsewhere");
        assert_eq!(desired["metadata"]["labels"]["a"], "b");
    }
}

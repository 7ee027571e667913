//! Per-object transforms: server-owned fields go, and per-kind rules for Services, Jobs,
//! Pods and ServiceAccounts.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Metadata the API server owns and sets on create.
const SERVER_METADATA: [&str; 8] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Labels the Job controller derives from the Job's uid, which changes on restore.
const JOB_UID_LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];

fn object_at<'v>(v: &'v mut Value, pointer: &str) -> Option<&'v mut Map<String, Value>> {
    v.pointer_mut(pointer).and_then(Value::as_object_mut)
}

/// Removes the server-owned metadata and `status` (of every kind).
pub(super) fn strip_server_fields(object: &mut Value) {
    if let Some(meta) = object_at(object, "/metadata") {
        for field in SERVER_METADATA {
            meta.remove(field);
        }
    }
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
}

/// Keeps only the owner references `keep` accepts; drops the field when none is left.
pub(super) fn retain_owner_references(object: &mut Value, mut keep: impl FnMut(&Value) -> bool) {
    let Some(meta) = object_at(object, "/metadata") else { return };
    if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
        refs.retain(|r| keep(r));
        if refs.is_empty() {
            meta.remove("ownerReferences");
        }
    }
}

/// Services: the cluster allocates a new `clusterIP` (headless `None` stays), and node ports
/// unless they are to be kept.
pub(super) fn service(object: &mut Value, keep_node_ports: bool) {
    let Some(spec) = object_at(object, "/spec") else { return };
    if spec.get("clusterIP").and_then(Value::as_str) != Some("None") {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    if !keep_node_ports {
        spec.remove("healthCheckNodePort");
        for port in spec.get_mut("ports").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(p) = port.as_object_mut() {
                p.remove("nodePort");
            }
        }
    }
}

/// Jobs: the generated selector and the labels that name the old Job's uid go; the API server
/// generates them again for the new uid (`job-name` stays: it does not change).
pub(super) fn job(object: &mut Value) {
    let manual = object.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true);
    if !manual && let Some(spec) = object_at(object, "/spec") {
        spec.remove("selector");
    }
    for pointer in ["/spec/template/metadata/labels", "/metadata/labels"] {
        if let Some(labels) = object_at(object, pointer) {
            for label in JOB_UID_LABELS {
                labels.remove(label);
            }
        }
    }
}

/// Pods not owned by a restored controller (Velero's pod action): the scheduler picks a node
/// again, the priority comes from the class again, and the projected service account token
/// volume (`kube-api-access-*`) is injected again by admission. Ephemeral containers go too:
/// the API server refuses them on create (they are added through a subresource).
pub(super) fn pod(object: &mut Value) {
    let Some(spec) = object_at(object, "/spec") else { return };
    spec.remove("nodeName");
    spec.remove("ephemeralContainers");
    if spec.get("priorityClassName").is_some() {
        spec.remove("priority");
    }
    let is_token =
        |name: Option<&Value>| name.and_then(Value::as_str).is_some_and(|n| n.starts_with("kube-api-access-"));
    if let Some(Value::Array(volumes)) = spec.get_mut("volumes") {
        volumes.retain(|v| !is_token(v.get("name")));
    }
    for containers in ["initContainers", "containers"] {
        for c in spec.get_mut(containers).and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(Value::Array(mounts)) = c.get_mut("volumeMounts") {
                mounts.retain(|m| !is_token(m.get("name")));
            }
        }
    }
}

/// ServiceAccounts: references to token Secrets (which are not restored) go.
pub(super) fn service_account(object: &mut Value, token_secrets: &BTreeSet<String>) {
    if let Some(Value::Array(secrets)) = object.get_mut("secrets") {
        secrets.retain(|s| !s.get("name").and_then(Value::as_str).is_some_and(|n| token_secrets.contains(n)));
        if secrets.is_empty()
            && let Some(o) = object.as_object_mut()
        {
            o.remove("secrets");
        }
    }
}

/// Sets `labels` on the object's metadata.
pub(super) fn add_labels(object: &mut Value, labels: &[(&str, &str)]) {
    let Some(o) = object.as_object_mut() else { return };
    let meta = o.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else { return };
    let l = meta.entry("labels").or_insert_with(|| Value::Object(Map::new()));
    if !l.is_object() {
        *l = Value::Object(Map::new());
    }
    if let Some(l) = l.as_object_mut() {
        for (k, v) in labels {
            l.insert((*k).to_owned(), Value::String((*v).to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn server_owned_fields_and_status_go() {
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web", "namespace": "shop", "uid": "3f1c", "resourceVersion": "812",
                "creationTimestamp": "2026-11-01T10:00:00Z", "generation": 1, "selfLink": "/api/v1/x",
                "managedFields": [{"manager": "kubectl"}], "deletionTimestamp": "2026-11-02T00:00:00Z",
                "deletionGracePeriodSeconds": 30, "labels": {"app": "web"}, "annotations": {"a": "b"}},
            "data": {"k": "v"}, "status": {"x": 1}});
        strip_server_fields(&mut cm);
        assert_eq!(
            cm,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}, "annotations": {"a": "b"}},
                "data": {"k": "v"}})
        );
    }

    #[test]
    fn services_lose_cluster_ips_and_node_ports() {
        let original = json!({"spec": {"type": "NodePort", "clusterIP": "10.0.12.34", "clusterIPs": ["10.0.12.34"],
            "healthCheckNodePort": 31000, "ports": [{"port": 80, "nodePort": 30080}, {"port": 443, "nodePort": 30443}]}});
        let mut svc = original.clone();
        service(&mut svc, false);
        assert_eq!(svc, json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}}));
        let mut kept = original;
        service(&mut kept, true);
        assert_eq!(
            kept,
            json!({"spec": {"type": "NodePort", "healthCheckNodePort": 31000,
                "ports": [{"port": 80, "nodePort": 30080}, {"port": 443, "nodePort": 30443}]}})
        );
        let mut headless = json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 5432}]}});
        let before = headless.clone();
        service(&mut headless, false);
        assert_eq!(headless, before, "headless stays headless");
    }

    #[test]
    fn jobs_lose_the_controller_uid_selector_and_labels() {
        let uid_labels = json!({"controller-uid": "9b1e", "batch.kubernetes.io/controller-uid": "9b1e",
            "job-name": "migrate", "batch.kubernetes.io/job-name": "migrate"});
        let mut j = json!({"metadata": {"name": "migrate", "labels": uid_labels},
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "9b1e"}},
                "template": {"metadata": {"labels": uid_labels}, "spec": {"restartPolicy": "Never"}}}});
        job(&mut j);
        let kept = json!({"job-name": "migrate", "batch.kubernetes.io/job-name": "migrate"});
        assert_eq!(
            j,
            json!({"metadata": {"name": "migrate", "labels": kept},
                "spec": {"template": {"metadata": {"labels": kept}, "spec": {"restartPolicy": "Never"}}}})
        );
        let mut manual = json!({"spec": {"manualSelector": true, "selector": {"matchLabels": {"app": "x"}}}});
        let before = manual.clone();
        job(&mut manual);
        assert_eq!(manual, before, "a manual selector is the user's");
    }

    #[test]
    fn bare_pods_are_scheduled_again() {
        let mut p = json!({"spec": {"nodeName": "aks-nodepool1-0", "priorityClassName": "high", "priority": 1000,
            "ephemeralContainers": [{"name": "debugger", "image": "busybox"}],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "kube-api-access-x7k2p", "projected": {}}],
            "containers": [{"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/d"},
                {"name": "kube-api-access-x7k2p", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}]}});
        pod(&mut p);
        assert_eq!(
            p,
            json!({"spec": {"priorityClassName": "high", "volumes": [{"name": "data", "emptyDir": {}}],
                "containers": [{"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}})
        );
    }

    #[test]
    fn owner_references_are_filtered_and_the_field_dropped_when_empty() {
        let mut o = json!({"metadata": {"ownerReferences": [{"name": "a"}, {"name": "b"}]}});
        retain_owner_references(&mut o, |r| r["name"] == "b");
        assert_eq!(o, json!({"metadata": {"ownerReferences": [{"name": "b"}]}}));
        retain_owner_references(&mut o, |_| false);
        assert_eq!(o, json!({"metadata": {}}));
    }

    #[test]
    fn service_accounts_forget_token_secrets() {
        let mut sa = json!({"metadata": {"name": "web"}, "secrets": [{"name": "web-token-abcde"}, {"name": "other"}]});
        service_account(&mut sa, &BTreeSet::from(["web-token-abcde".to_owned()]));
        assert_eq!(sa, json!({"metadata": {"name": "web"}, "secrets": [{"name": "other"}]}));
        service_account(&mut sa, &BTreeSet::from(["other".to_owned()]));
        assert_eq!(sa, json!({"metadata": {"name": "web"}}));
    }
}

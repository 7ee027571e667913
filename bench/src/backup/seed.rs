//! The objects the benchmark backs up: ConfigMaps (80 %), Secrets (15 %) and Deployments (5 %)
//! with realistic labels and a few hundred bytes of data each, spread over [`NAMESPACES`]
//! namespaces. Built as values here and written straight into the test server's store.

use lifeboat_test_apiserver::Store;
use serde_json::{Value, json};

/// Namespaces the objects are spread over.
pub const NAMESPACES: usize = 50;

/// The namespace objects, `bench-00` … `bench-49`.
pub fn namespaces() -> impl Iterator<Item = Value> {
    (0..NAMESPACES).map(|i| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace(i)}}))
}

/// The `i`-th object of the workload (deterministic).
pub fn object(i: usize) -> Value {
    let namespace = namespace(i % NAMESPACES);
    let app = format!("app-{}", (i / NAMESPACES) % 40);
    let tier = ["web", "api", "worker", "cache"].get(i % 4).copied().unwrap_or_default();
    let labels = json!({
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": "bench",
        "app.kubernetes.io/managed-by": "helm",
        "tier": tier,
    });
    match i % 20 {
        0 => deployment(i, &namespace, &app, labels),
        1..=3 => json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": format!("secret-{i:06}"), "namespace": namespace, "labels": labels},
            // base64 of about 180 bytes of credentials.
            "data": {
                "username": "YmVuY2gtdXNlcg==",
                "password": "c3VwZXItc2VjcmV0LXBhc3N3b3JkLTEyMzQ1Njc4OTAtYWJjZGVmZ2hpamtsbW5vcA==",
                "ca.crt": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJrVENCK3dJSkFPYmVuY2hiZW5jaGJlbmNoYmVuY2gKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=",
            },
        }),
        _ => json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": format!("config-{i:06}"), "namespace": namespace, "labels": labels,
                "annotations": {"meta.helm.sh/release-name": app, "meta.helm.sh/release-namespace": namespace},
            },
            "data": {
                "LOG_LEVEL": "info",
                "DATABASE_URL": format!("postgres://{app}.{namespace}.svc.cluster.local:5432/{app}?sslmode=require"),
                "FEATURE_FLAGS": "checkout-v2,search-suggestions,dark-mode,async-export,rate-limit-burst",
                "settings.yaml": format!(
                    "server:\n  port: 8080\n  readTimeout: 30s\ncache:\n  ttl: 300s\n  size: {}\nreplica: {i}\n",
                    1024 + i % 4096
                ),
            },
        }),
    }
}

fn deployment(i: usize, namespace: &str, app: &str, labels: Value) -> Value {
    let name = format!("deploy-{i:06}");
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "app.kubernetes.io/name": app}},
                "spec": {"containers": [{
                    "name": "main",
                    "image": format!("registry.example.com/{app}:1.{}.0", i % 30),
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "env": [{"name": "CONFIG", "valueFrom": {"configMapKeyRef": {"name": format!("config-{:06}", i + 4), "key": "LOG_LEVEL"}}}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                }]},
            },
        },
    })
}

fn namespace(i: usize) -> String {
    format!("bench-{i:02}")
}

/// Creates the namespaces and `count` objects in `store`.
///
/// # Errors
///
/// The first object the store refuses, with its name.
pub fn seed(store: &Store, count: usize) -> anyhow::Result<()> {
    for object in namespaces().chain((0..count).map(object)) {
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
        store.create(object).map_err(|e| anyhow::anyhow!("seed {name}: {}", e.message))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_kinds_over_every_namespace() {
        let objects: Vec<Value> = (0..1000).map(object).collect();
        let kinds = |k: &str| objects.iter().filter(|o| o["kind"] == k).count();
        assert_eq!((kinds("ConfigMap"), kinds("Secret"), kinds("Deployment")), (800, 150, 50));
        let namespaces: std::collections::BTreeSet<&str> =
            objects.iter().filter_map(|o| o["metadata"]["namespace"].as_str()).collect();
        assert_eq!(namespaces.len(), NAMESPACES);
        let size = serde_json::to_vec(&object(7)).map(|b| b.len()).unwrap_or_default();
        assert!((400..1200).contains(&size), "a ConfigMap is {size} bytes");
    }
}

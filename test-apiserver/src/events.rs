//! Core `v1` Events the simulated controllers record, as `kubectl describe` shows them: one per
//! object, reason and message, its `count` raised when it repeats.

use serde_json::{Value, json};

use crate::meta::{self, meta_str};
use crate::storage::{GroupResource, ObjectKey};
use crate::store::Store;

fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.bytes().chain(std::iter::once(0))) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Records a `Warning` (or `Normal`) event about `involved` from `component`.
pub(crate) fn record(store: &Store, involved: &Value, kind: &str, warning: bool, reason: &str, message: &str) {
    let ns = match meta_str(involved, "namespace") {
        "" => "default",
        ns => ns,
    };
    let uid = meta_str(involved, "uid");
    let name = format!("{}.{:016x}", meta_str(involved, "name"), fnv(&[uid, reason, message]));
    let now = meta::now();
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"apiVersion": involved["apiVersion"], "kind": kind, "name": meta_str(involved, "name"),
            "namespace": meta_str(involved, "namespace"), "uid": uid, "resourceVersion": meta_str(involved, "resourceVersion")},
        "reason": reason, "message": message, "type": if warning { "Warning" } else { "Normal" },
        "source": {"component": "lifeboat-test-apiserver"}, "reportingComponent": "lifeboat-test-apiserver",
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    });
    if store.create(event).is_err() {
        store.mutate(&GroupResource::new("", "events"), &ObjectKey::new(ns, &name), |o| {
            o["count"] = json!(o["count"].as_i64().unwrap_or(1) + 1);
            o["lastTimestamp"] = json!(now);
        });
    }
}

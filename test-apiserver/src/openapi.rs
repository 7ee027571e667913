//! A minimal OpenAPI v3 (`/openapi/v3` and one document per group version). It lists every
//! served path with its operations, `x-kubernetes-group-version-kind` and query parameters, so
//! kubectl sees that the server supports `fieldValidation` and leaves validation to the server.
//! It carries no schemas: see the crate docs for what that leaves out.

use serde_json::{Map, Value, json};

use crate::catalog::{Catalog, GroupVersion, ResourceDef};

fn gv_path(gv: &GroupVersion) -> String {
    if gv.group.is_empty() { format!("api/{}", gv.version) } else { format!("apis/{}/{}", gv.group, gv.version) }
}

fn query(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn op(action: &str, r: &ResourceDef, params: &[&str]) -> Value {
    let ps: Vec<Value> = params.iter().map(|p| query(p)).collect();
    json!({
        "operationId": format!("{action}{}", r.kind),
        "parameters": ps,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
    })
}

/// The document for one group version.
pub fn document(gv: &GroupVersion, server_version: &str) -> Value {
    let base = format!("/{}", gv_path(gv));
    let write = ["dryRun", "fieldManager", "fieldValidation"];
    let patch = ["dryRun", "fieldManager", "fieldValidation", "force"];
    let list = [
        "labelSelector",
        "fieldSelector",
        "limit",
        "continue",
        "resourceVersion",
        "resourceVersionMatch",
        "watch",
        "allowWatchBookmarks",
        "sendInitialEvents",
        "timeoutSeconds",
    ];
    let mut paths = Map::new();
    for r in &gv.resources {
        let prefix = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        let mut coll = Map::new();
        if r.allows("list") {
            coll.insert("get".into(), op("list", r, &list));
        }
        if r.allows("create") {
            coll.insert("post".into(), op("post", r, &write));
        }
        if r.allows("deletecollection") {
            coll.insert("delete".into(), op("deletecollection", r, &list));
        }
        paths.insert(prefix.clone(), Value::Object(coll));
        let mut item = Map::new();
        for (verb, method, action, params) in [
            ("get", "get", "get", &[][..]),
            ("update", "put", "put", &write[..]),
            ("patch", "patch", "patch", &patch[..]),
            ("delete", "delete", "delete", &["dryRun", "propagationPolicy", "gracePeriodSeconds"][..]),
        ] {
            if r.allows(verb) {
                item.insert(method.into(), op(action, r, params));
            }
        }
        paths.insert(format!("{prefix}/{{name}}"), Value::Object(item));
        for s in &r.subresources {
            let mut sub = Map::new();
            for (verb, method, params) in
                [("get", "get", &[][..]), ("update", "put", &write[..]), ("patch", "patch", &patch[..])]
            {
                if s.verbs.iter().any(|v| v == verb) {
                    sub.insert(method.into(), op(verb, r, params));
                }
            }
            paths.insert(format!("{prefix}/{{name}}/{}", s.name), Value::Object(sub));
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": server_version},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

/// A stable hash of a document, used in `serverRelativeURL` so clients can cache.
fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`: the index of group-version documents.
pub fn index(cat: &Catalog, server_version: &str) -> Value {
    let mut paths = Map::new();
    for gv in &cat.versions {
        let p = gv_path(gv);
        let hash = fnv(&document(gv, server_version).to_string());
        paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}));
    }
    json!({"paths": paths})
}

/// The document at `/openapi/v3/{path}` (`api/v1`, `apis/apps/v1`).
pub fn lookup(cat: &Catalog, path: &str, server_version: &str) -> Option<Value> {
    cat.versions.iter().find(|gv| gv_path(gv) == path).map(|gv| document(gv, server_version))
}

/// The Content-Type the real server answers protobuf OpenAPI v2 with (clients ask for
/// `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, which Go's mime parser rejects
/// as a response type).
pub const V2_PROTOBUF: &str = "application/octet-stream";

fn proto_string(field: u8, s: &str, out: &mut Vec<u8>) {
    out.push((field << 3) | 2);
    // Lengths here are short constants (< 128), so one varint byte suffices.
    out.push(u8::try_from(s.len()).unwrap_or(0));
    out.extend_from_slice(s.as_bytes());
}

/// `/openapi/v2` as protobuf (gnostic `openapi_v2.Document`): `swagger` and `info` only, no paths
/// or definitions. kubectl 1.27 needs the document to exist; without definitions it falls back
/// to its compiled-in types for strategic merge patches.
pub fn v2_protobuf(server_version: &str) -> Vec<u8> {
    let mut info = Vec::new();
    proto_string(1, "Kubernetes", &mut info);
    proto_string(2, &server_version.chars().take(64).collect::<String>(), &mut info);
    let mut out = Vec::new();
    proto_string(1, "2.0", &mut out);
    out.push((2 << 3) | 2);
    out.push(u8::try_from(info.len()).unwrap_or(0));
    out.extend_from_slice(&info);
    out
}

/// `/openapi/v2` as JSON, with the same (empty) content as [`v2_protobuf`].
pub fn v2_json(server_version: &str) -> Value {
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": server_version}, "paths": {}, "definitions": {}})
}

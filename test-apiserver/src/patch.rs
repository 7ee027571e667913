//! Patch semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and the subset of
//! strategic merge patch that kubectl and controllers send (merge keys for the common lists,
//! `$patch`, `$retainKeys`, `$setElementOrder/…`, `$deleteFromPrimitiveList/…`).

use serde_json::{Map, Value};

use crate::status::ApiError;

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else { return patch.clone() };
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

fn unescape_pointer(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path.strip_prefix('/').ok_or_else(|| format!("invalid JSON pointer: \"{path}\""))?;
    Ok(rest.split('/').map(unescape_pointer).collect())
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String], path: &str) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("doc is missing path: \"{path}\": missing value"))?;
    }
    Ok(cur)
}

fn pointer_get(doc: &Value, path: &str) -> Result<Value, String> {
    doc.pointer(path).cloned().ok_or_else(|| format!("doc is missing path: \"{path}\": missing value"))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let toks = tokens(path)?;
    let Some((last, init)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, init, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>().map_err(|_| format!("invalid index: {last}"))?
            };
            if idx > a.len() {
                return Err(format!("unable to access invalid index: {idx}"));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(format!("doc is missing path: \"{path}\": missing value")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let toks = tokens(path)?;
    let (last, init) = toks.split_last().ok_or_else(|| "cannot remove the whole document".to_string())?;
    let missing = || format!("unable to remove nonexistent key: {last}: missing value");
    match parent_mut(doc, init, path)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let idx = last.parse::<usize>().map_err(|_| missing())?;
            if idx >= a.len() {
                return Err(format!("unable to access invalid index: {idx}"));
            }
            Ok(a.remove(idx))
        }
        _ => Err(missing()),
    }
}

/// RFC 6902 JSON patch.
///
/// # Errors
/// 400 for a malformed patch document, 422 when an operation cannot be applied (as the real server).
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch"))?;
    let mut doc = target.clone();
    for op in ops {
        let kind = op["op"].as_str().unwrap_or_default();
        let path = op["path"].as_str().ok_or_else(|| ApiError::bad_request("Unable to get path: missing path"))?;
        let value = || op.get("value").cloned().ok_or_else(|| format!("missing value for op {kind}"));
        let from = || op["from"].as_str().map(String::from).ok_or_else(|| format!("missing from for op {kind}"));
        let result: Result<(), String> = match kind {
            "add" => value().and_then(|v| add(&mut doc, path, v)),
            "remove" => remove(&mut doc, path).map(|_| ()),
            "replace" => value().and_then(|v| remove(&mut doc, path).and_then(|_| add(&mut doc, path, v))),
            "move" => from().and_then(|f| remove(&mut doc, &f)).and_then(|v| add(&mut doc, path, v)),
            "copy" => from().and_then(|f| pointer_get(&doc, &f)).and_then(|v| add(&mut doc, path, v)),
            "test" => value().and_then(|v| {
                if doc.pointer(path) == Some(&v) {
                    Ok(())
                } else {
                    Err(format!("testing value {path} failed: test failed"))
                }
            }),
            other => return Err(ApiError::bad_request(format!("Unexpected kind: {other}"))),
        };
        result.map_err(|msg| ApiError {
            code: 422,
            reason: "Invalid".into(),
            message: msg,
            details: None,
            retry_after: None,
        })?;
    }
    Ok(doc)
}

/// The merge key of a list field under strategic merge patch, decided from the field name and
/// its elements (for `ports`, container ports merge on `containerPort`, service ports on `port`).
fn merge_key(field: &str, sample: &[&Value]) -> Option<&'static str> {
    let has = |k: &str| sample.iter().any(|v| v.get(k).is_some());
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates"
        | "readinessGates" => Some(if field == "readinessGates" { "conditionType" } else { "name" }),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "hostAliases" => Some("ip"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "topologySpreadConstraints" => Some("topologyKey"),
        "ports" if has("containerPort") => Some("containerPort"),
        "ports" => Some("port"),
        _ => None,
    }
}

/// Primitive lists whose patch strategy is `merge` (union) rather than replace.
fn merges_primitives(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Strategic merge patch (the subset described in the module docs).
///
/// # Errors
/// 400 for a malformed directive.
pub fn strategic_merge(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let Value::Object(p) = patch else { return Ok(patch.clone()) };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut m = p.clone();
            m.remove("$patch");
            return Ok(Value::Object(m));
        }
        Some("delete") => return Ok(Value::Null),
        Some(other) => return Err(ApiError::bad_request(format!("Unknown patch type: {other} in map: {patch}"))),
        None => {}
    }
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if k == "$retainKeys" || k.starts_with("$setElementOrder/") || k.starts_with("$deleteFromPrimitiveList/") {
            continue;
        }
        if v.is_null() {
            out.remove(k);
            continue;
        }
        let current = out.get(k).cloned().unwrap_or(Value::Null);
        let merged = match (v, &current) {
            (Value::Object(_), _) => strategic_merge(&current, v)?,
            (Value::Array(items), _) => merge_list(k, current.as_array().map(Vec::as_slice).unwrap_or(&[]), items)?,
            _ => v.clone(),
        };
        if merged.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), merged);
        }
    }
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/")
            && let (Some(Value::Array(cur)), Some(del)) = (out.get_mut(field), v.as_array())
        {
            cur.retain(|x| !del.contains(x));
        }
        if let Some(field) = k.strip_prefix("$setElementOrder/")
            && let (Some(Value::Array(cur)), Some(order)) = (out.get_mut(field), v.as_array())
        {
            reorder(field, cur, order);
        }
    }
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        out.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)));
    }
    Ok(Value::Object(out))
}

fn reorder(field: &str, cur: &mut [Value], order: &[Value]) {
    let all: Vec<&Value> = cur.iter().chain(order.iter()).collect();
    let key = merge_key(field, &all);
    let id = |v: &Value| match key {
        Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
        None => v.clone(),
    };
    let pos = |v: &Value| order.iter().position(|o| id(o) == id(v)).unwrap_or(usize::MAX);
    cur.sort_by_key(|v| pos(v));
}

fn merge_list(field: &str, current: &[Value], patch: &[Value]) -> Result<Value, ApiError> {
    let objects = patch.iter().all(Value::is_object) && !patch.is_empty();
    if !objects {
        if merges_primitives(field) {
            let mut out = current.to_vec();
            for v in patch {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            return Ok(Value::Array(out));
        }
        return Ok(Value::Array(patch.to_vec()));
    }
    let all: Vec<&Value> = current.iter().chain(patch.iter()).collect();
    let Some(key) = merge_key(field, &all) else {
        // Atomic list: replaced as a whole, with directives stripped.
        return patch.iter().map(|v| strategic_merge(&Value::Null, v)).collect::<Result<Vec<_>, _>>().map(Value::Array);
    };
    let mut out = current.to_vec();
    for item in patch {
        let id = item.get(key).cloned().unwrap_or(Value::Null);
        let found = out.iter().position(|c| c.get(key) == Some(&id));
        let directive = item.get("$patch").and_then(Value::as_str);
        match (found, directive) {
            (Some(i), Some("delete")) => {
                out.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), _) => {
                let merged = strategic_merge(&out[i], item)?;
                out[i] = merged;
            }
            (None, _) => out.push(strategic_merge(&Value::Null, item)?),
        }
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let patch = json!({"a": "z", "c": {"f": null}, "l": [3]});
        assert_eq!(merge_patch(&target, &patch), json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn json_patch_applies_and_tests() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}, "items": [1, 2]});
        let patch = json!([
            {"op": "test", "path": "/metadata/labels/a", "value": "1"},
            {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
            {"op": "remove", "path": "/metadata/labels/a"},
            {"op": "add", "path": "/items/-", "value": 3},
            {"op": "replace", "path": "/items/0", "value": 0},
            {"op": "copy", "from": "/items/0", "path": "/first"},
            {"op": "move", "from": "/first", "path": "/moved"}
        ]);
        let out = json_patch(&doc, &patch).expect("applies");
        assert_eq!(out, json!({"metadata": {"labels": {"b/c": "2"}}, "items": [0, 2, 3], "moved": 0}));
        let failing = json!([{"op": "test", "path": "/items/0", "value": 9}]);
        assert_eq!(json_patch(&doc, &failing).expect_err("test fails").code, 422);
        let missing = json!([{"op": "remove", "path": "/nope"}]);
        assert_eq!(json_patch(&doc, &missing).expect_err("missing").code, 422);
        assert_eq!(json_patch(&doc, &json!({"op": "add"})).expect_err("not a list").code, 400);
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let live = json!({"spec": {"containers": [
            {"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "side:1"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
            "containers": [{"name": "app", "image": "app:2"}]
        }});
        let out = strategic_merge(&live, &patch).expect("merges");
        assert_eq!(out["spec"]["containers"][0]["name"], "sidecar");
        assert_eq!(
            out["spec"]["containers"][1],
            json!({"name": "app", "image": "app:2", "ports": [{"containerPort": 80}]})
        );
    }

    #[test]
    fn strategic_merge_directives() {
        let live = json!({"metadata": {"finalizers": ["a"]}, "spec": {"env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, "args": ["x", "y"]}});
        let patch = json!({
            "metadata": {"finalizers": ["b"]},
            "spec": {
                "env": [{"name": "X", "$patch": "delete"}],
                "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                "args": ["z"],
                "$deleteFromPrimitiveList/missing": ["q"]
            }
        });
        let out = strategic_merge(&live, &patch).expect("merges");
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(out["spec"]["env"], json!([{"name": "Y", "value": "2"}]));
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(out["spec"]["args"], json!(["z"]));
        let replaced = strategic_merge(&live, &json!({"spec": {"$patch": "replace", "args": []}})).expect("replace");
        assert_eq!(replaced["spec"], json!({"args": []}));
        let deleted = strategic_merge(&json!({"metadata": {"finalizers": ["a", "b"]}}), &json!({"$deleteFromPrimitiveList/finalizers": ["a"], "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}))
            .expect("delete from list");
        assert_eq!(deleted["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn service_ports_merge_on_port() {
        let live = json!({"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]});
        let out = strategic_merge(&live, &json!({"ports": [{"port": 443, "targetPort": 8443}]})).expect("merges");
        assert_eq!(out["ports"][1], json!({"port": 443, "name": "https", "targetPort": 8443}));
        assert_eq!(out["ports"].as_array().map(Vec::len), Some(2));
    }
}

//! Structural-schema pruning of custom resources, as the apiextensions server does: fields not
//! declared in the CRD's `openAPIV3Schema` are dropped (and with `fieldValidation=Strict`
//! rejected), except under `x-kubernetes-preserve-unknown-fields`.

use serde_json::Value;

use crate::status::ApiError;

fn walk(v: &mut Value, schema: &Value, path: &str, unknown: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
            let embedded = schema["x-kubernetes-embedded-resource"] == true;
            let props = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let child_path = format!("{path}.{k}");
                let child_schema =
                    props.and_then(|p| p.get(&k)).or_else(|| additional.is_object().then_some(additional));
                match child_schema {
                    Some(s) => {
                        if let Some(child) = map.get_mut(&k) {
                            walk(child, s, &child_path, unknown);
                        }
                    }
                    None if preserve || *additional == Value::Bool(true) => {}
                    None if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") => {}
                    None => {
                        map.remove(&k);
                        unknown.push(child_path.trim_start_matches('.').to_string());
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Prunes `obj` (a whole custom resource) against `schema`; returns the dropped field paths.
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let Value::Object(map) = obj else { return unknown };
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match schema["properties"].get(&k) {
            Some(s) => {
                if let Some(child) = map.get_mut(&k) {
                    walk(child, s, &format!(".{k}"), &mut unknown);
                }
            }
            None if schema["x-kubernetes-preserve-unknown-fields"] == true => {}
            None => {
                map.remove(&k);
                unknown.push(k);
            }
        }
    }
    unknown
}

/// Prunes, and with `strict` fails on any unknown field with the real server's message.
///
/// # Errors
/// 400 `BadRequest` listing the unknown fields when `strict`.
pub(crate) fn apply(obj: &mut Value, schema: Option<&Value>, strict: bool) -> Result<(), ApiError> {
    let Some(schema) = schema else { return Ok(()) };
    let unknown = prune(obj, schema);
    if strict && !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
        return Err(ApiError::bad_request(format!("strict decoding error: {}", list.join(", "))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_undeclared_fields_but_keeps_preserved_ones() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
            "status": {"type": "object"}}});
        let mut obj = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"},
            "spec": {"size": 1, "typo": 2, "tags": [{"k": "a", "v": "b"}], "labels": {"any": "x"}, "free": {"x": {"y": 1}}},
            "extra": true});
        let dropped = prune(&mut obj, &schema);
        assert_eq!(dropped, ["extra", "spec.tags[0].v", "spec.typo"]);
        assert_eq!(
            obj["spec"],
            json!({"size": 1, "tags": [{"k": "a"}], "labels": {"any": "x"}, "free": {"x": {"y": 1}}})
        );
        let mut again = json!({"spec": {"typo": 1}});
        let err = apply(&mut again, Some(&schema), true).expect_err("strict");
        assert_eq!(err.message, "strict decoding error: unknown field \"spec.typo\"");
    }
}

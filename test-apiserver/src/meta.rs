//! Object metadata rules: name validation with the real messages, `generateName`, timestamps and
//! a minimal `managedFields`.

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::status::Cause;

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// The name rule a resource applies to `metadata.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 label, at most 63 characters (namespaces, services).
    Label,
    /// RFC 1123 subdomain, at most 253 characters (most resources).
    Subdomain,
    /// A path segment: anything but `.`, `..`, `/` and `%` (RBAC objects).
    PathSegment,
}

/// The rule for a built-in or custom resource.
pub fn name_rule(group: &str, resource: &str) -> NameRule {
    match (group, resource) {
        ("", "namespaces" | "services") => NameRule::Label,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is an RFC 1123 label of at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && is_label(s)
}

/// Whether `s` is an RFC 1123 subdomain of at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// The causes for an invalid `metadata.name` (empty when valid).
pub fn validate_name(rule: NameRule, name: &str, field: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    match rule {
        NameRule::Label => {
            if name.len() > 63 {
                out.push(Cause::invalid(field, name, "must be no more than 63 characters"));
            }
            if !is_label(name) {
                out.push(Cause::invalid(field, name, LABEL_MSG));
            }
        }
        NameRule::Subdomain => {
            if name.len() > 253 {
                out.push(Cause::invalid(field, name, "must be no more than 253 characters"));
            }
            if !name.split('.').all(is_label) {
                out.push(Cause::invalid(field, name, SUBDOMAIN_MSG));
            }
        }
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                out.push(Cause::invalid(field, name, &format!("may not be '{name}'")));
            }
            for bad in ["/", "%"] {
                if name.contains(bad) {
                    out.push(Cause::invalid(field, name, &format!("may not contain '{bad}'")));
                }
            }
        }
    }
    out
}

/// A random suffix as `generateName` uses: five characters from the real alphabet.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes.iter().take(5).map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

/// The current time as the API server writes it (`2024-01-02T03:04:05Z`).
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The metadata map of an object (created if missing); `None` when `obj` is not an object.
pub fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let o = obj.as_object_mut()?;
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut()
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or_default()
}

/// `FieldsV1` for an object: every leaf path, lists treated as atomic, `status` excluded unless
/// `status_only`, in which case only `status` is described.
pub fn fields_v1(obj: &Value, status_only: bool) -> Value {
    fn walk(v: &Value) -> Value {
        match v {
            Value::Object(m) if !m.is_empty() => {
                let mut out = Map::new();
                out.insert(".".into(), json!({}));
                for (k, child) in m {
                    out.insert(format!("f:{k}"), walk(child));
                }
                Value::Object(out)
            }
            _ => json!({}),
        }
    }
    let mut out = Map::new();
    if let Value::Object(m) = obj {
        for (k, v) in m {
            let keep = match k.as_str() {
                "apiVersion" | "kind" => false,
                "status" => status_only,
                "metadata" => !status_only,
                _ => !status_only,
            };
            if !keep {
                continue;
            }
            if k == "metadata" {
                let mut meta = Map::new();
                for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(x) = v.get(field) {
                        meta.insert(format!("f:{field}"), walk(x));
                    }
                }
                if !meta.is_empty() {
                    out.insert("f:metadata".into(), Value::Object(meta));
                }
                continue;
            }
            let mut inner = walk(v);
            if let Some(o) = inner.as_object_mut() {
                o.remove(".");
            }
            out.insert(format!("f:{k}"), inner);
        }
    }
    Value::Object(out)
}

/// Records that `manager` wrote `obj` with `operation` (`Update` or `Apply`).
pub fn record_manager(obj: &mut Value, manager: &str, operation: &str, api_version: &str, subresource: Option<&str>) {
    let fields = fields_v1(obj, subresource == Some("status"));
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if let (Some(sub), Some(e)) = (subresource, entry.as_object_mut()) {
        e.insert("subresource".into(), json!(sub));
    }
    let Some(meta) = meta_mut(obj) else { return };
    let mut list: Vec<Value> = meta.get("managedFields").and_then(Value::as_array).cloned().unwrap_or_default();
    list.retain(|m| {
        !(m["manager"] == manager && m["operation"] == operation && m["subresource"].as_str() == subresource)
    });
    list.push(entry);
    meta.insert("managedFields".into(), Value::Array(list));
}

/// The manager name from `fieldManager`, else the User-Agent's product (as the real server).
pub fn manager_name(field_manager: Option<&str>, user_agent: Option<&str>) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    user_agent.and_then(|ua| ua.split('/').next()).filter(|s| !s.is_empty()).unwrap_or("unknown").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns_1123() {
        assert!(validate_name(NameRule::Label, "my-ns", "metadata.name").is_empty());
        let causes = validate_name(NameRule::Label, "My_NS", "metadata.name");
        assert_eq!(causes.len(), 1);
        assert!(causes[0].message.starts_with("Invalid value: \"My_NS\": a lowercase RFC 1123 label"));
        assert!(validate_name(NameRule::Subdomain, "a.b-c", "metadata.name").is_empty());
        assert!(!validate_name(NameRule::Subdomain, "a..b", "metadata.name").is_empty());
        assert!(!validate_name(NameRule::Label, &"a".repeat(64), "metadata.name").is_empty());
        assert!(validate_name(NameRule::PathSegment, "system:controller:x", "metadata.name").is_empty());
        assert!(!validate_name(NameRule::PathSegment, "a/b", "metadata.name").is_empty());
    }

    #[test]
    fn generated_suffixes_use_the_real_alphabet() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn managed_fields_describe_the_written_fields() {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v"}});
        record_manager(&mut obj, "kubectl", "Update", "v1", None);
        let mf = &obj["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "kubectl");
        assert_eq!(mf["fieldsV1"], json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}));
        record_manager(&mut obj, "kubectl", "Update", "v1", None);
        assert_eq!(obj["metadata"]["managedFields"].as_array().map(Vec::len), Some(1));
        assert_eq!(manager_name(None, Some("kubectl/v1.33.0 (linux/amd64)")), "kubectl");
    }
}

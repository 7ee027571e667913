//! Field selectors (`metadata.name=x,status.phase!=Running`) with the escapes of
//! `k8s.io/apimachinery/pkg/fields`, and the fields each resource supports.

use serde_json::Value;

use crate::status::ApiError;

/// A parsed field selector: `field=value`, `field==value`, `field!=value`, joined by commas.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

/// Splits on unescaped `sep`, keeping escapes (`\,`, `\=`, `\\`) for later.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let (mut out, mut cur, mut esc) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        if esc {
            cur.push('\\');
            cur.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn unescape(s: &str) -> String {
    let (mut out, mut esc) = (String::new(), false);
    for c in s.chars() {
        if esc || c != '\\' {
            out.push(c);
            esc = false;
        } else {
            esc = true;
        }
    }
    out
}

impl FieldSelector {
    /// Parses a selector string; an empty string selects everything.
    ///
    /// # Errors
    /// A 400 `BadRequest` for a term without an operator.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let mut terms = Vec::new();
        for term in split_unescaped(s, ',') {
            let parsed = ["!=", "==", "="]
                .iter()
                .find_map(|op| term.split_once(op).map(|(f, v)| (f.trim().to_string(), *op != "!=", unescape(v))));
            match parsed {
                Some(t) => terms.push(t),
                None => {
                    return Err(ApiError::bad_request(format!("invalid selector: '{s}'; can't understand '{term}'")));
                }
            }
        }
        Ok(Self(terms))
    }

    /// Checks that every field is one the resource supports.
    ///
    /// # Errors
    /// The real server's 400 for an unsupported field label.
    pub fn check_fields(&self, supported: &[&str], custom: bool) -> Result<(), ApiError> {
        for (field, _, _) in &self.0 {
            if !supported.contains(&field.as_str()) {
                let msg = if custom {
                    format!("\"{field}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")
                } else {
                    format!("field label not supported: {field}")
                };
                return Err(ApiError::bad_request(msg));
            }
        }
        Ok(())
    }

    /// Whether `obj` satisfies every term (fields are dotted JSON paths).
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, eq, value)| {
            let mut cur = obj;
            for part in field.split('.') {
                cur = &cur[part];
            }
            let actual = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (actual == *value) == *eq
        })
    }

    /// The value the selector pins `field` to with `=`, if any.
    pub fn pinned(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, eq, _)| f == field && *eq).map(|(_, _, v)| v.as_str())
    }
}

/// The fields a resource accepts in field selectors besides `metadata.name` and `metadata.namespace`.
pub(crate) fn supported_fields(group: &str, resource: &str) -> Vec<&'static str> {
    let mut f = vec!["metadata.name", "metadata.namespace"];
    match (group, resource) {
        ("", "pods") => f.extend([
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]),
        ("", "secrets") => f.push("type"),
        ("", "namespaces") => f.push("status.phase"),
        ("", "events") => f.extend([
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]),
        ("", "persistentvolumeclaims") => f.push("spec.volumeName"),
        ("", "nodes") => f.push("spec.unschedulable"),
        ("", "replicationcontrollers") => f.push("status.replicas"),
        ("batch", "jobs") => f.push("status.successful"),
        ("apps", "replicasets") => f.push("status.replicas"),
        _ => {}
    }
    f
}

//! Label and field selectors, parsed with the grammar of `k8s.io/apimachinery/pkg/labels` and
//! `pkg/fields`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::status::ApiError;

/// One label requirement.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (matches when the key is absent).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (matches when the key is absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
    /// `key>5`.
    GreaterThan(String, i64),
    /// `key<5`.
    LessThan(String, i64),
}

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector(pub Vec<Requirement>);

fn bad(msg: String) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {msg}"))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn validate_name_part(s: &str, what: &str) -> Result<(), ApiError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars().all(is_name_char)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "<nil>: Invalid value: \"{s}\": {what} must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

/// Checks a label key: optional DNS subdomain prefix, `/`, and a name of at most 63 characters.
pub(crate) fn validate_key(key: &str) -> Result<(), ApiError> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            let prefix_ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|l| {
                    !l.is_empty()
                        && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            if !prefix_ok {
                return Err(bad(format!("<nil>: Invalid value: \"{key}\": prefix part must be a DNS-1123 subdomain")));
            }
            name
        }
        None => key,
    };
    validate_name_part(name, "name part")
}

fn validate_value(v: &str) -> Result<(), ApiError> {
    if v.is_empty() { Ok(()) } else { validate_name_part(v, "a valid label") }
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Result<Vec<&str>, ApiError> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(bad(format!("found unbalanced parentheses in '{s}'")));
        }
    }
    if depth != 0 {
        return Err(bad("found '', expected: ')'".into()));
    }
    out.push(&s[start..]);
    Ok(out)
}

fn parse_set(key: &str, rest: &str) -> Result<Vec<String>, ApiError> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| bad(format!("found '{}', expected: '('", rest.trim())))?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    for v in &values {
        validate_value(v)?;
    }
    if values.len() == 1 && values[0].is_empty() && key.is_empty() {
        return Err(bad("for 'in', 'notin' operators, values set can't be empty".into()));
    }
    Ok(values)
}

fn parse_requirement(raw: &str) -> Result<Requirement, ApiError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(bad("found '', expected: !, identifier, or 'end of string'".into()));
    }
    if let Some(key) = s.strip_prefix('!') {
        let key = key.trim();
        validate_key(key)?;
        return Ok(Requirement::DoesNotExist(key.into()));
    }
    for (op, sep) in [("!=", "!="), ("==", "=="), ("=", "="), (">", ">"), ("<", "<")] {
        if let Some((key, value)) = s.split_once(sep) {
            let (key, value) = (key.trim(), value.trim());
            validate_key(key)?;
            return match op {
                ">" | "<" => {
                    let n: i64 = value
                        .parse()
                        .map_err(|_| bad(format!("for 'Gt', 'Lt' operators, the value must be an integer: {value}")))?;
                    Ok(if op == ">" {
                        Requirement::GreaterThan(key.into(), n)
                    } else {
                        Requirement::LessThan(key.into(), n)
                    })
                }
                "!=" => {
                    validate_value(value)?;
                    Ok(Requirement::NotEquals(key.into(), value.into()))
                }
                _ => {
                    validate_value(value)?;
                    Ok(Requirement::Equals(key.into(), value.into()))
                }
            };
        }
    }
    let words: Vec<&str> = s.splitn(2, char::is_whitespace).collect();
    match words.as_slice() {
        [key] => {
            validate_key(key)?;
            Ok(Requirement::Exists((*key).into()))
        }
        [key, rest] => {
            validate_key(key)?;
            let rest = rest.trim_start();
            if let Some(set) = rest.strip_prefix("notin") {
                Ok(Requirement::NotIn((*key).into(), parse_set(key, set)?))
            } else if let Some(set) = rest.strip_prefix("in") {
                Ok(Requirement::In((*key).into(), parse_set(key, set)?))
            } else {
                Err(bad(format!("found '{rest}', expected: in, notin, =, ==, !=, gt, lt")))
            }
        }
        _ => Err(bad(format!("found '{s}', expected: identifier"))),
    }
}

impl LabelSelector {
    /// Parses a selector string; an empty string selects everything.
    ///
    /// # Errors
    /// A 400 `BadRequest` for a malformed selector.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        split_top(s)?.into_iter().map(parse_requirement).collect::<Result<Vec<_>, _>>().map(Self)
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|x| !vs.contains(x)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::GreaterThan(k, n) => labels.get(k).and_then(|x| x.parse::<i64>().ok()).is_some_and(|x| x > *n),
            Requirement::LessThan(k, n) => labels.get(k).and_then(|x| x.parse::<i64>().ok()).is_some_and(|x| x < *n),
        })
    }

    /// Whether it selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The labels of an object.
pub(crate) fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{FieldSelector, supported_fields};
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_equality_and_set_based_requirements() {
        let s = LabelSelector::parse("app=web, tier==front,env!=prod,zone in (a, b),team notin (x),release,!legacy")
            .expect("valid selector");
        assert_eq!(s.0.len(), 7);
        assert_eq!(s.0[3], Requirement::In("zone".into(), vec!["a".into(), "b".into()]));
        let good = labels(&[("app", "web"), ("tier", "front"), ("zone", "b"), ("release", "1")]);
        assert!(s.matches(&good));
        let mut bad = good.clone();
        bad.insert("legacy".into(), "true".into());
        assert!(!s.matches(&bad));
    }

    #[test]
    fn negative_requirements_match_missing_keys() {
        assert!(LabelSelector::parse("env!=prod").expect("valid").matches(&labels(&[])));
        assert!(LabelSelector::parse("env notin (prod)").expect("valid").matches(&labels(&[])));
        assert!(!LabelSelector::parse("env in (prod)").expect("valid").matches(&labels(&[])));
    }

    #[test]
    fn prefixed_keys_and_numeric_comparisons() {
        let s = LabelSelector::parse("app.kubernetes.io/name=db,replicas>2").expect("valid");
        assert!(s.matches(&labels(&[("app.kubernetes.io/name", "db"), ("replicas", "3")])));
        assert!(!s.matches(&labels(&[("app.kubernetes.io/name", "db"), ("replicas", "2")])));
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in ["app=we b", "-app=x", "app in (a,b", "app in a", "a=b,,c=d", "x>y", "UPPER/x=y"] {
            let err = LabelSelector::parse(bad).expect_err(bad);
            assert_eq!(err.code, 400, "{bad}");
        }
    }

    #[test]
    fn field_selectors_match_dotted_paths_and_escapes() {
        let obj = json!({"metadata": {"name": "a,b", "namespace": "ns"}, "status": {"phase": "Running"}});
        assert!(FieldSelector::parse(r"metadata.name=a\,b,metadata.namespace==ns").expect("valid").matches(&obj));
        assert!(FieldSelector::parse("status.phase!=Pending").expect("valid").matches(&obj));
        assert!(!FieldSelector::parse("metadata.namespace=other").expect("valid").matches(&obj));
        assert_eq!(FieldSelector::parse("metadata.name").expect_err("no operator").code, 400);
        let unsupported = FieldSelector::parse("spec.foo=1").expect("valid");
        assert_eq!(
            unsupported.check_fields(&supported_fields("", "configmaps"), false).expect_err("unsupported").message,
            "field label not supported: spec.foo"
        );
    }
}

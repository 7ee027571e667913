//! A Kubernetes label selector, parsed and evaluated without a cluster. `kube-core` can match
//! a `LabelSelector` struct but parses no selector strings, and the domain takes no `kube`
//! dependency, so this is the grammar of `k8s.io/apimachinery/pkg/labels.Parse` minus the
//! numeric `>`/`<` operators: requirements joined by `,` (all must hold), each one of
//! `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`, `!key`.

use std::collections::BTreeMap;
use std::fmt;

/// Why a selector does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("requirement {requirement:?}: {reason}")]
pub struct SelectorError {
    /// The requirement that failed.
    pub requirement: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// One requirement on an object's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value`: also holds when the key is absent.
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)`: also holds when the key is absent.
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

impl Requirement {
    fn holds(&self, labels: &BTreeMap<String, String>) -> bool {
        let get = |k: &String| labels.get(k).map(String::as_str);
        match self {
            Self::Equals(k, v) => get(k) == Some(v.as_str()),
            Self::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Self::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Self::NotIn(k, vs) => get(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Self::Exists(k) => labels.contains_key(k),
            Self::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed selector: every requirement must hold. The empty selector selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    text: String,
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`SelectorError`] naming the first requirement that does not parse.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        if !text.trim().is_empty() {
            for part in split_top_level(text) {
                requirements.push(parse_requirement(part.trim())?);
            }
        }
        Ok(Self { text: text.trim().to_owned(), requirements })
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.holds(labels))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits at commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

fn valid_key(k: &str) -> bool {
    let name = k.rsplit_once('/').map_or(k, |(prefix, name)| if prefix.is_empty() { "" } else { name });
    !name.is_empty() && k.matches('/').count() <= 1 && k.len() <= 253 + 1 + 63 && valid_value(name)
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
    let error = |reason| SelectorError { requirement: part.to_owned(), reason };
    let fail = |reason| Err(error(reason));
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        return if valid_key(key) { Ok(Requirement::DoesNotExist(key.to_owned())) } else { fail("invalid label key") };
    }
    let end = part.find(|c: char| !is_key_char(c)).unwrap_or(part.len());
    let (key, rest) = (&part[..end], part[end..].trim_start());
    if !valid_key(key) {
        return fail("invalid label key");
    }
    let key = key.to_owned();
    let value = |v: &str| {
        let v = v.trim();
        if valid_value(v) { Ok(v.to_owned()) } else { Err(error("invalid label value")) }
    };
    if rest.is_empty() {
        Ok(Requirement::Exists(key))
    } else if let Some(v) = rest.strip_prefix("==") {
        Ok(Requirement::Equals(key, value(v)?))
    } else if let Some(v) = rest.strip_prefix("!=") {
        Ok(Requirement::NotEquals(key, value(v)?))
    } else if let Some(v) = rest.strip_prefix('=') {
        Ok(Requirement::Equals(key, value(v)?))
    } else if let Some(set) = rest.strip_prefix("notin") {
        Ok(Requirement::NotIn(key, parse_set(part, set)?))
    } else if let Some(set) = rest.strip_prefix("in") {
        Ok(Requirement::In(key, parse_set(part, set)?))
    } else {
        fail("expected =, ==, !=, in or notin after the key")
    }
}

fn parse_set(part: &str, set: &str) -> Result<Vec<String>, SelectorError> {
    let fail = |reason| Err(SelectorError { requirement: part.to_owned(), reason });
    let Some(inner) = set.trim().strip_prefix('(').and_then(|s| s.strip_suffix(')')) else {
        return fail("expected a parenthesised list of values after in/notin");
    };
    if inner.trim().is_empty() {
        return fail("the values of in/notin must not be empty");
    }
    let mut values = Vec::new();
    for v in inner.split(',') {
        let v = v.trim();
        if !valid_value(v) {
            return fail("invalid label value");
        }
        values.push(v.to_owned());
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn parses_every_operator() {
        let s = LabelSelector::parse(
            "app=web, tier==front,env!=dev,zone in (a, b),team notin (x),app.kubernetes.io/name,!legacy",
        )
        .unwrap();
        assert_eq!(
            s.requirements(),
            [
                Requirement::Equals("app".into(), "web".into()),
                Requirement::Equals("tier".into(), "front".into()),
                Requirement::NotEquals("env".into(), "dev".into()),
                Requirement::In("zone".into(), vec!["a".into(), "b".into()]),
                Requirement::NotIn("team".into(), vec!["x".into()]),
                Requirement::Exists("app.kubernetes.io/name".into()),
                Requirement::DoesNotExist("legacy".into()),
            ]
        );
    }

    #[test]
    fn matches_like_kubernetes() {
        let web = labels(&[("app", "web"), ("zone", "a")]);
        let db = labels(&[("app", "db"), ("legacy", "true")]);
        let case = |sel: &str| {
            let s = LabelSelector::parse(sel).unwrap();
            (s.matches(&web), s.matches(&db))
        };
        assert_eq!(case("app=web"), (true, false));
        assert_eq!(case("app!=web"), (false, true));
        assert_eq!(case("zone!=b"), (true, true), "!= holds when the key is absent");
        assert_eq!(case("zone in (a,b)"), (true, false));
        assert_eq!(case("zone notin (a)"), (false, true), "notin holds when the key is absent");
        assert_eq!(case("legacy"), (false, true));
        assert_eq!(case("!legacy"), (true, false));
        assert_eq!(case("app in (web,db),!legacy"), (true, false));
        assert_eq!(case(""), (true, true));
    }

    #[test]
    fn refuses_malformed_requirements() {
        for bad in ["=web", "app in ()", "app in a,b", "app ~ web", "app=we b", "!", "app in (a,-b)", ","] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let empty_value = LabelSelector::parse("app=").unwrap();
        assert!(empty_value.matches(&labels(&[("app", "")])), "an empty value is valid, as in Kubernetes");
    }
}

//! Fault injection for reliability tests: the next N requests (optionally only those whose path
//! contains a substring, or with a given method) get a 429 with `Retry-After`, a 500, a delay, or
//! a dropped connection; and RBAC denials (403) of chosen resources and verbs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One kind of fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 `TooManyRequests` with `Retry-After: <seconds>`.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after_seconds: u64,
    },
    /// 500 `InternalError`.
    InternalError,
    /// Wait, then serve the request normally.
    Delay(Duration),
    /// Close the connection without answering.
    DropConnection,
}

/// A fault with how often and to which requests it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// The fault.
    pub fault: Fault,
    /// How many matching requests still get it.
    pub remaining: usize,
    /// Only requests whose path contains this.
    pub path_contains: Option<String>,
    /// Only requests with this method (`GET`, `PATCH`, ...).
    pub method: Option<String>,
}

impl FaultRule {
    /// A rule applying `fault` to the next request.
    pub fn new(fault: Fault) -> Self {
        Self { fault, remaining: 1, path_contains: None, method: None }
    }
    /// Applies to the next `n` matching requests.
    #[must_use]
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = n;
        self
    }
    /// Only requests whose path contains `s`.
    #[must_use]
    pub fn path_contains(mut self, s: &str) -> Self {
        self.path_contains = Some(s.into());
        self
    }
    /// Only requests with HTTP method `m`.
    #[must_use]
    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(m.to_ascii_uppercase());
        self
    }
}

/// An RBAC denial: requests for a resource (optionally one verb only) answer 403 `Forbidden`
/// with the real authorizer's message, until [`Faults::clear`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource name, e.g. `deployments` (a subresource as `deployments/status`).
    pub resource: String,
    /// Only this verb (`list`, `get`, `watch`, `create`, `update`, `patch`, `delete`, ...).
    pub verb: Option<String>,
    /// The user named in the message.
    pub user: String,
}

impl Denial {
    /// Denies every verb on `group`/`resource` to the kubeconfig's user (`lifeboat-test`).
    pub fn new(group: &str, resource: &str) -> Self {
        Self { group: group.into(), resource: resource.into(), verb: None, user: "lifeboat-test".into() }
    }
    /// Only this verb.
    #[must_use]
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.into());
        self
    }
    /// The user the message names (e.g. `system:serviceaccount:lifeboat:lifeboat`).
    #[must_use]
    pub fn user(mut self, user: &str) -> Self {
        self.user = user.into();
        self
    }
}

/// The server's fault injector (cheap to clone; all clones share the rules).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<FaultRule>>>,
    denials: Arc<Mutex<Vec<Denial>>>,
    served: Arc<Mutex<usize>>,
}

impl Faults {
    fn rules(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a rule; rules are tried in the order added.
    pub fn inject(&self, rule: FaultRule) {
        self.rules().push(rule);
    }

    /// Removes every rule and denial.
    pub fn clear(&self) {
        self.rules().clear();
        self.denials().clear();
    }

    fn denials(&self) -> std::sync::MutexGuard<'_, Vec<Denial>> {
        self.denials.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Denies requests as [`Denial`] says, until cleared.
    pub fn deny(&self, denial: Denial) {
        self.denials().push(denial);
    }

    /// The denial for a request on `group`/`resource` (with `sub`resource) with `verb`, if any.
    pub(crate) fn denied(&self, group: &str, resource: &str, verb: &str) -> Option<Denial> {
        self.denials()
            .iter()
            .find(|d| d.group == group && d.resource == resource && d.verb.as_deref().is_none_or(|v| v == verb))
            .cloned()
    }

    /// Faults still to be served.
    pub fn pending(&self) -> usize {
        self.rules().iter().map(|r| r.remaining).sum()
    }

    /// Faults served so far.
    pub fn served(&self) -> usize {
        *self.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The fault for a request, consuming one use of the first matching rule.
    pub(crate) fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let mut rules = self.rules();
        let idx = rules.iter().position(|r| {
            r.remaining > 0
                && r.path_contains.as_deref().is_none_or(|p| path.contains(p))
                && r.method.as_deref().is_none_or(|m| m == method)
        })?;
        let fault = rules[idx].fault.clone();
        rules[idx].remaining -= 1;
        if rules[idx].remaining == 0 {
            rules.remove(idx);
        }
        drop(rules);
        *self.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_and_count_down() {
        let f = Faults::default();
        f.inject(FaultRule::new(Fault::InternalError).times(2).path_contains("/configmaps").method("get"));
        assert_eq!(f.take("GET", "/api/v1/pods"), None);
        assert_eq!(f.take("POST", "/api/v1/namespaces/a/configmaps"), None);
        assert_eq!(f.take("GET", "/api/v1/namespaces/a/configmaps"), Some(Fault::InternalError));
        assert_eq!(f.pending(), 1);
        assert_eq!(f.take("GET", "/api/v1/configmaps"), Some(Fault::InternalError));
        assert_eq!(f.take("GET", "/api/v1/configmaps"), None);
        assert_eq!(f.served(), 2);
    }

    #[test]
    fn denials_match_group_resource_and_verb() {
        let f = Faults::default();
        f.deny(Denial::new("apps", "deployments").verb("list"));
        f.deny(Denial::new("", "secrets"));
        assert!(f.denied("apps", "deployments", "list").is_some());
        assert!(f.denied("apps", "deployments", "get").is_none());
        assert!(f.denied("", "secrets", "watch").is_some());
        assert!(f.denied("apps", "statefulsets", "list").is_none());
        f.clear();
        assert!(f.denied("", "secrets", "watch").is_none());
    }
}

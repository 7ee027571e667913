//! Fault injection for reliability tests: the next N requests (optionally only those whose path
//! contains a substring, or with a given method) get a 429 with `Retry-After`, a 500, a delay, or
//! a dropped connection.

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

/// The server's fault injector (cheap to clone; all clones share the rules).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<FaultRule>>>,
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

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules().clear();
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
}

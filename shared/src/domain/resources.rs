//! Resource types as discovery describes them.

/// One resource type the API server serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiResourceInfo {
    /// API group (`""` for the core group).
    pub group: String,
    /// The group's preferred version.
    pub version: String,
    /// Plural resource name, e.g. `deployments`.
    pub resource: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Verbs the server allows (`list`, `get`, `create`, …).
    pub verbs: Vec<String>,
}

impl ApiResourceInfo {
    /// `deployments.apps`, or `pods` for the core group (Velero's spelling).
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() { self.resource.clone() } else { format!("{}.{}", self.resource, self.group) }
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Whether the server allows `verb`.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

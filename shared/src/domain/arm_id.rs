//! Azure Resource Manager resource ids
//! (`/subscriptions/{sub}/resourceGroups/{group}/providers/{namespace}/{type}/{name}`), parsed
//! and compared as ARM does: case-insensitively.
//!
//! ```
//! use lifeboat_shared::domain::arm_id::ArmResourceId;
//!
//! let id: ArmResourceId = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/snapshots/s1"
//!     .parse()
//!     .unwrap();
//! assert_eq!(id.resource_type(), Some("Microsoft.Compute/snapshots".to_owned()));
//! assert_eq!(id.name(), "s1");
//! let same: ArmResourceId = "/SUBSCRIPTIONS/0000/resourcegroups/RG/providers/microsoft.compute/Snapshots/S1"
//!     .parse()
//!     .unwrap();
//! assert_eq!(id, same);
//! ```

use std::fmt;
use std::str::FromStr;

/// A parsed ARM resource id: a subscription, a resource group, or a resource (nested resources
/// included). Equality and hashing ignore case, as ARM does; [`Display`](fmt::Display) gives
/// the id as written.
#[derive(Debug, Clone)]
pub struct ArmResourceId {
    /// The id as given, without a trailing slash.
    raw: String,
    subscription: String,
    resource_group: Option<String>,
    /// The provider namespace (`Microsoft.Compute`), for a resource.
    namespace: Option<String>,
    /// `(type, name)` pairs below the namespace, outermost first.
    types: Vec<(String, String)>,
}

/// Why a string is not an ARM resource id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ARM resource id {id:?}: {reason}")]
pub struct ArmIdError {
    /// The string given.
    pub id: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for ArmResourceId {
    type Err = ArmIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ArmIdError { id: s.to_owned(), reason };
        let raw = s.trim().trim_end_matches('/');
        let rest = raw.strip_prefix('/').ok_or_else(|| fail("it must start with /subscriptions/"))?;
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.iter().any(|s| s.is_empty() || s.chars().any(|c| c.is_control() || c == '?' || c == '#')) {
            return Err(fail("empty segment or a character ids cannot hold"));
        }
        let mut parts = segments.into_iter();
        let subscription = match (parts.next(), parts.next()) {
            (Some(key), Some(value)) if key.eq_ignore_ascii_case("subscriptions") => value.to_owned(),
            _ => return Err(fail("it must start with /subscriptions/{id}")),
        };
        let mut id =
            Self { raw: raw.to_owned(), subscription, resource_group: None, namespace: None, types: Vec::new() };
        let mut next = parts.next();
        if next.is_some_and(|k| k.eq_ignore_ascii_case("resourceGroups")) {
            id.resource_group = Some(parts.next().ok_or_else(|| fail("resourceGroups without a name"))?.to_owned());
            next = parts.next();
        }
        match next {
            None => return Ok(id),
            Some(key) if key.eq_ignore_ascii_case("providers") => {}
            Some(_) => return Err(fail("expected resourceGroups or providers")),
        }
        id.namespace = Some(parts.next().ok_or_else(|| fail("providers without a namespace"))?.to_owned());
        let rest: Vec<&str> = parts.collect();
        if rest.is_empty() || !rest.len().is_multiple_of(2) {
            return Err(fail("a resource type without a name"));
        }
        id.types = rest
            .chunks_exact(2)
            .filter_map(|pair| match pair {
                [kind, name] => Some(((*kind).to_owned(), (*name).to_owned())),
                _ => None,
            })
            .collect();
        Ok(id)
    }
}

impl ArmResourceId {
    /// The resource `{namespace}/{type}/{name}` (e.g. `Microsoft.Compute/snapshots`, `s1`) in
    /// this resource group.
    ///
    /// # Errors
    /// [`ArmIdError`] when this id is not a resource group, or the type or name is not one.
    pub fn child(&self, resource_type: &str, name: &str) -> Result<Self, ArmIdError> {
        let fail = |reason| ArmIdError { id: format!("{}/providers/{resource_type}/{name}", self.raw), reason };
        if !self.is_resource_group() {
            return Err(fail("resources live in a resource group"));
        }
        if name.is_empty() || name.contains('/') || resource_type.split('/').count() != 2 {
            return Err(fail("expected a {namespace}/{type} and a name without slashes"));
        }
        format!("{}/providers/{resource_type}/{name}", self.raw).parse()
    }

    /// The subscription id.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    /// The resource group's name, if the id is in one.
    pub fn resource_group(&self) -> Option<&str> {
        self.resource_group.as_deref()
    }

    /// Whether the id names a resource group itself.
    pub fn is_resource_group(&self) -> bool {
        self.resource_group.is_some() && self.namespace.is_none()
    }

    /// The resource's full type (`Microsoft.Compute/snapshots`), for a resource.
    pub fn resource_type(&self) -> Option<String> {
        let namespace = self.namespace.as_deref()?;
        let types: Vec<&str> = self.types.iter().map(|(t, _)| t.as_str()).collect();
        Some(format!("{namespace}/{}", types.join("/")))
    }

    /// Whether the resource has the full type `resource_type` (ignoring case).
    pub fn is_type(&self, resource_type: &str) -> bool {
        self.resource_type().is_some_and(|t| t.eq_ignore_ascii_case(resource_type))
    }

    /// The last name in the id: the resource's, else the group's, else the subscription's.
    pub fn name(&self) -> &str {
        self.types
            .last()
            .map(|(_, name)| name.as_str())
            .or(self.resource_group.as_deref())
            .unwrap_or(&self.subscription)
    }

    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The id in the one case used to compare.
    fn folded(&self) -> String {
        self.raw.to_ascii_lowercase()
    }
}

impl PartialEq for ArmResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.raw.eq_ignore_ascii_case(&other.raw)
    }
}

impl Eq for ArmResourceId {}

impl std::hash::Hash for ArmResourceId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.folded().hash(state);
    }
}

impl fmt::Display for ArmResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAPSHOT: &str =
        "/subscriptions/11111111-2222/resourceGroups/backups/providers/Microsoft.Compute/snapshots/pvc-1";

    fn id(s: &str) -> ArmResourceId {
        s.parse().expect("valid id")
    }

    #[test]
    fn a_resource_id_gives_its_parts() {
        let snapshot = id(SNAPSHOT);
        assert_eq!(snapshot.subscription(), "11111111-2222");
        assert_eq!(snapshot.resource_group(), Some("backups"));
        assert_eq!(snapshot.resource_type().as_deref(), Some("Microsoft.Compute/snapshots"));
        assert!(snapshot.is_type("microsoft.compute/SNAPSHOTS"));
        assert!(!snapshot.is_resource_group());
        assert_eq!(snapshot.name(), "pvc-1");
        assert_eq!(snapshot.to_string(), SNAPSHOT);
    }

    #[test]
    fn nested_types_and_groups_parse() {
        let pool = id(
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/managedClusters/c/agentPools/p1/",
        );
        assert_eq!(pool.resource_type().as_deref(), Some("Microsoft.ContainerService/managedClusters/agentPools"));
        assert_eq!(pool.name(), "p1");
        assert_eq!(
            pool.as_str(),
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/managedClusters/c/agentPools/p1"
        );
        let group = id("/subscriptions/s/resourcegroups/g");
        assert!(group.is_resource_group());
        assert_eq!(group.name(), "g");
        assert_eq!(group.resource_type(), None);
    }

    #[test]
    fn ids_compare_and_hash_ignoring_case() {
        let upper = id(&SNAPSHOT.to_ascii_uppercase());
        assert_eq!(upper, id(SNAPSHOT));
        let set: std::collections::HashSet<ArmResourceId> = [upper, id(SNAPSHOT)].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_ne!(id(SNAPSHOT), id(&SNAPSHOT.replace("pvc-1", "pvc-2")));
    }

    #[test]
    fn malformed_ids_are_refused_with_a_reason() {
        for bad in [
            "",
            "subscriptions/s/resourceGroups/g",
            "/subscriptions",
            "/subscriptions/s/resourceGroups",
            "/subscriptions/s/somethingElse/x",
            "/subscriptions/s/resourceGroups/g/providers",
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/snapshots",
            "/subscriptions/s//resourceGroups/g",
            "/subscriptions/s/resourceGroups/g?x=1",
        ] {
            let err = bad.parse::<ArmResourceId>().expect_err(bad);
            assert_eq!(err.id, bad);
            assert!(err.to_string().contains("invalid ARM resource id"), "{err}");
        }
    }

    #[test]
    fn a_child_is_built_only_in_a_resource_group() {
        let group = id("/subscriptions/s/resourceGroups/replicas");
        let child = group.child("Microsoft.Compute/snapshots", "copy-1").expect("child");
        assert_eq!(
            child.as_str(),
            "/subscriptions/s/resourceGroups/replicas/providers/Microsoft.Compute/snapshots/copy-1"
        );
        assert!(group.child("Microsoft.Compute/snapshots", "a/b").is_err());
        assert!(group.child("snapshots", "a").is_err());
        assert!(id(SNAPSHOT).child("Microsoft.Compute/snapshots", "x").is_err());
    }
}

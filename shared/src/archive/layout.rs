//! Where each object goes inside the archive: Velero's layout, so people can read a backup
//! with `tar` and tools they know. Pure; these paths are a compatibility surface (old backups
//! must stay restorable), guarded by golden tests.
//!
//! - namespaced: `resources/{resource}.{group}/namespaces/{namespace}/{name}.json`
//! - cluster-scoped: `resources/{resource}.{group}/cluster/{name}.json`
//! - the core group (`""`) drops the `.{group}`: `resources/pods/namespaces/default/web.json`
//! - [`VERSION_PATH`] holds [`FORMAT_VERSION`] and a newline, always the archive's first entry.

use std::fmt;

/// The archive format version, written to [`VERSION_PATH`]. Version 1 is the layout above, as
/// JSON objects in a tar stream compressed with zstd, optionally inside age encryption. Raise
/// it only for a change old readers cannot read, and keep reading every older version.
pub const FORMAT_VERSION: &str = "1";

/// The path of the format version entry.
pub const VERSION_PATH: &str = "metadata/version";

/// The longest file name most filesystems accept (Linux `NAME_MAX`): a longer segment could
/// not be extracted with `tar`.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// An entry path that cannot be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A part of the path is not a safe path segment.
    #[error("{field} {value:?} is not a safe path segment: {reason}")]
    UnsafeSegment {
        /// Which part: `resource`, `group`, `namespace` or `name`.
        field: &'static str,
        /// The value given.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A path that does not follow the resources layout.
    #[error("entry path {path:?} is not an object path: {reason}")]
    NotAnObjectPath {
        /// The path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The path of one Kubernetes object inside the archive, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryPath {
    resource: String,
    group: String,
    namespace: Option<String>,
    name: String,
    path: String,
}

impl EntryPath {
    /// The path of a namespaced object, e.g. `("deployments", "apps", "shop", "web")` gives
    /// `resources/deployments.apps/namespaces/shop/web.json`.
    ///
    /// # Errors
    /// [`LayoutError::UnsafeSegment`] for an empty part, `.`, `..`, a `/`, `\`, NUL or control
    /// character, a `.` in the resource, or a file name over [`MAX_SEGMENT_BYTES`].
    pub fn namespaced(resource: &str, group: &str, namespace: &str, name: &str) -> Result<Self, LayoutError> {
        Self::build(resource, group, Some(namespace), name)
    }

    /// The path of a cluster-scoped object, e.g. `("namespaces", "", "shop")` gives
    /// `resources/namespaces/cluster/shop.json`.
    ///
    /// # Errors
    /// As [`EntryPath::namespaced`].
    pub fn cluster_scoped(resource: &str, group: &str, name: &str) -> Result<Self, LayoutError> {
        Self::build(resource, group, None, name)
    }

    /// Reads an object path back into its parts (what restore needs from an entry).
    ///
    /// # Errors
    /// [`LayoutError::NotAnObjectPath`] for a path not shaped like the layout, and the errors of
    /// [`EntryPath::namespaced`] for its parts.
    pub fn parse(path: &str) -> Result<Self, LayoutError> {
        let fail = |reason| Err(LayoutError::NotAnObjectPath { path: path.to_owned(), reason });
        let parts: Vec<&str> = path.split('/').collect();
        let (kind, namespace, file) = match parts.as_slice() {
            ["resources", kind, "namespaces", namespace, file] => (*kind, Some(*namespace), *file),
            ["resources", kind, "cluster", file] => (*kind, None, *file),
            _ => {
                return fail(
                    "not resources/{type}/namespaces/{ns}/{name}.json or resources/{type}/cluster/{name}.json",
                );
            }
        };
        let Some(name) = file.strip_suffix(".json") else {
            return fail("the file name must end in .json");
        };
        let (resource, group) = kind.split_once('.').unwrap_or((kind, ""));
        if kind.ends_with('.') {
            return fail("the group after the resource's '.' is empty");
        }
        let parsed = Self::build(resource, group, namespace, name)?;
        if parsed.path != path {
            return fail("not in canonical form");
        }
        Ok(parsed)
    }

    fn build(resource: &str, group: &str, namespace: Option<&str>, name: &str) -> Result<Self, LayoutError> {
        check_segment("resource", resource)?;
        if resource.contains('.') {
            return Err(unsafe_segment("resource", resource, "must not contain '.' (it separates the group)"));
        }
        let kind = if group.is_empty() {
            resource.to_owned()
        } else {
            check_segment("group", group)?;
            format!("{resource}.{group}")
        };
        check_length("resource", resource, &kind)?;
        let file = format!("{name}.json");
        check_segment("name", name)?;
        check_length("name", name, &file)?;
        let path = match namespace {
            Some(ns) => {
                check_segment("namespace", ns)?;
                check_length("namespace", ns, ns)?;
                format!("resources/{kind}/namespaces/{ns}/{file}")
            }
            None => format!("resources/{kind}/cluster/{file}"),
        };
        Ok(Self {
            resource: resource.to_owned(),
            group: group.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            path,
        })
    }

    /// The path inside the archive.
    pub fn as_str(&self) -> &str {
        &self.path
    }
    /// The resource (plural, lowercase), e.g. `deployments`.
    pub fn resource(&self) -> &str {
        &self.resource
    }
    /// The API group, `""` for the core group.
    pub fn group(&self) -> &str {
        &self.group
    }
    /// The namespace, `None` for a cluster-scoped object.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
    /// The object's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for EntryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

impl AsRef<str> for EntryPath {
    fn as_ref(&self) -> &str {
        &self.path
    }
}

fn unsafe_segment(field: &'static str, value: &str, reason: &'static str) -> LayoutError {
    LayoutError::UnsafeSegment { field, value: value.to_owned(), reason }
}

/// The rule every path segment follows, written or read: the rule broken, if any.
pub(crate) fn segment_problem(segment: &str) -> Option<&'static str> {
    if segment.is_empty() {
        Some("must not be empty")
    } else if segment == "." || segment == ".." {
        Some("must not be '.' or '..'")
    } else if segment.contains('/') || segment.contains('\\') {
        Some("must not contain '/' or '\\'")
    } else if segment.chars().any(char::is_control) {
        Some("must not contain NUL or control characters")
    } else {
        None
    }
}

fn check_segment(field: &'static str, value: &str) -> Result<(), LayoutError> {
    segment_problem(value).map_or(Ok(()), |reason| Err(unsafe_segment(field, value, reason)))
}

fn check_length(field: &'static str, value: &str, segment: &str) -> Result<(), LayoutError> {
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(unsafe_segment(field, value, "its file name would exceed 255 bytes"));
    }
    Ok(())
}

/// Checks a path read from an archive: relative, `/`-separated safe segments, at least two,
/// under `resources/` or `metadata/`. `Err` names the rule broken.
pub(crate) fn check_entry_path(path: &str) -> Result<(), &'static str> {
    if path.starts_with('/') {
        return Err("absolute paths are refused");
    }
    let mut segments = path.split('/');
    if !matches!(segments.next(), Some("resources" | "metadata")) {
        return Err("only paths under resources/ and metadata/ are allowed");
    }
    let mut depth = 1;
    for segment in segments {
        if let Some(problem) = segment_problem(segment) {
            return Err(problem);
        }
        depth += 1;
    }
    if depth < 2 {
        return Err("a file under resources/ or metadata/ is expected");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_are_velero_s_layout() {
        let golden = [
            (EntryPath::namespaced("pods", "", "default", "web-0"), "resources/pods/namespaces/default/web-0.json"),
            (
                EntryPath::namespaced("deployments", "apps", "shop", "web"),
                "resources/deployments.apps/namespaces/shop/web.json",
            ),
            (
                EntryPath::namespaced("ingresses", "networking.k8s.io", "shop", "front.example.com"),
                "resources/ingresses.networking.k8s.io/namespaces/shop/front.example.com.json",
            ),
            (EntryPath::cluster_scoped("namespaces", "", "shop"), "resources/namespaces/cluster/shop.json"),
            (
                EntryPath::cluster_scoped("clusterroles", "rbac.authorization.k8s.io", "system:basic-user"),
                "resources/clusterroles.rbac.authorization.k8s.io/cluster/system:basic-user.json",
            ),
        ];
        for (built, expected) in golden {
            let built = built.unwrap();
            assert_eq!(built.as_str(), expected);
            assert_eq!(EntryPath::parse(expected).unwrap(), built, "{expected} parses back");
        }
        assert_eq!(VERSION_PATH, "metadata/version");
        assert_eq!(FORMAT_VERSION, "1");
    }

    #[test]
    fn parts_are_kept() {
        let p = EntryPath::parse("resources/ingresses.networking.k8s.io/namespaces/shop/a.b.json").unwrap();
        assert_eq!(
            (p.resource(), p.group(), p.namespace(), p.name()),
            ("ingresses", "networking.k8s.io", Some("shop"), "a.b")
        );
        let p = EntryPath::parse("resources/nodes/cluster/n1.json").unwrap();
        assert_eq!((p.resource(), p.group(), p.namespace(), p.name()), ("nodes", "", None, "n1"));
    }

    #[test]
    fn unsafe_segments_are_refused_naming_the_part() {
        let cases = [
            ("pods", "", "default", "", "name"),
            ("pods", "", "default", ".", "name"),
            ("pods", "", "default", "..", "name"),
            ("pods", "", "default", "a/b", "name"),
            ("pods", "", "default", "a\\b", "name"),
            ("pods", "", "default", "a\0b", "name"),
            ("pods", "", "default", "a\nb", "name"),
            ("pods", "", "..", "web", "namespace"),
            ("pods", "", "", "web", "namespace"),
            ("pods", "../x", "default", "web", "group"),
            ("", "", "default", "web", "resource"),
            ("pods.v1", "", "default", "web", "resource"),
        ];
        for (resource, group, ns, name, field) in cases {
            match EntryPath::namespaced(resource, group, ns, name) {
                Err(LayoutError::UnsafeSegment { field: f, .. }) => assert_eq!(f, field, "{resource}/{ns}/{name:?}"),
                other => panic!("{resource} {group} {ns} {name:?}: expected a refusal, got {other:?}"),
            }
        }
        let long = "a".repeat(251);
        assert!(EntryPath::cluster_scoped("nodes", "", &"a".repeat(250)).is_ok());
        assert!(matches!(
            EntryPath::cluster_scoped("nodes", "", &long),
            Err(LayoutError::UnsafeSegment { field: "name", .. })
        ));
    }

    #[test]
    fn parse_refuses_what_the_layout_does_not_produce() {
        for path in [
            "resources/pods/namespaces/default/web.yaml",
            "resources/pods/namespaces/default",
            "resources/pods/cluster/a/b.json",
            "resources/pods./cluster/b.json",
            "metadata/version",
            "/resources/pods/cluster/b.json",
        ] {
            assert!(matches!(EntryPath::parse(path), Err(LayoutError::NotAnObjectPath { .. })), "{path}");
        }
        assert!(matches!(
            EntryPath::parse("resources/pods/namespaces/../web.json"),
            Err(LayoutError::UnsafeSegment { field: "namespace", .. })
        ));
    }

    #[test]
    fn entry_paths_read_from_archives_are_checked() {
        assert!(check_entry_path("resources/pods/namespaces/default/web.json").is_ok());
        assert!(check_entry_path("metadata/version").is_ok());
        for bad in [
            "/etc/passwd",
            "../etc/passwd",
            "resources/../../etc/passwd",
            "resources/./x",
            "resources//x",
            "resources",
            "metadata/",
            "other/file",
            "resources/a\0b",
        ] {
            assert!(check_entry_path(bad).is_err(), "{bad}");
        }
    }
}

//! Archived objects read into what the planner needs to decide about them, and an index to
//! find an owner among them.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::{EntryPath, PlanError, SourceObject};

/// An archived object with its identity checked against its path.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub path: EntryPath,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub object: Value,
}

/// `(group, version)` of an `apiVersion`.
pub(super) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

impl Candidate {
    /// Reads `source`, refusing an object without apiVersion, kind or name, or one whose
    /// group, namespace or name disagree with its archive path.
    pub fn read(source: SourceObject) -> Result<Self, PlanError> {
        let SourceObject { path, object } = source;
        let fail = |reason: String| PlanError::MalformedObject { path: path.as_str().to_owned(), reason };
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty());
        let api_version = text("/apiVersion").ok_or_else(|| fail("it has no apiVersion".into()))?;
        let kind = text("/kind").ok_or_else(|| fail("it has no kind".into()))?.to_owned();
        let name = text("/metadata/name").ok_or_else(|| fail("it has no metadata.name".into()))?;
        let (group, version) = split_api_version(api_version);
        if group != path.group() {
            return Err(fail(format!("its apiVersion {api_version} is not in the path's group {:?}", path.group())));
        }
        if name != path.name() {
            return Err(fail(format!("its name {name:?} is not the path's name {:?}", path.name())));
        }
        if let (Some(ns), Some(path_ns)) = (text("/metadata/namespace"), path.namespace())
            && ns != path_ns
        {
            return Err(fail(format!("its namespace {ns:?} is not the path's namespace {path_ns:?}")));
        }
        let (group, version) = (group.to_owned(), version.to_owned());
        Ok(Self { path, group, version, kind, object })
    }

    pub fn resource(&self) -> &str {
        self.path.resource()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.path.namespace()
    }
    pub fn name(&self) -> &str {
        self.path.name()
    }
    /// Whether it is of `resource` in `group`.
    pub fn is(&self, group: &str, resource: &str) -> bool {
        self.group == group && self.resource() == resource
    }
    /// `deployments.apps`, or `pods` for the core group.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() { self.resource().to_owned() } else { format!("{}.{}", self.resource(), self.group) }
    }
    /// A non-empty string at `pointer`.
    pub fn str_at(&self, pointer: &str) -> Option<&str> {
        self.object.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    /// Its labels (string values only).
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
            .unwrap_or_default()
    }
    /// `Kind namespace/name`, or `Kind name` when cluster-scoped.
    pub fn describe(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name()),
            None => format!("{} {}", self.kind, self.name()),
        }
    }
}

type Key = (String, String, Option<String>, String);

/// Finds archived objects by uid, or by group, kind, namespace and name.
#[derive(Debug, Default)]
pub(super) struct Index {
    by_uid: HashMap<String, usize>,
    by_key: HashMap<Key, usize>,
}

impl Index {
    pub fn new(candidates: &[Candidate]) -> Self {
        let mut index = Self::default();
        for (i, c) in candidates.iter().enumerate() {
            if let Some(uid) = c.str_at("/metadata/uid") {
                index.by_uid.insert(uid.to_owned(), i);
            }
            let key = (c.group.clone(), c.kind.clone(), c.namespace().map(str::to_owned), c.name().to_owned());
            index.by_key.insert(key, i);
        }
        index
    }

    /// The archived object an owner reference of `dependent` points at. A reference with a
    /// uid matches only that uid (an object of the same name with another uid is a different
    /// object); one without is matched by kind and name, in the dependent's namespace first.
    pub fn owner(&self, dependent: &Candidate, reference: &Value) -> Option<usize> {
        let text = |key: &str| reference.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
        if let Some(uid) = text("uid") {
            return self.by_uid.get(uid).copied();
        }
        let (group, _) = split_api_version(text("apiVersion")?);
        let (kind, name) = (text("kind")?, text("name")?);
        let key = |ns: Option<&str>| (group.to_owned(), kind.to_owned(), ns.map(str::to_owned), name.to_owned());
        dependent
            .namespace()
            .and_then(|ns| self.by_key.get(&key(Some(ns))))
            .or_else(|| self.by_key.get(&key(None)))
            .copied()
    }
}

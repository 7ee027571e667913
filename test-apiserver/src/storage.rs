//! The raw object store: objects by resource and key, one global resourceVersion counter, and a
//! bounded history of changes. The history plays etcd's role: lists at an older revision are
//! rebuilt from it, watches replay it, and what falls out of it is "compacted" (410 Gone).

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

/// A resource independent of version: `("apps", "deployments")`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupResource {
    /// API group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupResource {
    /// Builds one.
    pub fn new(group: &str, resource: &str) -> Self {
        Self { group: group.into(), resource: resource.into() }
    }
}

/// An object's key: namespace (empty for cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// Builds one.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
    /// The etcd-like key used in continue tokens: `ns/name` or `name`.
    pub fn path(&self) -> String {
        if self.namespace.is_empty() { self.name.clone() } else { format!("{}/{}", self.namespace, self.name) }
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Created.
    Added,
    /// Replaced.
    Modified,
    /// Removed.
    Deleted,
}

/// One change, at one resourceVersion.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// Resource of the object.
    pub gr: GroupResource,
    /// Key of the object.
    pub key: ObjectKey,
    /// What happened.
    pub change: Change,
    /// The object after the change (for `Deleted`: its last state, with the deletion's resourceVersion).
    pub object: Value,
    /// The object before the change, if it existed.
    pub prev: Option<Value>,
}

type Objects = BTreeMap<GroupResource, BTreeMap<ObjectKey, Value>>;

/// Kept changes after a resourceVersion, and a subscription for the ones to come.
pub(crate) type Backlog = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

pub(crate) struct Inner {
    rv: u64,
    objects: Objects,
    history: VecDeque<Arc<Event>>,
    history_cap: usize,
    /// The oldest resourceVersion whose state can still be rebuilt.
    compacted: u64,
}

/// The shared raw store.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<Arc<Event>>,
}

/// A state older than the history holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("resource version {requested} is older than the oldest kept ({oldest})")]
pub struct Compacted {
    /// The requested resourceVersion.
    pub requested: u64,
    /// The oldest resourceVersion still available.
    pub oldest: u64,
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

impl Storage {
    /// An empty store keeping `history_cap` changes; resourceVersions start above `first_rv`.
    pub fn new(history_cap: usize, first_rv: u64) -> Self {
        let (events, _) = broadcast::channel(4096);
        let inner = Inner {
            rv: first_rv,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_cap: history_cap.max(1),
            compacted: first_rv,
        };
        Self { inner: Arc::new(Mutex::new(inner)), events }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Subscribes to changes made from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Drops every kept change, as etcd compaction does: older lists, continues and watches get 410.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.compacted = inner.rv;
    }

    /// Runs `f` with the store locked, then publishes the changes it made.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> T) -> T {
        let mut guard = self.lock();
        let mut tx = Tx { inner: &mut guard, published: Vec::new() };
        let out = f(&mut tx);
        let published = std::mem::take(&mut tx.published);
        for ev in published {
            let _ = self.events.send(ev);
        }
        out
    }

    /// Subscribes and collects the kept changes after `rv`, atomically, for a watch.
    pub(crate) fn watch_from(&self, rv: u64) -> Result<Backlog, Compacted> {
        let inner = self.lock();
        if rv < inner.compacted {
            return Err(Compacted { requested: rv, oldest: inner.compacted });
        }
        let backlog = inner.history.iter().filter(|e| e.rv > rv).cloned().collect();
        Ok((backlog, self.events.subscribe()))
    }

    /// Current objects of `gr` plus the current resourceVersion, and a subscription, atomically.
    pub(crate) fn snapshot_and_subscribe(
        &self,
        gr: &GroupResource,
    ) -> (Vec<Value>, u64, broadcast::Receiver<Arc<Event>>) {
        let inner = self.lock();
        let objs = inner.objects.get(gr).map(|m| m.values().cloned().collect()).unwrap_or_default();
        (objs, inner.rv, self.events.subscribe())
    }
}

impl Inner {
    /// The objects of `gr` as they were at `rv` (current state when `rv` is `None`).
    pub(crate) fn objects_at(
        &self,
        gr: &GroupResource,
        rv: Option<u64>,
    ) -> Result<BTreeMap<ObjectKey, Value>, Compacted> {
        let mut map = self.objects.get(gr).cloned().unwrap_or_default();
        let Some(rv) = rv else { return Ok(map) };
        if rv < self.compacted {
            return Err(Compacted { requested: rv, oldest: self.compacted });
        }
        for ev in self.history.iter().rev().take_while(|e| e.rv > rv) {
            if &ev.gr != gr {
                continue;
            }
            match &ev.prev {
                Some(prev) => map.insert(ev.key.clone(), prev.clone()),
                None => map.remove(&ev.key),
            };
        }
        Ok(map)
    }

    /// As [`Inner::objects_at`], but borrows the current objects when no kept change of `gr`
    /// follows `rv`: a list page then clones only its own items, not the whole resource.
    pub(crate) fn objects_view(
        &self,
        gr: &GroupResource,
        rv: Option<u64>,
    ) -> Result<Cow<'_, BTreeMap<ObjectKey, Value>>, Compacted> {
        let changed_since = |rv: u64| self.history.iter().rev().take_while(|e| e.rv > rv).any(|e| &e.gr == gr);
        if rv.is_some_and(|rv| rv < self.compacted || changed_since(rv)) {
            return self.objects_at(gr, rv).map(Cow::Owned);
        }
        Ok(self.objects.get(gr).map_or_else(|| Cow::Owned(BTreeMap::new()), Cow::Borrowed))
    }

    /// The latest resourceVersion.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// The current object.
    pub(crate) fn get(&self, gr: &GroupResource, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(gr)?.get(key)
    }

    /// Every resource that has objects.
    pub(crate) fn resources(&self) -> Vec<GroupResource> {
        self.objects.iter().filter(|(_, m)| !m.is_empty()).map(|(gr, _)| gr.clone()).collect()
    }
}

/// A write transaction: changes are published when it ends.
pub(crate) struct Tx<'a> {
    inner: &'a mut Inner,
    published: Vec<Arc<Event>>,
}

impl Tx<'_> {
    /// Read access.
    pub(crate) fn state(&self) -> &Inner {
        self.inner
    }

    /// Stores `obj` (adding or replacing), stamping a new resourceVersion; returns the stored object.
    pub(crate) fn put(&mut self, gr: &GroupResource, key: &ObjectKey, mut obj: Value) -> Value {
        self.inner.rv += 1;
        let rv = self.inner.rv;
        set_rv(&mut obj, rv);
        let prev = self.inner.objects.entry(gr.clone()).or_default().insert(key.clone(), obj.clone());
        let change = if prev.is_some() { Change::Modified } else { Change::Added };
        self.record(Event { rv, gr: gr.clone(), key: key.clone(), change, object: obj.clone(), prev });
        obj
    }

    /// Removes an object; returns its last state stamped with the deletion's resourceVersion.
    pub(crate) fn remove(&mut self, gr: &GroupResource, key: &ObjectKey) -> Option<Value> {
        let prev = self.inner.objects.get_mut(gr)?.remove(key)?;
        self.inner.rv += 1;
        let rv = self.inner.rv;
        let mut obj = prev.clone();
        set_rv(&mut obj, rv);
        self.record(Event {
            rv,
            gr: gr.clone(),
            key: key.clone(),
            change: Change::Deleted,
            object: obj.clone(),
            prev: Some(prev),
        });
        Some(obj)
    }

    fn record(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        self.inner.history.push_back(ev.clone());
        while self.inner.history.len() > self.inner.history_cap {
            if let Some(old) = self.inner.history.pop_front() {
                self.inner.compacted = old.rv;
            }
        }
        self.published.push(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(name: &str, v: i64) -> Value {
        json!({"metadata": {"name": name}, "data": v})
    }

    #[test]
    fn old_states_are_rebuilt_until_compacted() {
        let s = Storage::new(3, 100);
        let gr = GroupResource::new("", "configmaps");
        let a = ObjectKey::new("ns", "a");
        s.write(|tx| tx.put(&gr, &a, obj("a", 1))); // 101
        s.write(|tx| tx.put(&gr, &a, obj("a", 2))); // 102
        s.write(|tx| tx.remove(&gr, &a)); // 103
        let inner = s.lock();
        assert!(inner.objects_at(&gr, None).expect("current").is_empty());
        assert_eq!(inner.objects_at(&gr, Some(101)).expect("kept")[&a]["data"], 1);
        assert_eq!(inner.objects_at(&gr, Some(102)).expect("kept")[&a]["metadata"]["resourceVersion"], "102");
        drop(inner);
        s.write(|tx| tx.put(&gr, &a, obj("a", 3))); // 104: 101 falls out
        assert!(s.lock().objects_at(&gr, Some(100)).is_err());
        assert!(s.lock().objects_at(&gr, Some(101)).is_ok());
    }
}

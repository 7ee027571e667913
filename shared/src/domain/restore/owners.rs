//! Ownership: objects a restored controller recreates are not restored themselves, and owner
//! references to archived owners go (the owner's uid changes when it is recreated).

use serde_json::Value;

use super::candidate::{Candidate, Index};

/// Types whose objects a controller recreates from its own spec: restoring them beside their
/// restored controller would leave duplicates (Pods, ReplicaSets and Jobs per the issue; the
/// derived ControllerRevisions, Endpoints and EndpointSlices when an archive holds them).
const RECREATED_BY_CONTROLLER: [(&str, &str); 6] = [
    ("", "pods"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("apps", "controllerrevisions"),
    ("", "endpoints"),
    ("discovery.k8s.io", "endpointslices"),
];

/// Whether a controller recreates objects of `c`'s type.
pub(super) fn recreated_by_controller(c: &Candidate) -> bool {
    RECREATED_BY_CONTROLLER.iter().any(|(g, r)| c.is(g, r))
}

/// The archived object that controls `c` (its owner reference with `controller: true`).
pub(super) fn controller(c: &Candidate, index: &Index) -> Option<usize> {
    c.object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .filter(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .find_map(|r| index.owner(c, r))
}

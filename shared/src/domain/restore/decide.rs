//! Which archived objects are written: the request's filters first, then the per-kind rules,
//! ownership, volumes and namespaces, each of which can only leave more out.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::SkipReason;
use super::candidate::{Candidate, Index};
use super::filter::Filters;
use super::owners::{controller, recreated_by_controller};
use super::volumes::{SNAPSHOT_GROUP, claim_of, ready_snapshot};
use crate::domain::manifest::SnapshotRecord;

/// What happens to one archived object.
pub(super) type Decision = Result<(), SkipReason>;

/// The snapshot each restored claim comes back from, by source `(namespace, name)`: `None`
/// for a claim that provisions an empty volume.
pub(super) type Claims<'s> = BTreeMap<(String, String), Option<(&'s SnapshotRecord, &'s str)>>;

/// Decides every candidate; `candidates` are sorted by path.
pub(super) fn decide<'s>(candidates: &[Candidate], index: &Index, filters: &'s Filters) -> (Vec<Decision>, Claims<'s>) {
    let mut decisions: Vec<Decision> = candidates.iter().map(|c| select(c, filters)).collect();
    skip_owned(candidates, index, &mut decisions);
    let claims = restored_claims(candidates, &decisions, filters);
    skip_replaced_volumes(candidates, &mut decisions, &claims, filters.options.volumes);
    skip_empty_namespaces(candidates, &mut decisions, filters);
    (decisions, claims)
}

/// The request's filters, then the per-kind rules. Namespaces are exempt from the resource
/// filters, the label selector and the cluster-scoped switch (Velero restores the namespaces
/// of what it restores); whether one is empty is decided later.
fn select(c: &Candidate, filters: &Filters) -> Decision {
    if c.is("", "namespaces") {
        let ns = c.name();
        return if filters.namespace_selected(ns) {
            Ok(())
        } else {
            Err(SkipReason::NamespaceNotSelected { namespace: ns.to_owned() })
        };
    }
    if let Some(ns) = c.namespace()
        && !filters.namespace_selected(ns)
    {
        return Err(SkipReason::NamespaceNotSelected { namespace: ns.to_owned() });
    }
    if !filters.resource_selected(c) {
        return Err(SkipReason::ResourceNotSelected { group_resource: c.group_resource() });
    }
    if c.namespace().is_none() && !filters.options.cluster_scoped {
        return Err(SkipReason::ClusterScopedNotAllowed);
    }
    if !filters.labels_match(c) {
        let selector = filters.selector.as_ref().map(ToString::to_string).unwrap_or_default();
        return Err(SkipReason::LabelsDoNotMatch { selector });
    }
    kind_rule(c).map_or(Ok(()), Err)
}

/// Objects of a kind the target cluster makes itself, or that must not run again.
fn kind_rule(c: &Candidate) -> Option<SkipReason> {
    match (c.group.as_str(), c.resource()) {
        ("", "secrets") if is_token_secret(c) => Some(SkipReason::ServiceAccountToken),
        ("", "configmaps") if c.name() == "kube-root-ca.crt" => Some(SkipReason::RootCaConfigMap),
        (SNAPSHOT_GROUP, "volumesnapshots" | "volumesnapshotcontents") => Some(SkipReason::SourceSnapshotObject),
        // Velero's isCompleted: a finished Pod, or a Job with a completion time.
        ("", "pods") if matches!(c.str_at("/status/phase"), Some("Succeeded" | "Failed")) => {
            Some(SkipReason::Completed)
        }
        ("batch", "jobs") if c.str_at("/status/completionTime").is_some() => Some(SkipReason::Completed),
        _ => None,
    }
}

/// Whether `c` is a Secret of type `kubernetes.io/service-account-token`.
pub(super) fn is_token_secret(c: &Candidate) -> bool {
    c.is("", "secrets") && c.str_at("/type") == Some("kubernetes.io/service-account-token")
}

/// Pods, ReplicaSets, Jobs, … whose controller is selected: the controller recreates them.
fn skip_owned(candidates: &[Candidate], index: &Index, decisions: &mut [Decision]) {
    let selected: Vec<bool> = decisions.iter().map(Result::is_ok).collect();
    for (c, decision) in candidates.iter().zip(decisions.iter_mut()) {
        if decision.is_err() || !recreated_by_controller(c) {
            continue;
        }
        if let Some(owner) = controller(c, index).filter(|o| selected.get(*o) == Some(&true))
            && let Some(o) = candidates.get(owner)
        {
            *decision = Err(SkipReason::OwnedByRestoredController { owner: o.describe() });
        }
    }
}

fn restored_claims<'s>(candidates: &[Candidate], decisions: &[Decision], filters: &'s Filters) -> Claims<'s> {
    let options = filters.options;
    candidates
        .iter()
        .zip(decisions)
        .filter(|(c, d)| d.is_ok() && c.is("", "persistentvolumeclaims"))
        .filter_map(|(c, _)| {
            let ns = c.namespace()?;
            let snapshot = ready_snapshot(&options.snapshots, ns, c.name())
                .filter(|_| options.volumes)
                .and_then(|s| Some((s, s.handle.as_deref()?)));
            Some(((ns.to_owned(), c.name().to_owned()), snapshot))
        })
        .collect()
}

/// PersistentVolumes bound to a claim are never restored as they were: the claim comes back
/// on a volume from a snapshot or on a new empty one, or is not restored. This reason wins
/// over the filters', being the one a reviewer needs. An unclaimed volume is restored only
/// with reclaim policy `Retain` or `Recycle`.
fn skip_replaced_volumes(candidates: &[Candidate], decisions: &mut [Decision], claims: &Claims, volumes: bool) {
    let bound_by_claim: BTreeMap<&str, (String, String)> = candidates
        .iter()
        .filter(|c| c.is("", "persistentvolumeclaims"))
        .filter_map(|c| Some((c.str_at("/spec/volumeName")?, (c.namespace()?.to_owned(), c.name().to_owned()))))
        .collect();
    for (c, decision) in candidates.iter().zip(decisions.iter_mut()) {
        if !c.is("", "persistentvolumes") {
            continue;
        }
        let Some(claim) = claim_of(c).or_else(|| bound_by_claim.get(c.name()).cloned()) else {
            if decision.is_ok() && c.str_at("/spec/persistentVolumeReclaimPolicy") == Some("Delete") {
                *decision = Err(SkipReason::UnclaimedDeleteVolume);
            }
            continue;
        };
        let name = format!("{}/{}", claim.0, claim.1);
        *decision = Err(match claims.get(&claim) {
            Some(Some((_, handle))) => SkipReason::ReplacedBySnapshot { claim: name, handle: (*handle).to_owned() },
            Some(None) => SkipReason::VolumeDataNotRestored { claim: name, volumes_requested: volumes },
            None => SkipReason::ClaimNotRestored { claim: name },
        });
    }
}

/// A selected Namespace is written when something is restored into it or the request's
/// namespace includes name it.
fn skip_empty_namespaces(candidates: &[Candidate], decisions: &mut [Decision], filters: &Filters) {
    let used: BTreeSet<&str> =
        candidates.iter().zip(decisions.iter()).filter(|(_, d)| d.is_ok()).filter_map(|(c, _)| c.namespace()).collect();
    for (c, decision) in candidates.iter().zip(decisions.iter_mut()) {
        if c.is("", "namespaces") && decision.is_ok() && !used.contains(c.name()) && !filters.namespace_named(c.name())
        {
            *decision = Err(SkipReason::NamespaceEmpty);
        }
    }
}

/// The names of token Secrets per source namespace (ServiceAccounts forget them).
pub(super) fn token_secrets(candidates: &[Candidate]) -> BTreeMap<String, BTreeSet<String>> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in candidates.iter().filter(|c| is_token_secret(c)) {
        if let Some(ns) = c.namespace() {
            map.entry(ns.to_owned()).or_default().insert(c.name().to_owned());
        }
    }
    map
}

/// The groups the archive's CRDs define.
pub(super) fn crd_groups(candidates: &[Candidate]) -> BTreeSet<String> {
    candidates
        .iter()
        .filter(|c| c.is("apiextensions.k8s.io", "customresourcedefinitions"))
        .filter_map(|c| c.object.pointer("/spec/group").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

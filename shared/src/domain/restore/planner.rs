//! [`plan`]: reads the archived objects, decides, transforms and orders them.

use std::collections::{BTreeMap, BTreeSet};

use super::candidate::{Candidate, Index};
use super::decide::{Claims, crd_groups, decide, token_secrets};
use super::filter::Filters;
use super::order::tier_of;
use super::transform::{add_labels, job, pod, retain_owner_references, service, service_account, strip_server_fields};
use super::volumes::{SNAPSHOT_GROUP, generated_name, rewire_claim, snapshot_objects};
use super::{
    PlanError, PlanOptions, PlannedObject, RESTORE_ID_LABEL, RESTORED_FROM_LABEL, RestorePlan, SkippedObject,
    SourceObject, Tier, WaitFor, namespaces,
};
use crate::domain::selection::BACKUP_ID_LABEL;

/// Plans a restore of `objects` (read from one archive, in any order) with `options`: every
/// object to write, transformed and in apply order, and every one left out with the reason.
/// The same objects and options always give the same plan.
///
/// # Errors
/// [`PlanError`] for options that cannot be honoured (an invalid label selector or id, a
/// namespace mapping onto an invalid, excluded or shared target) and for archive entries that
/// are not objects (no apiVersion, kind or name, or disagreeing with their path, or repeated).
pub fn plan(objects: impl IntoIterator<Item = SourceObject>, options: &PlanOptions) -> Result<RestorePlan, PlanError> {
    let filters = Filters::new(options)?;
    let candidates = read_all(objects)?;
    let index = Index::new(&candidates);
    let (decisions, claims) = decide(&candidates, &index, &filters);

    let restored: BTreeSet<String> = candidates
        .iter()
        .zip(&decisions)
        .filter(|(_, d)| d.is_ok())
        .filter_map(|(c, _)| c.namespace().or(c.is("", "namespaces").then(|| c.name())).map(str::to_owned))
        .collect();
    filters.check_targets(restored.iter().map(String::as_str))?;

    let builder = Builder { filters: &filters, index: &index, crd_groups: crd_groups(&candidates), claims: &claims };
    let tokens = token_secrets(&candidates);
    let mut plan = RestorePlan::default();
    let mut candidates = candidates;
    for (c, decision) in candidates.iter_mut().zip(decisions) {
        match decision {
            Ok(()) => {
                let object = std::mem::take(&mut c.object);
                builder.restore(c, object, &tokens, &mut plan.steps);
            }
            Err(reason) => plan.skipped.push(SkippedObject {
                source: c.path.as_str().to_owned(),
                namespace: c.namespace().map(str::to_owned),
                name: c.name().to_owned(),
                group: c.group.clone(),
                resource: c.resource().to_owned(),
                kind: c.kind.clone(),
                reason,
            }),
        }
    }
    builder.add_missing_namespaces(&restored, &mut plan.steps);
    plan.steps.sort_by(|a, b| step_key(a).cmp(&step_key(b)));
    Ok(plan)
}

/// Apply order: tier, then a stable key.
fn step_key(s: &PlannedObject) -> (Tier, &str, &str, Option<&str>, &str) {
    (s.tier, &s.group, &s.resource, s.namespace.as_deref(), &s.name)
}

/// Reads and checks every object, sorted by archive path.
fn read_all(objects: impl IntoIterator<Item = SourceObject>) -> Result<Vec<Candidate>, PlanError> {
    let mut by_path = BTreeMap::new();
    for source in objects {
        let path = source.path.as_str().to_owned();
        let candidate = Candidate::read(source)?;
        if by_path.insert(path.clone(), candidate).is_some() {
            return Err(PlanError::DuplicateEntry { path });
        }
    }
    Ok(by_path.into_values().collect())
}

struct Builder<'a> {
    filters: &'a Filters<'a>,
    index: &'a Index,
    crd_groups: BTreeSet<String>,
    claims: &'a Claims<'a>,
}

impl Builder<'_> {
    fn options(&self) -> &PlanOptions {
        self.filters.options
    }

    /// Transforms `object` (taken out of `c`) and adds it, with what it generates, to `steps`.
    fn restore(
        &self,
        c: &Candidate,
        mut object: serde_json::Value,
        tokens: &BTreeMap<String, BTreeSet<String>>,
        steps: &mut Vec<PlannedObject>,
    ) {
        strip_server_fields(&mut object);
        retain_owner_references(&mut object, |r| self.index.owner(c, r).is_none());
        match (c.group.as_str(), c.resource()) {
            ("", "services") => service(&mut object, self.options().keep_node_ports),
            ("batch", "jobs") => job(&mut object),
            ("", "pods") => pod(&mut object),
            ("", "serviceaccounts") => {
                let none = BTreeSet::new();
                service_account(&mut object, c.namespace().and_then(|ns| tokens.get(ns)).unwrap_or(&none));
            }
            ("", "persistentvolumeclaims") => self.restore_claim(c, &mut object, steps),
            _ => {}
        }
        namespaces::retarget(&mut object, &c.group, c.resource(), c.namespace(), self.filters);
        add_labels(&mut object, &self.labels());
        let name = if c.is("", "namespaces") { self.filters.target(c.name()) } else { c.name() };
        steps.push(PlannedObject {
            tier: tier_of(&c.group, c.resource(), &self.crd_groups),
            group: c.group.clone(),
            version: c.version.clone(),
            resource: c.resource().to_owned(),
            kind: c.kind.clone(),
            namespace: c.namespace().map(|ns| self.filters.target(ns).to_owned()),
            name: name.to_owned(),
            object,
            source: Some(c.path.as_str().to_owned()),
            wait: c.is("apiextensions.k8s.io", "customresourcedefinitions").then_some(WaitFor::CrdEstablished),
            created_by_control_plane: c.is("", "serviceaccounts") && c.name() == "default",
        });
    }

    /// Unbinds the claim and, with a ready snapshot, re-points it at a VolumeSnapshot generated
    /// with its VolumeSnapshotContent.
    fn restore_claim(&self, c: &Candidate, object: &mut serde_json::Value, steps: &mut Vec<PlannedObject>) {
        let Some(ns) = c.namespace() else { return };
        let snapshot = self.claims.get(&(ns.to_owned(), c.name().to_owned())).copied().flatten();
        let Some((record, handle)) = snapshot else {
            rewire_claim(object, None);
            return;
        };
        let name = generated_name(&self.options().restore_id, ns, c.name());
        rewire_claim(object, Some(&name));
        let target = self.filters.target(ns);
        let (content, snapshot) = snapshot_objects(record, handle, target, &name);
        self.push_generated(steps, Tier::VolumeSnapshotContents, None, &name, content, true);
        self.push_generated(steps, Tier::VolumeSnapshots, Some(target), &name, snapshot, true);
    }

    /// Generates a Namespace for each target namespace of `restored` (source namespaces) that
    /// no archived Namespace object provides.
    fn add_missing_namespaces(&self, restored: &BTreeSet<String>, steps: &mut Vec<PlannedObject>) {
        let archived: BTreeSet<&str> =
            steps.iter().filter(|s| s.tier == Tier::Namespaces).map(|s| s.name.as_str()).collect();
        let missing: BTreeSet<String> = restored
            .iter()
            .map(|ns| self.filters.target(ns))
            .filter(|t| !archived.contains(t))
            .map(str::to_owned)
            .collect();
        for target in missing {
            self.push_generated(steps, Tier::Namespaces, None, &target, namespaces::generated(&target), false);
        }
    }

    fn labels(&self) -> [(&str, &str); 2] {
        [(RESTORE_ID_LABEL, &self.options().restore_id), (RESTORED_FROM_LABEL, &self.options().backup_id)]
    }

    /// Adds a generated object; snapshot plumbing also carries the backup-id label, so that a
    /// backup of the restored cluster passes it over as Lifeboat's own.
    fn push_generated(
        &self,
        steps: &mut Vec<PlannedObject>,
        tier: Tier,
        namespace: Option<&str>,
        name: &str,
        mut object: serde_json::Value,
        snapshot_plumbing: bool,
    ) {
        add_labels(&mut object, &self.labels());
        if snapshot_plumbing {
            add_labels(&mut object, &[(BACKUP_ID_LABEL, &self.options().backup_id)]);
        }
        let (group, resource, kind) = match tier {
            Tier::VolumeSnapshotContents => (SNAPSHOT_GROUP, "volumesnapshotcontents", "VolumeSnapshotContent"),
            Tier::VolumeSnapshots => (SNAPSHOT_GROUP, "volumesnapshots", "VolumeSnapshot"),
            _ => ("", "namespaces", "Namespace"),
        };
        steps.push(PlannedObject {
            tier,
            group: group.to_owned(),
            version: "v1".to_owned(),
            resource: resource.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            object,
            source: None,
            wait: (tier == Tier::VolumeSnapshots).then_some(WaitFor::SnapshotReady),
            created_by_control_plane: false,
        });
    }
}

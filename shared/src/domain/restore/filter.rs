//! The request's selection (namespace globs, resource filters, label selector) and namespace
//! mapping, checked once before planning.

use std::collections::{BTreeMap, BTreeSet};

use super::candidate::Candidate;
use super::labels::LabelSelector;
use super::{PlanError, PlanOptions};
use crate::domain::selection::glob_match;

/// The options, validated.
#[derive(Debug)]
pub(super) struct Filters<'a> {
    pub options: &'a PlanOptions,
    pub selector: Option<LabelSelector>,
}

impl<'a> Filters<'a> {
    pub fn new(options: &'a PlanOptions) -> Result<Self, PlanError> {
        for (field, value) in [("restoreId", &options.restore_id), ("backupId", &options.backup_id)] {
            if !is_label_value(value) {
                return Err(PlanError::LabelValue { field, value: value.clone() });
            }
        }
        let selector = match options.label_selector.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => Some(
                LabelSelector::parse(text)
                    .map_err(|source| PlanError::LabelSelector { selector: text.to_owned(), source })?,
            ),
            _ => None,
        };
        let filters = Self { options, selector };
        filters.check_mapping()?;
        Ok(filters)
    }

    fn check_mapping(&self) -> Result<(), PlanError> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (source, target) in &self.options.namespace_mapping {
            let (source_namespace, t) = (source.clone(), target.clone());
            if !is_dns_label(target) {
                return Err(PlanError::InvalidTargetNamespace { source_namespace, target: t });
            }
            if self.options.exclude_namespaces.iter().any(|g| glob_match(g, target)) {
                return Err(PlanError::TargetNamespaceExcluded { source_namespace, target: t });
            }
            if !self.namespace_selected(source) {
                return Err(PlanError::MappingSourceNotSelected { source_namespace, target: t });
            }
            if let Some(first) = seen.insert(target, source) {
                return Err(PlanError::DuplicateTargetNamespace {
                    target: t,
                    first: first.to_owned(),
                    second: source_namespace,
                });
            }
        }
        Ok(())
    }

    /// Whether the namespace globs select source namespace `ns`.
    pub fn namespace_selected(&self, ns: &str) -> bool {
        let o = self.options;
        let included = o.include_namespaces.is_empty() || o.include_namespaces.iter().any(|g| glob_match(g, ns));
        included && !o.exclude_namespaces.iter().any(|g| glob_match(g, ns))
    }

    /// Whether a non-empty include list names `ns`.
    pub fn namespace_named(&self, ns: &str) -> bool {
        self.options.include_namespaces.iter().any(|g| glob_match(g, ns))
    }

    /// Whether the resource filters select `c`'s type (plural, group-resource or kind).
    pub fn resource_selected(&self, c: &Candidate) -> bool {
        let gr = c.group_resource();
        let matches = |filter: &String| {
            let f = filter.to_ascii_lowercase();
            f == c.resource() || f == gr || f == c.kind.to_ascii_lowercase()
        };
        let o = self.options;
        (o.include_resources.is_empty() || o.include_resources.iter().any(matches))
            && !o.exclude_resources.iter().any(matches)
    }

    /// Whether `c`'s labels match the selector (always, without one).
    pub fn labels_match(&self, c: &Candidate) -> bool {
        self.selector.as_ref().is_none_or(|s| s.matches(&c.labels()))
    }

    /// The target namespace of source namespace `ns`.
    pub fn target<'n>(&'n self, ns: &'n str) -> &'n str {
        self.options.namespace_mapping.get(ns).map_or(ns, String::as_str)
    }

    /// Checks that no two of the restored source namespaces land in one target (a mapping onto
    /// a namespace that is itself restored unmapped).
    pub fn check_targets<'n>(&self, sources: impl IntoIterator<Item = &'n str>) -> Result<(), PlanError> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        let sources: BTreeSet<&str> = sources.into_iter().collect();
        for source in sources {
            if let Some(first) = seen.insert(self.target(source), source) {
                return Err(PlanError::DuplicateTargetNamespace {
                    target: self.target(source).to_owned(),
                    first: first.to_owned(),
                    second: source.to_owned(),
                });
            }
        }
        Ok(())
    }
}

fn is_label_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

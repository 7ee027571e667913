//! Why a plan cannot be made. Nothing is applied when planning fails.

use super::labels::SelectorError;

/// A request or an archive the planner refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The label selector does not parse.
    #[error("invalid label selector {selector:?}")]
    LabelSelector {
        /// The selector as given.
        selector: String,
        /// What is wrong with it.
        #[source]
        source: SelectorError,
    },
    /// An id that must become a label value is not a valid one.
    #[error(
        "{field} {value:?} is not a valid label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
    )]
    LabelValue {
        /// Which option: `restoreId` or `backupId`.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A mapping's target is not a valid namespace name.
    #[error("namespace mapping {source_namespace:?} -> {target:?}: the target is not a valid namespace name")]
    InvalidTargetNamespace {
        /// The source namespace.
        source_namespace: String,
        /// The target given.
        target: String,
    },
    /// A mapping's target is excluded by the request's namespace filters.
    #[error("namespace mapping {source_namespace:?} -> {target:?}: the target is excluded by the namespace filters")]
    TargetNamespaceExcluded {
        /// The source namespace.
        source_namespace: String,
        /// The target.
        target: String,
    },
    /// A mapping names a source namespace the namespace filters do not select.
    #[error(
        "namespace mapping {source_namespace:?} -> {target:?}: the source is not selected by the namespace filters"
    )]
    MappingSourceNotSelected {
        /// The source namespace.
        source_namespace: String,
        /// The target.
        target: String,
    },
    /// Two restored source namespaces would land in one target namespace.
    #[error("namespaces {first:?} and {second:?} would both be restored into {target:?}")]
    DuplicateTargetNamespace {
        /// The target namespace.
        target: String,
        /// One source namespace.
        first: String,
        /// The other.
        second: String,
    },
    /// An archived object the planner cannot read.
    #[error("archive entry {path}: {reason}")]
    MalformedObject {
        /// Its archive path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same archive path given twice.
    #[error("archive entry {path} appears twice")]
    DuplicateEntry {
        /// The archive path.
        path: String,
    },
}

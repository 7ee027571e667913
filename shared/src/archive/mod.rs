//! The backup archive: a cluster's Kubernetes objects in Velero's layout ([`layout`]).

pub mod layout;

pub use layout::{EntryPath, FORMAT_VERSION, LayoutError, VERSION_PATH};

//! The backup benchmark: export time against a raw parallel list of the same objects from the
//! same test API server, and the export's peak memory, at several object counts. Used by the
//! `backup-bench` binary.

pub mod args;
pub mod child;
pub mod report;
pub mod runner;
pub mod seed;

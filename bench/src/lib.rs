//! Benchmarks. `coldstart`: how fast a custom-handler binary answers its first health probe
//! after `exec`, and how much memory it holds, against a baseline binary. `backup-bench`: the
//! export's time against a raw list of the same objects, and its peak memory ([`backup`]). `retention-bench`: retention planning and prune
//! requests ([`retention`]).

pub mod args;
pub mod backup;
pub mod probe;
pub mod report;
pub mod restore;
pub mod retention;

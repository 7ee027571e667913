//! Measures how fast a custom-handler binary answers its first health probe after `exec`, and
//! how much memory it holds, against a baseline binary. Used by the `coldstart` binary.

pub mod args;
pub mod probe;
pub mod report;

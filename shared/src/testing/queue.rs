//! The queue conformance suite (filled in below).

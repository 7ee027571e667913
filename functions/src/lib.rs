//! Placeholder for the `lifeboat` handler package; the real crate replaces this file.

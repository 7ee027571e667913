//! Hosts: what wires the handlers to the outside world.

pub mod custom_handler;
pub mod lambda;
pub mod local;
mod payload;

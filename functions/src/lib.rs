//! Lifeboat's function app: the handlers, the hosts that wire them (the Azure Functions custom
//! handler and the local runtime), and the operator CLI.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod alerts;
pub mod app;
pub mod bus;
pub mod cli;
pub mod clusters;
pub mod demo;
pub mod function_defs;
pub mod handlers;
pub mod hosts;
pub mod replica;
pub mod replicas;
pub mod storage;

//! Lifeboat's function app: the handlers, the hosts that wire them (the Azure Functions custom
//! handler and the local runtime), and the operator CLI.

pub mod app;
pub mod cli;
pub mod demo;
pub mod function_defs;
pub mod handlers;
pub mod hosts;
pub mod storage;

//! `retention-bench`: retention planning time over a large catalog ([`planning`]), and the
//! Table Storage requests a daily prune costs, counted through the state-store port
//! ([`requests`]).

pub mod planning;
pub mod requests;

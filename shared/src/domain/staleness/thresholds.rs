//! The numbers that turn ages and counts into findings, and how often a firing alert repeats.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::policy::humantime_serde_compat;

/// When conditions count as problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Thresholds {
    /// Warn once the newest backup is this share of its RPO old (1–100; 80 by default).
    pub warn_at_percent: u8,
    /// A backup in progress unchanged for longer than this is stuck (3h by default).
    #[serde(with = "humantime_serde_compat")]
    pub stuck_after: Duration,
    /// This many failed backups in a row, newest first, make a target failing (3 by default).
    pub failed_in_a_row: u32,
    /// A drill that took longer than this missed its RTO target (4h by default).
    #[serde(with = "humantime_serde_compat")]
    pub drill_rto: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            warn_at_percent: 80,
            stuck_after: Duration::from_secs(3 * 3600),
            failed_in_a_row: 3,
            drill_rto: Duration::from_secs(4 * 3600),
        }
    }
}

impl Thresholds {
    /// Every problem with the values, as (field, problem) pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(1..=100).contains(&self.warn_at_percent) {
            problems.push(("thresholds.warnAtPercent", "must be between 1 and 100".to_owned()));
        }
        if self.stuck_after.is_zero() {
            problems.push(("thresholds.stuckAfter", "must be longer than zero".to_owned()));
        }
        if self.failed_in_a_row == 0 {
            problems.push(("thresholds.failedInARow", "must be at least 1".to_owned()));
        }
        if self.drill_rto.is_zero() {
            problems.push(("thresholds.drillRto", "must be longer than zero".to_owned()));
        }
        problems
    }
}

/// How a firing alert repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AlertTiming {
    /// A firing alert is notified again after this long (4h by default); sooner when its
    /// severity rises.
    #[serde(with = "humantime_serde_compat")]
    pub renotify_every: Duration,
}

impl Default for AlertTiming {
    fn default() -> Self {
        Self { renotify_every: Duration::from_secs(4 * 3600) }
    }
}

//! Staleness and health: which conditions hold for each target and cluster, and what the
//! alert of a cluster should do about them. Pure: takes records, `now` and thresholds;
//! returns findings and decisions. The `staleness` workflow reads the records and acts.
//!
//! Conditions (thresholds in [`Thresholds`], documented in `docs/alerts.md`):
//! - **RPO**: the newest committed backup of a target is older than `warnAtPercent` of the
//!   policy's `rpo` (warning: the RPO is about to be missed) or than the RPO (critical).
//! - **Replication RPO**: the same for the newest replicated backup against `replication.rpo`.
//! - **Stuck**: a backup in `Requested`, `Running` or `WaitingForSnapshots` unchanged for longer
//!   than `stuckAfter` (warning).
//! - **Failing**: the newest `failedInARow` finished backups of a target all failed (critical).
//! - **Orphans**: VolumeSnapshots labelled with a backup id the catalog does not know (warning).
//! - **Drill**: the newest finished drill of a cluster failed (critical) or took longer than
//!   `drillRto` (warning).
//!
//! Alerts are grouped per cluster: every finding of one cluster feeds one alert
//! (`health.{cluster}`), so many stale targets produce one notification, not a storm.

mod conditions;
mod lifecycle;
mod thresholds;

pub use conditions::{Condition, DRILL_REQUESTER, Finding, drill_finding, orphan_finding, target_findings};
pub use lifecycle::{AlertStatus, Decision, cluster_alert_id, decide, worst};
pub use thresholds::{AlertTiming, Thresholds};

#[cfg(test)]
mod tests;

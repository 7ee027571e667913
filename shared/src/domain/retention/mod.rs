//! Retention: which backups of one target to keep and which to remove, and every rule that
//! kept each one. Pure: takes the backups, the policy's [`Retention`](super::policy::Retention)
//! and `now`, returns decisions that `workflows::prune` carries out.
//!
//! # Rules, with restic `forget`'s meaning
//!
//! Committed backups that are not pre-upgrade backups form the regular series, newest first:
//!
//! - `keepLast: N` keeps the N newest.
//! - `hourly`, `daily`, `weekly`, `monthly`, `yearly: N` keep, for the N most recent hours
//!   (days, …) that have a backup, the newest backup of each. Buckets follow calendar
//!   boundaries in the policy's `timeZone` (UTC by default), not "24 hours before now"; weeks
//!   are ISO weeks (Monday to Sunday). When fewer than N such periods have a backup, the
//!   oldest backup is kept as well (`oldest daily`), as restic does.
//! - `within: D` keeps every backup taken within D of the newest backup of the series (not of
//!   `now`: when backups stop, nothing more ages out).
//!
//! A backup is kept when any rule keeps it; the decision lists them all.
//!
//! Pre-upgrade backups are a series of their own with their own rule
//! ([`PreUpgradeRetention`](super::policy::PreUpgradeRetention)); uncommitted backups (no
//! manifest) are kept while younger than a grace period (they may still be in progress) and
//! removed after it. On top, whatever the rules say, these are never removed:
//!
//! - the newest committed backup of the target,
//! - a pinned backup (legal hold),
//! - a backup whose immutability period has not ended,
//! - a backup a running restore reads,
//! - a backup dated after `now` (a skewed clock; restic's duration rules ignore these too).
//!
//! # Differences from restic
//!
//! - Durations are humantime's (`7d`, `26h`; `1month` is 30.44 days, `1y` 365.25 days), not
//!   calendar months and years.
//! - Counts cannot be `unlimited`; use a large number.
//! - restic's `keep-within-{hourly,…}` and `keep-tag` have no counterpart (pinning replaces
//!   tags); `keepLast` does not count backups dated in the future.
//! - Primary and replica are planned separately, each with its own retention
//!   ([`PolicySpec::replica_retention`](super::policy::PolicySpec::replica_retention)).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use lifeboat_shared::domain::policy::Retention;
//! use lifeboat_shared::domain::retention::{plan, Candidate, Options};
//!
//! let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
//! let backups: Vec<Candidate> = (0..5)
//!     .map(|d| Candidate::committed(format!("b{d}"), now - chrono::Duration::days(d)))
//!     .collect();
//! let retention = Retention { daily: Some(2), ..Retention::default() };
//! let decisions = plan(&retention, &backups, &Options::at(now));
//! let kept: Vec<_> = backups.iter().zip(&decisions).filter(|(_, d)| d.is_kept()).map(|(b, _)| b.id.as_str()).collect();
//! assert_eq!(kept, ["b0", "b1"]);
//! assert_eq!(decisions[1].to_string(), "keep: daily #2");
//! ```

mod bucket;
mod candidate;
mod plan;
mod reason;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod restic_examples;

pub use bucket::Bucket;
pub use candidate::{Candidate, Options};
pub use plan::plan;
pub use reason::{Decision, KeepReason, RemoveReason};

//! Why a backup is kept or removed, as people read it (`daily #3`, `within 7d`).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::bucket::Bucket;
use crate::domain::policy::format_duration;

/// One rule that keeps a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "rule")]
pub enum KeepReason {
    /// Among the newest `keepLast` (rank 1 is the newest).
    Last {
        /// Position, newest first.
        rank: u32,
    },
    /// The newest of its hour (day, …), among the newest N such periods.
    Bucket {
        /// The period.
        bucket: Bucket,
        /// Position of the period, newest first.
        rank: u32,
    },
    /// The oldest backup, kept because fewer periods than asked have a backup.
    Oldest {
        /// The bucket rule left unfilled.
        bucket: Bucket,
    },
    /// Taken within `within` of the newest backup of its series.
    Within {
        /// The policy's duration.
        #[serde(with = "duration_text")]
        within: Duration,
    },
    /// Among the newest pre-upgrade backups.
    PreUpgradeLast {
        /// Position, newest first.
        rank: u32,
    },
    /// Taken within the pre-upgrade rule's duration of the newest pre-upgrade backup.
    PreUpgradeWithin {
        /// The rule's duration.
        #[serde(with = "duration_text")]
        within: Duration,
    },
    /// The newest committed backup of the target: never removed.
    NewestCommitted,
    /// Under legal hold.
    Pinned,
    /// Immutable in the object store until then.
    Immutable {
        /// End of the immutability period.
        until: DateTime<Utc>,
    },
    /// A running restore reads it.
    InUse,
    /// Not committed yet, and younger than the grace period: may still be in progress.
    InProgress,
    /// Dated after `now` (a skewed clock): left alone.
    Future,
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepReason::Last { rank } => write!(f, "last #{rank}"),
            KeepReason::Bucket { bucket, rank } => write!(f, "{} #{rank}", bucket.name()),
            KeepReason::Oldest { bucket } => write!(f, "oldest {}", bucket.name()),
            KeepReason::Within { within } => write!(f, "within {}", format_duration(*within)),
            KeepReason::PreUpgradeLast { rank } => write!(f, "pre-upgrade last #{rank}"),
            KeepReason::PreUpgradeWithin { within } => write!(f, "pre-upgrade within {}", format_duration(*within)),
            KeepReason::NewestCommitted => f.write_str("newest committed"),
            KeepReason::Pinned => f.write_str("pinned"),
            KeepReason::Immutable { until } => write!(f, "immutable until {}", until.format("%Y-%m-%dT%H:%M:%SZ")),
            KeepReason::InUse => f.write_str("read by a running restore"),
            KeepReason::InProgress => f.write_str("uncommitted, within grace"),
            KeepReason::Future => f.write_str("dated in the future"),
        }
    }
}

/// Why a backup is removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum RemoveReason {
    /// Committed, and no rule keeps it.
    NoRule,
    /// Never committed, and older than the grace period: a leftover.
    Uncommitted {
        /// The grace period it outlived.
        #[serde(with = "duration_text")]
        grace: Duration,
    },
    /// A replica whose primary backup is removed: a replica never outlives its primary.
    WithPrimary,
}

impl fmt::Display for RemoveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoveReason::NoRule => f.write_str("no rule keeps it"),
            RemoveReason::Uncommitted { grace } => {
                write!(f, "uncommitted leftover older than {}", format_duration(*grace))
            }
            RemoveReason::WithPrimary => f.write_str("its primary is removed"),
        }
    }
}

/// What retention decided for one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "verdict", content = "because")]
pub enum Decision {
    /// Kept, by every rule listed (never empty).
    Keep(Vec<KeepReason>),
    /// Removed.
    Remove(RemoveReason),
}

impl Decision {
    /// The rules that keep it, or why it goes, without the verdict (`last #1, daily #1`).
    pub fn because(&self) -> String {
        match self {
            Decision::Keep(reasons) => reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            Decision::Remove(reason) => reason.to_string(),
        }
    }

    /// Whether the backup stays.
    pub fn is_kept(&self) -> bool {
        matches!(self, Decision::Keep(_))
    }

    /// The rules that keep it (empty when removed).
    pub fn kept_by(&self) -> &[KeepReason] {
        match self {
            Decision::Keep(reasons) => reasons,
            Decision::Remove(_) => &[],
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_kept() { "keep" } else { "remove" };
        write!(f, "{verdict}: {}", self.because())
    }
}

mod duration_text {
    use std::time::Duration;

    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::domain::policy::format_duration(*d))
    }
}

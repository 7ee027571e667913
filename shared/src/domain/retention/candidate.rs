//! What retention knows of one backup, and the moment it decides at.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One backup of a target, as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The catalog's backup id (or any label: retention only carries it).
    pub id: String,
    /// When it was taken (the slot or event time the buckets are computed from).
    pub time: DateTime<Utc>,
    /// Whether its manifest is written (only committed backups can be restored).
    pub committed: bool,
    /// Taken because the cluster was about to be upgraded (judged by the pre-upgrade rule).
    pub pre_upgrade: bool,
    /// Under legal hold, set from the CLI: never removed while pinned.
    pub pinned: bool,
    /// The end of its immutability period in the object store (never removed before).
    pub immutable_until: Option<DateTime<Utc>>,
    /// A running restore reads it.
    pub in_use: bool,
}

impl Candidate {
    /// A committed, regular backup without flags.
    pub fn committed(id: impl Into<String>, time: DateTime<Utc>) -> Self {
        Self {
            id: id.into(),
            time,
            committed: true,
            pre_upgrade: false,
            pinned: false,
            immutable_until: None,
            in_use: false,
        }
    }

    /// Whether it is immutable at `now`.
    pub fn is_immutable_at(&self, now: DateTime<Utc>) -> bool {
        self.immutable_until.is_some_and(|until| until > now)
    }
}

/// When retention decides, and how long an uncommitted backup may still be in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The moment of the decision.
    pub now: DateTime<Utc>,
    /// Uncommitted backups younger than this are left alone (they may still commit); older
    /// ones are leftovers and removed.
    pub uncommitted_grace: Duration,
}

impl Options {
    /// How long an uncommitted backup may be in progress unless configured otherwise: a day,
    /// well past the longest snapshot wait.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

    /// Deciding at `now` with the default grace period.
    pub fn at(now: DateTime<Utc>) -> Self {
        Self { now, uncommitted_grace: Self::DEFAULT_GRACE }
    }
}

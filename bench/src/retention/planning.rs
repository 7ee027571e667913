//! Times `domain::retention::plan` over synthetic catalogs of hourly backups.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use lifeboat_shared::domain::policy::Retention;
use lifeboat_shared::domain::retention::{self, Candidate, Options};

/// A busy production policy: a day of hourlies, two weeks of dailies, then weeks, months, years.
pub fn policy() -> Retention {
    Retention {
        keep_last: Some(24),
        hourly: Some(48),
        daily: Some(14),
        weekly: Some(8),
        monthly: Some(12),
        yearly: Some(3),
        within: Some(Duration::from_secs(2 * 86_400)),
        pre_upgrade: None,
        time_zone: Some(chrono_tz::Europe::Berlin),
    }
}

/// The moment every plan decides at.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).single().unwrap_or_default()
}

/// `count` hourly backups of one target, newest an hour before [`now`], every 50th a
/// pre-upgrade backup and every 1000th pinned, in catalog (id) order.
pub fn catalog(count: usize) -> Vec<Candidate> {
    (0..count)
        .map(|i| {
            let hours = i64::try_from(count - i).unwrap_or(i64::MAX);
            let mut c = Candidate::committed(format!("b-{i:07}"), now() - chrono::Duration::hours(hours));
            c.pre_upgrade = i % 50 == 7;
            c.pinned = i % 1000 == 999;
            c
        })
        .collect()
}

/// One measured shape.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measurement {
    /// What was planned.
    pub shape: String,
    /// Catalog entries planned in all.
    pub entries: usize,
    /// Kept by the plan.
    pub kept: usize,
    /// Fastest of the runs, milliseconds.
    pub best_ms: f64,
    /// Median of the runs, milliseconds.
    pub median_ms: f64,
}

/// Plans `targets` catalogs of `per_target` backups, `runs` times; the catalogs are built
/// before the clock starts.
pub fn measure(targets: usize, per_target: usize, runs: usize) -> Measurement {
    let catalogs: Vec<Vec<Candidate>> = (0..targets).map(|_| catalog(per_target)).collect();
    let (retention, options) = (policy(), Options::at(now()));
    let mut times = Vec::with_capacity(runs);
    let mut kept = 0;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        kept = catalogs
            .iter()
            .map(|c| retention::plan(&retention, c, &options).iter().filter(|d| d.is_kept()).count())
            .sum();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Measurement {
        shape: format!("{targets} target(s) x {per_target} backups"),
        entries: targets * per_target,
        kept,
        best_ms: times.first().copied().unwrap_or_default(),
        median_ms: times.get(times.len() / 2).copied().unwrap_or_default(),
    }
}

//! The retention decision for one target's backups.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::bucket::{Bucket, LocalKeys};
use super::candidate::{Candidate, Options};
use super::reason::{Decision, KeepReason, RemoveReason};
use crate::domain::policy::Retention;

/// Decides, for each of one target's `backups` (one region's copies), whether `retention` keeps
/// it and why. The result is parallel to `backups`. See the [module docs](super) for the rules
/// and the safety guarantees; the input's order does not matter.
pub fn plan(retention: &Retention, backups: &[Candidate], options: &Options) -> Vec<Decision> {
    let now = options.now;
    let mut reasons: Vec<Vec<KeepReason>> = vec![Vec::new(); backups.len()];

    // Committed backups not dated in the future, newest first (ties by id, so plans are stable).
    let mut newest_first: Vec<usize> =
        (0..backups.len()).filter(|&i| backups[i].committed && backups[i].time <= now).collect();
    newest_first.sort_unstable_by(|&a, &b| {
        let (a, b) = (&backups[a], &backups[b]);
        b.time.cmp(&a.time).then_with(|| a.id.cmp(&b.id))
    });
    let (pre_upgrade, regular): (Vec<usize>, Vec<usize>) = newest_first.iter().partition(|&&i| backups[i].pre_upgrade);

    let mut series = Series { backups, reasons: &mut reasons };
    let tz = retention.time_zone.unwrap_or(Tz::UTC);
    series.apply(&regular, retention.keep_last, |rank| KeepReason::Last { rank });
    series.apply_buckets(&regular, retention, tz);
    series.apply_within(&regular, retention.within, |within| KeepReason::Within { within });
    let pre = retention.pre_upgrade_rule();
    series.apply(&pre_upgrade, pre.keep_last, |rank| KeepReason::PreUpgradeLast { rank });
    series.apply_within(&pre_upgrade, pre.within, |within| KeepReason::PreUpgradeWithin { within });
    if let Some(&newest) = newest_first.first() {
        series.reasons[newest].push(KeepReason::NewestCommitted);
    }

    backups
        .iter()
        .zip(reasons)
        .map(|(backup, mut kept_by)| {
            kept_by.extend(safety_reasons(backup, options));
            if !kept_by.is_empty() {
                Decision::Keep(kept_by)
            } else if backup.committed {
                Decision::Remove(RemoveReason::NoRule)
            } else {
                Decision::Remove(RemoveReason::Uncommitted { grace: options.uncommitted_grace })
            }
        })
        .collect()
}

/// The rules that hold whatever the policy says.
fn safety_reasons(backup: &Candidate, options: &Options) -> impl Iterator<Item = KeepReason> {
    let now = options.now;
    let in_progress = !backup.committed && age(backup.time, now) < options.uncommitted_grace;
    [
        backup.pinned.then_some(KeepReason::Pinned),
        backup.immutable_until.filter(|until| *until > now).map(|until| KeepReason::Immutable { until }),
        backup.in_use.then_some(KeepReason::InUse),
        (backup.time > now).then_some(KeepReason::Future),
        in_progress.then_some(KeepReason::InProgress),
    ]
    .into_iter()
    .flatten()
}

/// How long before `now` `time` was (zero when after it).
fn age(time: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - time).to_std().unwrap_or(Duration::ZERO)
}

/// One series (indexes into the backups, newest first) and the reasons collected so far.
struct Series<'a> {
    backups: &'a [Candidate],
    reasons: &'a mut [Vec<KeepReason>],
}

impl Series<'_> {
    /// keepLast: the newest `count`.
    fn apply(&mut self, series: &[usize], count: Option<u32>, reason: impl Fn(u32) -> KeepReason) {
        let count = count.unwrap_or(0) as usize;
        for (rank, &i) in (1..).zip(series.iter().take(count)) {
            self.reasons[i].push(reason(rank));
        }
    }

    /// Every backup within `within` of the series' newest.
    fn apply_within(&mut self, series: &[usize], within: Option<Duration>, reason: impl Fn(Duration) -> KeepReason) {
        let (Some(within), Some(&newest)) = (within, series.first()) else { return };
        let threshold = TimeDelta::from_std(within).ok().and_then(|d| self.backups[newest].time.checked_sub_signed(d));
        for &i in series {
            if threshold.is_some_and(|t| self.backups[i].time < t) {
                break; // newest first: every later one is older still
            }
            self.reasons[i].push(reason(within));
        }
    }

    /// hourly … yearly: the newest backup of each of the newest N periods with a backup, and
    /// the oldest backup when fewer than N periods have one.
    fn apply_buckets(&mut self, series: &[usize], retention: &Retention, tz: Tz) {
        let rules: Vec<(Bucket, u32)> = Bucket::ALL
            .into_iter()
            .zip([retention.hourly, retention.daily, retention.weekly, retention.monthly, retention.yearly])
            .filter_map(|(bucket, count)| count.filter(|n| *n > 0).map(|n| (bucket, n)))
            .collect();
        if rules.is_empty() || series.is_empty() {
            return;
        }
        let keys: Vec<LocalKeys> = series.iter().map(|&i| LocalKeys::new(self.backups[i].time, tz)).collect();
        for (bucket, count) in rules {
            let mut kept = 0;
            let mut last_key = None;
            let mut oldest_kept = false;
            for (position, (&i, keys)) in series.iter().zip(&keys).enumerate() {
                if kept == count {
                    break;
                }
                let key = keys.key(bucket);
                if last_key != Some(key) {
                    kept += 1;
                    last_key = Some(key);
                    self.reasons[i].push(KeepReason::Bucket { bucket, rank: kept });
                    oldest_kept = position + 1 == series.len();
                }
            }
            if let Some(&oldest) = series.last().filter(|_| kept < count && !oldest_kept) {
                self.reasons[oldest].push(KeepReason::Oldest { bucket });
            }
        }
    }
}

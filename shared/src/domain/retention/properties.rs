//! The safety invariants of retention, as properties over random catalogs and policies.

use chrono::{DateTime, Duration as Delta, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::domain::policy::{PreUpgradeRetention, Retention};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

prop_compose! {
    /// A backup within the last ~two years (a few in the future), with random flags.
    fn candidate()(
        minutes_ago in -600i64..1_000_000,
        committed in prop::bool::weighted(0.85),
        pre_upgrade in prop::bool::weighted(0.15),
        pinned in prop::bool::weighted(0.05),
        immutable_days in prop::option::weighted(0.1, -30i64..30),
        in_use in prop::bool::weighted(0.05),
    ) -> Candidate {
        Candidate {
            id: format!("b{minutes_ago}"),
            time: now() - Delta::minutes(minutes_ago),
            committed,
            pre_upgrade,
            pinned,
            immutable_until: immutable_days.map(|d| now() + Delta::days(d)),
            in_use,
        }
    }
}

fn count() -> impl Strategy<Value = Option<u32>> {
    prop::option::of(0u32..12)
}

prop_compose! {
    fn retention()(
        keep_last in count(), hourly in count(), daily in count(), weekly in count(),
        monthly in count(), yearly in count(),
        within_hours in prop::option::of(1u64..2_000),
        pre in prop::option::of((count(), prop::option::of(1u64..2_000))),
        zone in prop::sample::select(vec![None, Some(chrono_tz::Europe::Berlin), Some(chrono_tz::Asia::Kolkata), Some(chrono_tz::America::New_York)]),
    ) -> Retention {
        let hours = |h: u64| std::time::Duration::from_secs(h * 3600);
        Retention {
            keep_last, hourly, daily, weekly, monthly, yearly,
            within: within_hours.map(hours),
            pre_upgrade: pre.map(|(keep_last, within)| PreUpgradeRetention { keep_last, within: within.map(hours) }),
            time_zone: zone,
        }
    }
}

fn catalog() -> impl Strategy<Value = Vec<Candidate>> {
    prop::collection::vec(candidate(), 0..80)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_newest_committed_backup_is_never_removed(retention in retention(), backups in catalog()) {
        let decisions = plan(&retention, &backups, &Options::at(now()));
        let newest = backups.iter().zip(&decisions).filter(|(b, _)| b.committed).max_by_key(|(b, _)| b.time);
        if let Some((b, d)) = newest {
            prop_assert!(d.is_kept(), "{} removed: {d}", b.id);
        }
    }

    #[test]
    fn legal_hold_and_immutability_are_never_removed(retention in retention(), backups in catalog()) {
        for (b, d) in backups.iter().zip(plan(&retention, &backups, &Options::at(now()))) {
            if b.pinned || b.is_immutable_at(now()) {
                prop_assert!(d.is_kept(), "{} removed: {d}", b.id);
            }
        }
    }

    #[test]
    fn a_backup_a_running_restore_reads_is_never_removed(retention in retention(), backups in catalog()) {
        for (b, d) in backups.iter().zip(plan(&retention, &backups, &Options::at(now()))) {
            if b.in_use {
                prop_assert!(d.is_kept(), "{} removed: {d}", b.id);
            }
        }
    }

    #[test]
    fn pruning_what_a_prune_kept_removes_nothing(retention in retention(), backups in catalog()) {
        let options = Options::at(now());
        let decisions = plan(&retention, &backups, &options);
        let kept: Vec<Candidate> =
            backups.iter().zip(&decisions).filter(|(_, d)| d.is_kept()).map(|(b, _)| b.clone()).collect();
        let again = plan(&retention, &kept, &options);
        for (b, d) in kept.iter().zip(&again) {
            prop_assert!(d.is_kept(), "{} kept first, then {d}", b.id);
        }
    }

    #[test]
    fn every_kept_backup_names_a_rule_and_the_input_order_does_not_matter(
        retention in retention(), backups in catalog(), seed in any::<u64>(),
    ) {
        let options = Options::at(now());
        let decisions = plan(&retention, &backups, &options);
        let mut shuffled: Vec<(Candidate, Decision)> = backups.iter().cloned().zip(decisions).collect();
        // A deterministic shuffle from the seed.
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) >> 33) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        let (input, expected): (Vec<Candidate>, Vec<Decision>) = shuffled.into_iter().unzip();
        prop_assert_eq!(plan(&retention, &input, &options), expected);
    }
}

//! restic's documented `forget` examples (doc/060_forget.rst), and the rules Lifeboat adds.

use chrono::{DateTime, Duration as Days, NaiveDate, TimeZone, Utc};

use super::*;
use crate::domain::policy::{PreUpgradeRetention, Retention};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn candidates(times: &[&str]) -> Vec<Candidate> {
    times.iter().map(|t| Candidate::committed(*t, at(t))).collect()
}

/// The ids kept, in input order.
fn kept(retention: &Retention, backups: &[Candidate], now: DateTime<Utc>) -> Vec<String> {
    let decisions = plan(retention, backups, &Options::at(now));
    backups.iter().zip(&decisions).filter(|(_, d)| d.is_kept()).map(|(b, _)| b.id.clone()).collect()
}

/// "Suppose you have only made one backup every Sunday for 12 weeks."
const SUNDAYS: [&str; 12] = [
    "2019-09-01T11:00:00Z",
    "2019-09-08T11:00:00Z",
    "2019-09-15T11:00:00Z",
    "2019-09-22T11:00:00Z",
    "2019-09-29T11:00:00Z",
    "2019-10-06T11:00:00Z",
    "2019-10-13T11:00:00Z",
    "2019-10-20T11:00:00Z",
    "2019-10-27T11:00:00Z",
    "2019-11-03T11:00:00Z",
    "2019-11-10T11:00:00Z",
    "2019-11-17T11:00:00Z",
];

#[test]
fn restic_sundays_keep_daily_4_keeps_the_last_four_sundays() {
    let backups = candidates(&SUNDAYS);
    let retention = Retention { daily: Some(4), ..Retention::default() };
    let now = at("2019-11-18T09:00:00Z");
    assert_eq!(kept(&retention, &backups, now), SUNDAYS[8..]);
    let decisions = plan(&retention, &backups, &Options::at(now));
    assert_eq!(decisions[8].to_string(), "keep: daily #4");
    assert_eq!(decisions[11].to_string(), "keep: daily #1, newest committed");
    assert_eq!(decisions[0].to_string(), "remove: no rule keeps it");
}

#[test]
fn restic_sundays_keep_weekly_and_monthly_count_periods_not_backups() {
    let backups = candidates(&SUNDAYS);
    let now = at("2019-11-18T09:00:00Z");
    // One backup a week: weekly 4 keeps the same four as daily 4.
    let weekly = Retention { weekly: Some(4), ..Retention::default() };
    assert_eq!(kept(&weekly, &backups, now), SUNDAYS[8..]);
    // Monthly 2: the newest of November (17th) and of October (27th).
    let monthly = Retention { monthly: Some(2), ..Retention::default() };
    assert_eq!(kept(&monthly, &backups, now), ["2019-10-27T11:00:00Z", "2019-11-17T11:00:00Z"]);
}

#[test]
fn restic_keep_last_1_keeps_the_newest() {
    let backups = candidates(&["2017-02-21T10:49:18Z", "2017-02-21T10:48:33Z"]);
    let retention = Retention { keep_last: Some(1), ..Retention::default() };
    assert_eq!(kept(&retention, &backups, at("2017-02-22T00:00:00Z")), ["2017-02-21T10:49:18Z"]);
}

#[test]
fn restic_a_century_of_dailies_keeps_7_daily_4_weekly_11_or_12_monthly_74_or_75_yearly() {
    // "suppose you make one backup every day for 100 years. Then forget --keep-daily 7
    // --keep-weekly 5 --keep-monthly 12 --keep-yearly 75 would keep the most recent 7 daily
    // snapshots and 4 last-day-of-the-week ones … 12 or 11 last-day-of-the-month … 75 or 74
    // last-day-of-the-year snapshots".
    // The docs count the dailies as holding one weekly and the monthlies one yearly: the newest
    // backup is on a Sunday in December.
    let last = Utc.with_ymd_and_hms(2026, 12, 27, 3, 0, 0).unwrap();
    let backups: Vec<Candidate> =
        (0..36_525).rev().map(|d| Candidate::committed(format!("d{d}"), last - Days::days(d))).collect();
    let retention =
        Retention { daily: Some(7), weekly: Some(5), monthly: Some(12), yearly: Some(75), ..Retention::default() };
    let now = backups[backups.len() - 1].time + Days::hours(1);
    let decisions = plan(&retention, &backups, &Options::at(now));
    let only = |bucket: Bucket| {
        decisions
            .iter()
            .filter(|d| {
                let rules: Vec<_> = d.kept_by().iter().filter(|r| !matches!(r, KeepReason::NewestCommitted)).collect();
                rules.first().is_some_and(|r| matches!(r, KeepReason::Bucket { bucket: b, .. } if *b == bucket))
            })
            .count()
    };
    assert_eq!(only(Bucket::Daily), 7);
    assert_eq!(only(Bucket::Weekly), 4, "the 7 dailies already hold one weekly");
    assert!((11..=12).contains(&only(Bucket::Monthly)), "{}", only(Bucket::Monthly));
    assert!((74..=75).contains(&only(Bucket::Yearly)), "{}", only(Bucket::Yearly));
    let total = decisions.iter().filter(|d| d.is_kept()).count();
    assert_eq!(total, 7 + 4 + only(Bucket::Monthly) + only(Bucket::Yearly));
}

#[test]
fn restic_keep_within_counts_from_the_newest_backup_not_from_now() {
    let backups = candidates(&["2026-01-10T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-02T23:00:00Z"]);
    let retention = Retention { within: Some(std::time::Duration::from_secs(7 * 86_400)), ..Retention::default() };
    // A year later, the backups within 7 days of the newest are still kept.
    let kept = kept(&retention, &backups, at("2027-01-01T00:00:00Z"));
    assert_eq!(kept, ["2026-01-10T00:00:00Z", "2026-01-04T00:00:00Z"]);
}

#[test]
fn restic_too_few_periods_also_keep_the_oldest_backup() {
    // Two backups a day for three days; daily 5 cannot be filled.
    let times = [
        "2026-11-20T18:00:00Z",
        "2026-11-20T06:00:00Z",
        "2026-11-19T18:00:00Z",
        "2026-11-19T06:00:00Z",
        "2026-11-18T18:00:00Z",
        "2026-11-18T06:00:00Z",
    ];
    let backups = candidates(&times);
    let retention = Retention { daily: Some(5), ..Retention::default() };
    let decisions = plan(&retention, &backups, &Options::at(at("2026-11-21T00:00:00Z")));
    assert_eq!(decisions[4].to_string(), "keep: daily #3");
    assert_eq!(decisions[5].to_string(), "keep: oldest daily");
    assert_eq!(decisions[1].to_string(), "remove: no rule keeps it");
}

#[test]
fn days_follow_the_policys_time_zone() {
    // 22:30Z and 23:30Z on the 21st: one UTC day, but 23:30 and 00:30 in Berlin.
    let backups = candidates(&["2026-11-21T23:30:00Z", "2026-11-21T22:30:00Z", "2026-11-20T12:00:00Z"]);
    let now = at("2026-11-22T12:00:00Z");
    let utc = Retention { daily: Some(2), ..Retention::default() };
    assert_eq!(kept(&utc, &backups, now), ["2026-11-21T23:30:00Z", "2026-11-20T12:00:00Z"]);
    let berlin = Retention { time_zone: Some(chrono_tz::Europe::Berlin), ..utc };
    assert_eq!(kept(&berlin, &backups, now), ["2026-11-21T23:30:00Z", "2026-11-21T22:30:00Z"]);
}

#[test]
fn pre_upgrade_backups_have_their_own_series_and_keep_3_by_default() {
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap().and_hms_opt(2, 0, 0).unwrap().and_utc();
    let mut backups: Vec<Candidate> = (1..=5).map(|d| Candidate::committed(format!("s{d}"), day(d))).collect();
    for d in 1..=5 {
        let mut b = Candidate::committed(format!("u{d}"), day(d) + Days::hours(1));
        b.pre_upgrade = true;
        backups.push(b);
    }
    let retention = Retention { keep_last: Some(2), ..Retention::default() };
    let now = day(6);
    // keepLast 2 counts scheduled backups only; the newest 3 pre-upgrade ones stay; u5 is also
    // the newest committed backup of the target.
    assert_eq!(kept(&retention, &backups, now), ["s4", "s5", "u3", "u4", "u5"]);
    let decisions = plan(&retention, &backups, &Options::at(now));
    assert_eq!(decisions[9].to_string(), "keep: pre-upgrade last #1, newest committed");

    let own = Retention { pre_upgrade: Some(PreUpgradeRetention { keep_last: Some(1), within: None }), ..retention };
    assert_eq!(kept(&own, &backups, now), ["s4", "s5", "u5"]);
}

#[test]
fn uncommitted_leftovers_go_after_the_grace_period_and_safety_rules_hold() {
    let now = at("2026-11-22T12:00:00Z");
    let mut backups = candidates(&["2026-11-22T10:00:00Z", "2026-11-20T10:00:00Z", "2026-11-10T10:00:00Z"]);
    let mut running = Candidate::committed("running", at("2026-11-22T11:00:00Z"));
    running.committed = false;
    let mut leftover = Candidate::committed("leftover", at("2026-11-19T11:00:00Z"));
    leftover.committed = false;
    backups[1].pinned = true;
    backups[2].immutable_until = Some(at("2026-12-01T00:00:00Z"));
    backups.extend([running, leftover]);
    let retention = Retention { keep_last: Some(1), ..Retention::default() };
    let decisions = plan(&retention, &backups, &Options::at(now));
    let text: Vec<String> = decisions.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "keep: last #1, newest committed",
            "keep: pinned",
            "keep: immutable until 2026-12-01T00:00:00Z",
            "keep: uncommitted, within grace",
            "remove: uncommitted leftover older than 1d",
        ]
    );
}

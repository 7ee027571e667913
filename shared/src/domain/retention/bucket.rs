//! Calendar buckets (hour, day, ISO week, month, year) in a time zone.

use chrono::{DateTime, Datelike, Offset, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// A calendar period the bucket rules count in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Bucket {
    /// A clock hour (the repeated hour when clocks go back counts twice).
    Hourly,
    /// A calendar day, midnight to midnight.
    Daily,
    /// An ISO week, Monday to Sunday.
    Weekly,
    /// A calendar month.
    Monthly,
    /// A calendar year.
    Yearly,
}

impl Bucket {
    /// Every bucket, shortest first.
    pub const ALL: [Bucket; 5] = [Bucket::Hourly, Bucket::Daily, Bucket::Weekly, Bucket::Monthly, Bucket::Yearly];

    /// The policy field's name (`daily`).
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Hourly => "hourly",
            Bucket::Daily => "daily",
            Bucket::Weekly => "weekly",
            Bucket::Monthly => "monthly",
            Bucket::Yearly => "yearly",
        }
    }
}

/// A backup's time, read once in the policy's time zone: the key of each bucket it falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LocalKeys {
    keys: [i64; 5],
}

impl LocalKeys {
    /// Reads `time` in `tz`.
    pub(super) fn new(time: DateTime<Utc>, tz: Tz) -> Self {
        let local = time.with_timezone(&tz);
        let day = i64::from(local.num_days_from_ce());
        let offset = i64::from(local.offset().fix().local_minus_utc());
        let week = local.iso_week();
        Self {
            keys: [
                // The offset tells apart the two 02:00 hours of the night clocks go back.
                (day * 24 + i64::from(local.hour())) * 100_000 + offset,
                day,
                i64::from(week.year()) * 100 + i64::from(week.week()),
                i64::from(local.year()) * 12 + i64::from(local.month0()),
                i64::from(local.year()),
            ],
        }
    }

    /// The key of the `bucket` period this time falls in (equal keys: same period).
    pub(super) fn key(&self, bucket: Bucket) -> i64 {
        match bucket {
            Bucket::Hourly => self.keys[0],
            Bucket::Daily => self.keys[1],
            Bucket::Weekly => self.keys[2],
            Bucket::Monthly => self.keys[3],
            Bucket::Yearly => self.keys[4],
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn days_end_at_the_time_zones_midnight() {
        let (a, b) = (at("2026-11-21T22:30:00Z"), at("2026-11-21T23:30:00Z"));
        // 23:30 and 00:30 in Berlin (UTC+1 in November): two days there, one in UTC.
        let berlin = chrono_tz::Europe::Berlin;
        assert_ne!(LocalKeys::new(a, berlin).key(Bucket::Daily), LocalKeys::new(b, berlin).key(Bucket::Daily));
        assert_eq!(LocalKeys::new(a, Tz::UTC).key(Bucket::Daily), LocalKeys::new(b, Tz::UTC).key(Bucket::Daily));
    }

    #[test]
    fn the_repeated_hour_of_a_dst_change_is_two_hours() {
        // 2026-10-25: Berlin goes from 03:00 CEST back to 02:00 CET; 00:30Z and 01:30Z both read 02:30.
        let berlin = chrono_tz::Europe::Berlin;
        let (a, b) = (
            Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap(),
        );
        assert_eq!(a.with_timezone(&berlin).hour(), b.with_timezone(&berlin).hour());
        assert_ne!(LocalKeys::new(a, berlin).key(Bucket::Hourly), LocalKeys::new(b, berlin).key(Bucket::Hourly));
        assert_eq!(LocalKeys::new(a, berlin).key(Bucket::Daily), LocalKeys::new(b, berlin).key(Bucket::Daily));
    }

    #[test]
    fn weeks_are_iso_weeks_across_new_year() {
        // Thursday 2026-12-31 and Sunday 2027-01-03 are in ISO week 2026-W53; Monday 2027-01-04 is not.
        let keys = |s| LocalKeys::new(at(s), Tz::UTC);
        assert_eq!(keys("2026-12-31T12:00:00Z").key(Bucket::Weekly), keys("2027-01-03T23:00:00Z").key(Bucket::Weekly));
        assert_ne!(keys("2027-01-03T23:00:00Z").key(Bucket::Weekly), keys("2027-01-04T00:00:00Z").key(Bucket::Weekly));
        assert_ne!(keys("2026-12-31T12:00:00Z").key(Bucket::Yearly), keys("2027-01-03T23:00:00Z").key(Bucket::Yearly));
    }
}

//! Schedules: six-field NCRONTAB expressions (`second minute hour day month day-of-week`), as
//! Azure Functions timers use them, evaluated in UTC; and which slots are due.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

/// Why a schedule expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{expression:?} is not a six-field NCRONTAB expression (second minute hour day month day-of-week): {reason}")]
pub struct InvalidSchedule {
    /// The refused expression.
    pub expression: String,
    /// The parser's complaint.
    pub reason: String,
}

/// A parsed six-field NCRONTAB expression.
#[derive(Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
}

impl Schedule {
    /// Parses a six-field expression.
    ///
    /// # Errors
    /// [`InvalidSchedule`] for anything else (five fields included: Functions needs seconds).
    pub fn parse(expression: &str) -> Result<Self, InvalidSchedule> {
        let fields = expression.split_whitespace().count();
        let refuse = |reason: String| InvalidSchedule { expression: expression.to_owned(), reason };
        if fields != 6 {
            return Err(refuse(format!("it has {fields} fields")));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| refuse(e.to_string()))?;
        Ok(Self { expression: expression.to_owned(), cron })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The latest slot at or before `at`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&at, true).ok()
    }

    /// Slots in `(after, until]`, oldest first, at most `max` of them (the oldest ones).
    pub fn slots_between(&self, after: DateTime<Utc>, until: DateTime<Utc>, max: usize) -> Vec<DateTime<Utc>> {
        let mut slots = Vec::new();
        let mut cursor = after;
        while slots.len() < max {
            match self.next_after(cursor) {
                Some(slot) if slot <= until => {
                    slots.push(slot);
                    cursor = slot;
                }
                _ => break,
            }
        }
        slots
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.expression).finish()
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

impl FromStr for Schedule {
    type Err = InvalidSchedule;
    fn from_str(s: &str) -> Result<Self, InvalidSchedule> {
        Self::parse(s)
    }
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.expression)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What to do with slots missed while nothing ran (downtime, a stopped app).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum CatchUp {
    /// Take only the newest missed slot: one fresh backup, not a burst of stale ones.
    #[default]
    Latest,
    /// Take every missed slot, up to `max` (the newest ones).
    All {
        /// Most slots taken at once.
        max: usize,
    },
    /// Take no missed slot; only a slot that fell due since the previous tick.
    None,
}

/// Which slots one tick takes for one target.
///
/// `last_evaluated` is where the previous tick stopped (`None` the first time a target is
/// seen: then the newest slot at or before `now` is due, so that a new policy protects at
/// once). `tick_period` is how often ticks run: slots older than one period before `now`
/// count as missed and follow `catch_up`.
pub fn due_slots(
    schedule: &Schedule,
    last_evaluated: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    tick_period: chrono::Duration,
    catch_up: CatchUp,
) -> DueSlots {
    let Some(after) = last_evaluated else {
        let due: Vec<_> = schedule.latest_at_or_before(now).into_iter().collect();
        return DueSlots { due, missed: 0 };
    };
    if after >= now {
        // Out-of-order or repeated tick: nothing new is due.
        return DueSlots::default();
    }
    // Counting is bounded: a schedule every second over a year of downtime must not hang.
    const SCAN_LIMIT: usize = 100_000;
    let all = schedule.slots_between(after, now, SCAN_LIMIT);
    let missed_before = now - tick_period * 2;
    let (missed, recent): (Vec<_>, Vec<_>) = all.into_iter().partition(|s| *s < missed_before);
    let mut due = match catch_up {
        CatchUp::None => Vec::new(),
        CatchUp::Latest => missed.last().copied().into_iter().collect(),
        CatchUp::All { max } => missed.iter().rev().take(max).rev().copied().collect(),
    };
    let taken_from_missed = due.len();
    due.extend(recent);
    if catch_up == CatchUp::Latest && due.len() > 1 {
        // Several slots in one tick (a schedule faster than the tick): one backup suffices.
        let newest = due.split_off(due.len() - 1);
        let skipped = due.len();
        return DueSlots { due: newest, missed: missed.len() - taken_from_missed + skipped };
    }
    DueSlots { due, missed: missed.len() - taken_from_missed }
}

/// The outcome of [`due_slots`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueSlots {
    /// Slots to back up now, oldest first.
    pub due: Vec<DateTime<Utc>>,
    /// Slots passed over (reported, not backed up).
    pub missed: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_six_fields_and_refuses_five() {
        assert!(Schedule::parse("0 */5 * * * *").is_ok());
        let err = Schedule::parse("*/5 * * * *").unwrap_err();
        assert!(err.to_string().contains("5 fields"), "{err}");
        assert!(Schedule::parse("0 0 25 * * *").is_err(), "hour 25 accepted");
    }

    #[test]
    fn sunday_is_zero_as_in_ncrontab() {
        // 2026-11-22 is a Sunday.
        let s = Schedule::parse("0 0 3 * * 0").unwrap();
        assert_eq!(s.next_after(t("2026-11-21T12:00:00Z")), Some(t("2026-11-22T03:00:00Z")));
    }

    #[test]
    fn slots_between_is_half_open() {
        let s = Schedule::parse("0 0 * * * *").unwrap();
        let slots = s.slots_between(t("2026-01-01T01:00:00Z"), t("2026-01-01T03:00:00Z"), 10);
        assert_eq!(slots, vec![t("2026-01-01T02:00:00Z"), t("2026-01-01T03:00:00Z")]);
    }

    #[test]
    fn first_sight_takes_the_newest_slot() {
        let s = Schedule::parse("0 0 2 * * *").unwrap();
        let d = due_slots(&s, None, t("2026-01-05T10:00:00Z"), chrono::Duration::minutes(5), CatchUp::Latest);
        assert_eq!(d.due, vec![t("2026-01-05T02:00:00Z")]);
    }

    #[test]
    fn catch_up_latest_after_downtime_takes_one_slot_and_counts_the_rest() {
        let s = Schedule::parse("0 0 * * * *").unwrap();
        let d = due_slots(
            &s,
            Some(t("2026-01-01T00:00:00Z")),
            t("2026-01-01T10:00:30Z"),
            chrono::Duration::minutes(5),
            CatchUp::Latest,
        );
        assert_eq!(d.due, vec![t("2026-01-01T10:00:00Z")]);
        assert_eq!(d.missed, 9);
    }

    #[test]
    fn catch_up_all_is_bounded_and_keeps_the_newest() {
        let s = Schedule::parse("0 0 * * * *").unwrap();
        let d = due_slots(
            &s,
            Some(t("2026-01-01T00:00:00Z")),
            t("2026-01-01T10:30:00Z"),
            chrono::Duration::minutes(5),
            CatchUp::All { max: 3 },
        );
        assert_eq!(d.due, vec![t("2026-01-01T08:00:00Z"), t("2026-01-01T09:00:00Z"), t("2026-01-01T10:00:00Z")]);
        assert_eq!(d.missed, 7);
    }

    #[test]
    fn catch_up_none_still_takes_a_slot_that_just_fell_due() {
        let s = Schedule::parse("0 0 * * * *").unwrap();
        let d = due_slots(
            &s,
            Some(t("2026-01-01T09:58:00Z")),
            t("2026-01-01T10:01:00Z"),
            chrono::Duration::minutes(5),
            CatchUp::None,
        );
        assert_eq!(d.due, vec![t("2026-01-01T10:00:00Z")]);
        assert_eq!(d.missed, 0);
    }

    #[test]
    fn a_tick_from_the_past_takes_nothing() {
        let s = Schedule::parse("0 * * * * *").unwrap();
        let d = due_slots(
            &s,
            Some(t("2026-01-01T10:00:00Z")),
            t("2026-01-01T09:00:00Z"),
            chrono::Duration::minutes(5),
            CatchUp::Latest,
        );
        assert!(d.due.is_empty());
    }
}

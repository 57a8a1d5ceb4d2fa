//! When a model is retrained: `"nightly"` (02:00 UTC), `"hourly"`,
//! `"daily HH:MM"` or `"every N hours"`, all in UTC.
//!
//! A schedule only answers "when is the next run after this instant"; the
//! daemon owns the timer, so a missed run (daemon down) simply happens at the
//! next start.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A retraining schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every day at this UTC time.
    Daily { hour: u32, minute: u32 },
    /// Every N hours, on the hour (hours since midnight divisible by N).
    EveryHours(u32),
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule::Daily { hour: 2, minute: 0 }
    }
}

impl Schedule {
    /// The first run strictly after `now`.
    pub fn next_run_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match *self {
            Schedule::Daily { hour, minute } => {
                let time = NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN);
                let today = Utc.from_utc_datetime(&now.date_naive().and_time(time));
                if today > now {
                    today
                } else {
                    today + Duration::days(1)
                }
            }
            Schedule::EveryHours(hours) => {
                let hours = hours.max(1);
                let top_of_hour = now
                    .with_minute(0)
                    .and_then(|time| time.with_second(0))
                    .and_then(|time| time.with_nanosecond(0))
                    .unwrap_or(now);
                let mut next = top_of_hour + Duration::hours(1);
                while !next.hour().is_multiple_of(hours) {
                    next += Duration::hours(1);
                }
                next
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown schedule {0:?}: expected \"nightly\", \"hourly\", \"daily HH:MM\" or \"every N hours\""
)]
pub struct UnknownSchedule(pub String);

impl FromStr for Schedule {
    type Err = UnknownSchedule;
    fn from_str(text: &str) -> Result<Schedule, UnknownSchedule> {
        let unknown = || UnknownSchedule(text.to_string());
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["nightly"] => Ok(Schedule::default()),
            ["hourly"] => Ok(Schedule::EveryHours(1)),
            ["daily", time] => {
                let parsed = NaiveTime::parse_from_str(time, "%H:%M").map_err(|_| unknown())?;
                Ok(Schedule::Daily {
                    hour: parsed.hour(),
                    minute: parsed.minute(),
                })
            }
            ["every", count, "hours" | "hour"] => match count.parse::<u32>() {
                Ok(hours) if (1..=24 * 7).contains(&hours) => Ok(Schedule::EveryHours(hours)),
                _ => Err(unknown()),
            },
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Daily { hour, minute } => write!(formatter, "daily {hour:02}:{minute:02}"),
            Schedule::EveryHours(1) => formatter.write_str("hourly"),
            Schedule::EveryHours(hours) => write!(formatter, "every {hours} hours"),
        }
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Schedule, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::at;

    #[test]
    fn nightly_runs_at_two_the_same_or_next_day() {
        let nightly: Schedule = "nightly".parse().expect("parses");
        assert_eq!(
            nightly.next_run_after(at("2026-11-27T01:00:00Z")),
            at("2026-11-27T02:00:00Z")
        );
        assert_eq!(
            nightly.next_run_after(at("2026-11-27T02:00:00Z")),
            at("2026-11-28T02:00:00Z")
        );
    }

    #[test]
    fn every_six_hours_lands_on_multiples_of_six() {
        let schedule: Schedule = "every 6 hours".parse().expect("parses");
        assert_eq!(
            schedule.next_run_after(at("2026-11-27T07:30:00Z")),
            at("2026-11-27T12:00:00Z")
        );
        assert_eq!(schedule.to_string(), "every 6 hours");
    }

    #[test]
    fn rejects_nonsense() {
        assert!("sometimes".parse::<Schedule>().is_err());
        assert!("daily 25:00".parse::<Schedule>().is_err());
        assert!("every 0 hours".parse::<Schedule>().is_err());
        assert_eq!(
            "daily 03:15".parse::<Schedule>(),
            Ok(Schedule::Daily {
                hour: 3,
                minute: 15
            })
        );
    }
}

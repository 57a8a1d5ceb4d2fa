//! RFC 3339 timestamps as UTC microseconds since the Unix epoch.
//!
//! The API server writes `2026-11-27T09:00:00.123456Z`; older logs and other
//! producers write second precision, nanoseconds, or a numeric offset. Parsing
//! these by hand is several times faster than going through `chrono`'s generic
//! parser, and the decode path parses two or three timestamps per event.

use chrono::{DateTime, Utc};

/// Parses an RFC 3339 timestamp into UTC microseconds since the epoch.
/// Returns `None` for anything that is not a valid RFC 3339 date-time.
pub fn parse_rfc3339_micros(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 19 {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let mut value: i64 = 0;
        for &byte in bytes.get(range)? {
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(byte - b'0');
        }
        Some(value)
    };
    if bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let year = digits(0..4)?;
    let month = digits(5..7)?;
    let day = digits(8..10)?;
    let hour = digits(11..13)?;
    let minute = digits(14..16)?;
    let second = digits(17..19)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut position = 19;
    let mut micros: i64 = 0;
    if bytes.get(position) == Some(&b'.') {
        position += 1;
        let start = position;
        while position < bytes.len() && bytes[position].is_ascii_digit() {
            if position - start < 6 {
                micros = micros * 10 + i64::from(bytes[position] - b'0');
            }
            position += 1;
        }
        let fraction_digits = position - start;
        if fraction_digits == 0 {
            return None;
        }
        for _ in fraction_digits..6 {
            micros *= 10;
        }
    }
    let offset_seconds = match bytes.get(position) {
        Some(b'Z' | b'z') if position + 1 == bytes.len() => 0,
        Some(sign @ (b'+' | b'-'))
            if position + 6 == bytes.len() && bytes[position + 3] == b':' =>
        {
            let offset_hours = digits(position + 1..position + 3)?;
            let offset_minutes = digits(position + 4..position + 6)?;
            let magnitude = offset_hours * 3600 + offset_minutes * 60;
            if *sign == b'+' { magnitude } else { -magnitude }
        }
        // SIEM exports (Panther, Athena) write `2022-11-29 00:09:04.38`:
        // space-separated and zone-less, always UTC. A `T` form without a
        // zone stays rejected: it would be a local time of unknown zone.
        None if bytes[10] == b' ' => 0,
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_seconds;
    Some(seconds * 1_000_000 + micros)
}

/// Formats UTC microseconds as RFC 3339 with microsecond precision and `Z`.
pub fn format_rfc3339_micros(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(time) => time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => format!("invalid-timestamp({micros})"),
    }
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap_year(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_micros(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .expect("valid test timestamp")
            .timestamp_micros()
    }

    #[test]
    fn agrees_with_chrono_on_the_shapes_audit_logs_use() {
        for text in [
            "2026-11-27T09:00:00.123456Z",
            "2017-09-11T19:55:05Z",
            "2018-10-26T13:38:34.867116Z",
            "2024-02-29T23:59:59.999999999Z",
            "2024-02-29T23:59:59.1+02:00",
            "1969-12-31T23:59:59Z",
            "2000-03-01T00:00:00-05:30",
            "2022-11-29 00:09:04.38Z",
        ] {
            assert_eq!(
                parse_rfc3339_micros(text),
                Some(chrono_micros(text)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for text in [
            "",
            "2026-11-27",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-27T25:00:00Z",
            "2026-11-27T09:00:00",
            "2026-11-27T09:00:00.Z",
            "2026-11-27T09:00:00Zjunk",
            "yesterday at noon please",
        ] {
            assert_eq!(parse_rfc3339_micros(text), None, "{text}");
        }
    }

    #[test]
    fn space_separated_exports_without_a_zone_are_utc() {
        assert_eq!(
            parse_rfc3339_micros("2022-11-29 00:09:04.38"),
            Some(chrono_micros("2022-11-29T00:09:04.38Z"))
        );
        assert_eq!(
            parse_rfc3339_micros("2022-11-29 00:09:04"),
            Some(chrono_micros("2022-11-29T00:09:04Z"))
        );
    }

    #[test]
    fn formats_round_trip() {
        let micros = chrono_micros("2026-11-27T09:00:00.123456Z");
        assert_eq!(format_rfc3339_micros(micros), "2026-11-27T09:00:00.123456Z");
    }
}

//! `[feedback]` of the config (`crate::feedback` in the main crate), from the
//! main crate's file. The real module reaches the catalog (DuckDB) and the
//! API; only its config file is compiled here, with a stand-in for the one
//! helper that file calls.

use chrono::{DateTime, Utc};

#[path = "../../src/feedback/config.rs"]
mod config;

pub use config::{FeedbackConfig, SuppressionConfig, ThresholdConfig};

/// The main crate's `feedback::parse_time` (through
/// `detect::history::parse_time_argument`, which lives beside DuckDB code):
/// RFC 3339, or a date meaning midnight UTC, with the same message.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Some(micros) = crate::audit::parse_rfc3339_micros(text) {
        return Ok(DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = date.and_hms_opt(0, 0, 0)
    {
        return Ok(midnight.and_utc());
    }
    Err(format!(
        "{text:?} is not a time: use RFC 3339 (2026-11-27T09:00:00Z) or a date (2026-11-27)"
    ))
}

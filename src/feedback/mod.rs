//! The feedback loop: what people say about anomalies, turned into better
//! detection (issue 9).
//!
//! | module | owns |
//! |---|---|
//! | [`triage`] | verdicts (open, acknowledged, resolved true positive, resolved benign) as an append-only history in `triage_events`; current state is a query |
//! | [`suppression`] | "detector D for identity/namespace/source pattern P is expected": reason, owner, expiry; from a benign verdict or `[[feedback.suppressions]]` |
//! | [`learning`] | thresholds that move after benign verdicts (within bounds, never hiding a confirmed attack), verdict windows for model training |
//! | [`marker`] | the one check [`crate::detect::AnomalyStore::record`] makes per anomaly: suppressed by what, if anything |
//! | [`rbac`] | RBAC findings accepted as exceptions (reason, owner, expiry) and recommendations marked applied, checked at every audit |
//! | [`report`] | the nightly report's feedback section |
//! | [`stored`] | reading back what reached people, for `eval --stored` |
//! | [`cli`] | `auditlens triage` |
//! | [`api`] | the `TriageIncident` RPC's mapping |
//! | [`config`] | `[feedback]` in the config file |
//! | [`clock`] | the injectable clock expiry is checked against |
//!
//! The one design decision to know: **triage never deletes or drops
//! anything.** A suppressed anomaly, or one scoring below a learnt threshold,
//! is stored and counted like any other; it only carries a mark
//! (`anomalies.suppressed_by`) that alert delivery and the "what reaches a
//! person" views honour. Verdicts, suppressions and threshold changes are
//! histories, never updated in place, so every automatic change can be traced
//! to the verdicts that caused it and undone by a person.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod learning;
pub mod marker;
pub mod pattern;
pub mod rbac;
pub mod report;
pub mod stored;
pub mod suppression;
pub mod triage;

pub use api::FeedbackContext;
pub use cli::{TriageArgs, run_triage};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock, system_clock};
pub use config::{FeedbackConfig, SuppressionConfig, ThresholdConfig};
pub use learning::{ThresholdChange, ThresholdPolicy};
pub use marker::AnomalyMarker;
pub use suppression::{Suppression, sync_config_suppressions};
pub use triage::{SubjectKind, TriageEvent, TriageOutcome, TriageState, Verdict, record_verdict};

use chrono::{DateTime, Utc};

/// What can go wrong in the feedback loop; each variant says what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("{context}: {source}")]
    DuckDb {
        context: String,
        #[source]
        source: duckdb::Error,
    },
    /// A verdict, suppression or setting that does not make sense.
    #[error("{0}")]
    Invalid(String),
    #[error("no incident or anomaly with id {0:?} in the catalog")]
    NotFound(String),
    #[error("{path}: {message}")]
    File {
        path: std::path::PathBuf,
        message: String,
    },
    /// DuckDB allows one writing process; the daemon holds the catalog.
    #[error(
        "the catalog {path} is held by another process (a running `auditlens serve`; DuckDB allows one writer). \
         Run the same command with --remote to triage through the daemon's TriageIncident RPC \
         (--server, default http://127.0.0.1:50051)"
    )]
    CatalogBusy { path: std::path::PathBuf },
    #[error(transparent)]
    Api(#[from] crate::api::ApiError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub type Result<T, E = FeedbackError> = std::result::Result<T, E>;

pub(crate) fn database(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> FeedbackError {
    let context = context.into();
    move |source| FeedbackError::DuckDb { context, source }
}

pub(crate) fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default()
}

/// A short stable ID: `prefix-` and 16 hex digits of xxh3 over the parts.
pub(crate) fn stable_id(prefix: &str, parts: &[&str]) -> String {
    let mut key = String::new();
    for part in parts {
        key.push_str(part);
        key.push('\u{1f}');
    }
    format!(
        "{prefix}-{:016x}",
        xxhash_rust::xxh3::xxh3_64(key.as_bytes())
    )
}

/// Parses `30d`, `12h`, `90m` or a bare number of days.
pub fn parse_duration(text: &str) -> std::result::Result<chrono::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((index, unit)) if unit.is_ascii_alphabetic() => (&text[..index], Some(unit)),
        _ => (text, None),
    };
    let amount: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (use 30d, 12h or 90m)"))?;
    if amount <= 0 {
        return Err(format!("{text:?}: a duration must be positive"));
    }
    let duration = match unit {
        None | Some('d') => chrono::Duration::days(amount),
        Some('h') => chrono::Duration::hours(amount),
        Some('m') => chrono::Duration::minutes(amount),
        Some('w') => chrono::Duration::weeks(amount),
        Some(other) => return Err(format!("{text:?}: unknown unit {other:?} (use d, h or m)")),
    };
    if duration > chrono::Duration::days(366) {
        return Err(format!(
            "{text:?}: at most a year; a suppression must be renewed, not forgotten"
        ));
    }
    Ok(duration)
}

/// Parses a time given as RFC 3339 or a date (midnight UTC).
pub fn parse_time(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    crate::detect::history::parse_time_argument(text).map(micros_to_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_are_bounded() {
        assert_eq!(parse_duration("30d"), Ok(chrono::Duration::days(30)));
        assert_eq!(parse_duration("12h"), Ok(chrono::Duration::hours(12)));
        assert_eq!(parse_duration("7"), Ok(chrono::Duration::days(7)));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("400d").is_err());
        assert!(parse_duration("3y").is_err());
    }

    #[test]
    fn stable_ids_depend_on_every_part() {
        assert_eq!(stable_id("sup", &["a", "b"]), stable_id("sup", &["a", "b"]));
        assert_ne!(stable_id("sup", &["a", "b"]), stable_id("sup", &["ab", ""]));
        assert!(stable_id("thr", &["x"]).starts_with("thr-"));
    }
}

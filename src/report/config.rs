//! `[report]` of the config file and the report formats.
//!
//! Design decision: this file needs nothing of the report builder or DuckDB,
//! so the config loader (and its fuzz target, which compiles `src/config.rs`
//! without DuckDB) can include it on its own.

use super::{ReportError, Result};
use serde::{Deserialize, Serialize};

/// `[report]` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    /// Whether the daemon writes the nightly report.
    pub enabled: bool,
    /// UTC time of day (`HH:MM`) after which the previous day's report is written.
    pub time_utc: String,
    /// Formats written to `data/reports/` (`json`, `md`, `html`).
    pub formats: Vec<ReportFormat>,
    /// Reports older than this many days are deleted (0 keeps everything).
    pub retention_days: u32,
    /// Identities listed in the activity section.
    pub top_identities: usize,
    /// History used to call a namespace or source IP "first seen" for an identity.
    pub first_seen_lookback_days: u32,
    /// How often the daemon refreshes `data/catalog-export/` for readers outside it (0: never).
    pub export_interval_seconds: u64,
}

impl Default for ReportConfig {
    fn default() -> ReportConfig {
        ReportConfig {
            enabled: true,
            time_utc: "02:00".to_string(),
            formats: vec![ReportFormat::Json, ReportFormat::Md, ReportFormat::Html],
            retention_days: 365,
            top_identities: 15,
            first_seen_lookback_days: 30,
            export_interval_seconds: 300,
        }
    }
}

impl ReportConfig {
    /// The scheduled time, or an error naming the bad value.
    pub fn schedule_time(&self) -> Result<chrono::NaiveTime> {
        chrono::NaiveTime::parse_from_str(&self.time_utc, "%H:%M").map_err(|error| {
            ReportError::Invalid(format!(
                "report.time_utc {:?} is not HH:MM: {error}",
                self.time_utc
            ))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Json,
    Md,
    Html,
}

impl ReportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Md => "md",
            ReportFormat::Html => "html",
        }
    }
}

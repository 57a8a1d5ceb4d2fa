//! `[report]` of the config (`crate::report` in the main crate), from the
//! main crate's file, with a stand-in for the module's error type (the real
//! one has DuckDB and store variants).

#[path = "../../src/report/config.rs"]
mod config;

pub use config::{ReportConfig, ReportFormat};

pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// The variant of the main crate's `ReportError` the config uses, same message.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Invalid(String),
}

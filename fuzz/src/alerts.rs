//! `[alerts]` of the config (`crate::alerts` in the main crate), from the
//! main crate's file, with a stand-in for the module's error type (the real
//! one has DuckDB variants).

#[path = "../../src/alerts/config.rs"]
mod config;

pub use config::{AlertSubject, AlertsConfig, SinkConfig, SinkKind};

pub type Result<T, E = AlertError> = std::result::Result<T, E>;

/// The variant of the main crate's `AlertError` the config uses, same message.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("alerts config: {0}")]
    Config(String),
}

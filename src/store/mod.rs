//! Storage: the Arrow schema, the Parquet part writer, the DuckDB catalog,
//! compaction, retention and the views every reader shares.
//!
//! Events live as plain Hive-partitioned Parquet under
//! `data/events/cluster=C/date=D/hour=H/part-<ulid>.parquet`, so DuckDB, Spark,
//! Trino or pandas read them without auditlens; the catalog only adds the
//! manifest (which source bytes each part holds) and the tables of derived data.

pub mod query;
pub mod schema;
pub mod views;

use std::path::PathBuf;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong in storage. Each variant carries the path or statement it
/// was about.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    DuckDb {
        context: String,
        #[source]
        source: duckdb::Error,
    },
    #[error("{context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("{context}: {source}")]
    Parquet {
        context: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

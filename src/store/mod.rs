//! Storage: the Arrow schema, the Parquet part writer, the DuckDB catalog,
//! compaction, retention and the views every reader shares.
//!
//! Events live as plain Hive-partitioned Parquet under
//! `data/events/cluster=C/date=D/hour=H/part-<ulid>.parquet`, so DuckDB, Spark,
//! Trino or pandas read them without auditlens; the catalog only adds the
//! manifest (which source bytes each part holds) and the tables of derived data.

pub mod builder;
pub mod catalog;
pub mod compaction;
pub mod local_query;
pub mod quarantine;
pub mod query;
pub mod retention;
pub mod schema;
pub mod statement_guard;
pub mod views;
pub mod writer;

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

/// Writes `bytes` to `path` atomically: temporary file in the same folder,
/// fsync, rename, fsync the folder. A crash leaves the old file or the new one.
pub fn atomic_write(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let directory = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(directory).map_err(|source| StoreError::Io {
        path: directory.to_path_buf(),
        source,
    })?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = directory.join(format!(".{file_name}.tmp"));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(directory)?.sync_all()
    })();
    result.map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

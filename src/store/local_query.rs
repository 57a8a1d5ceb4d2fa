//! `auditlens sql "SELECT ..."`: one query over the Parquet folder, in-process.
//!
//! It opens an in-memory DuckDB with the shared views rather than the daemon's
//! catalog file, so it works while the daemon runs (DuckDB lets one process
//! open a database file for writing). The session is sandboxed like the gRPC
//! query runner: no access outside the events folder, configuration locked.

use super::views::{events_dir, install_views, retry_if_parts_vanish, sql_string_literal};
use super::{Result, StoreError};
use arrow::record_batch::RecordBatch;
use std::path::Path;

/// Output formats of a local query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

/// Opens a sandboxed in-memory session with the views over `data_dir`.
pub fn open_session(data_dir: &Path) -> Result<duckdb::Connection> {
    let context = |what: &str| {
        let what = what.to_string();
        move |source| StoreError::DuckDb {
            context: what,
            source,
        }
    };
    let connection = duckdb::Connection::open_in_memory().map_err(context("opening DuckDB"))?;
    install_views(&connection, data_dir)?;
    let events = events_dir(data_dir);
    let allowed = std::fs::canonicalize(&events).unwrap_or(events);
    connection
        .execute_batch(&format!(
            "SET allowed_directories = [{}]; SET enable_external_access = false; SET autoinstall_known_extensions = false; \
             SET autoload_known_extensions = false; SET lock_configuration = true;",
            sql_string_literal(&format!("{}/", allowed.display()))
        ))
        .map_err(context("sandboxing the session"))?;
    Ok(connection)
}

/// Runs `sql` and returns its batches. Compaction and retention in a running
/// daemon may delete parts while the query reads the folder: the query is
/// then run again in a fresh session (see [`retry_if_parts_vanish`]), never
/// failed for it.
pub fn run_query(data_dir: &Path, sql: &str) -> Result<Vec<RecordBatch>> {
    retry_if_parts_vanish(|| run_query_once(data_dir, sql))
}

fn run_query_once(data_dir: &Path, sql: &str) -> Result<Vec<RecordBatch>> {
    let connection = open_session(data_dir)?;
    let mut statement = connection
        .prepare(sql)
        .map_err(|source| StoreError::DuckDb {
            context: "preparing the query".into(),
            source,
        })?;
    let batches = statement
        .query_arrow([])
        .map_err(|source| StoreError::DuckDb {
            context: "running the query".into(),
            source,
        })?
        .collect();
    Ok(batches)
}

/// Renders batches in `format`.
pub fn render(batches: &[RecordBatch], format: OutputFormat) -> Result<String> {
    let arrow_error = |source| StoreError::Arrow {
        context: "rendering results".into(),
        source,
    };
    match format {
        OutputFormat::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)
            .map_err(arrow_error)?
            .to_string()),
        OutputFormat::Csv => {
            let mut output = Vec::new();
            {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut output);
                for batch in batches {
                    writer.write(batch).map_err(arrow_error)?;
                }
            }
            Ok(String::from_utf8_lossy(&output).into_owned())
        }
        OutputFormat::Json => {
            let mut output = Vec::new();
            {
                let mut writer = arrow::json::LineDelimitedWriter::new(&mut output);
                for batch in batches {
                    writer.write(batch).map_err(arrow_error)?;
                }
                writer.finish().map_err(arrow_error)?;
            }
            Ok(String::from_utf8_lossy(&output).into_owned())
        }
    }
}

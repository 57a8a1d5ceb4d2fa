//! Nightly reports: one [`Report`] per cluster and UTC day, built from the
//! events view and the catalog, rendered as JSON (the stable, versioned
//! machine format), Markdown (chat, e-mail) and one self-contained HTML file
//! with inline SVG charts.
//!
//! The design decision to know: a report reads the catalog tables by their
//! plain names through whatever DuckDB session it is given. Inside the daemon
//! that is the catalog itself. Outside it (`auditlens report`) DuckDB's
//! single-writer lock forbids even a read-only `ATTACH` while the daemon holds
//! the file, so [`open_reader_session`] falls back to the Parquet copy of the
//! catalog tables the daemon refreshes in `data/catalog-export/`
//! ([`export_catalog_snapshot`]); the report says which source it used.

mod build;
mod charts;
mod config;
mod drift_section;
mod feedback_section;
mod html;
mod markdown;
mod model;
mod schedule;

pub use build::{BuildOptions, build_report, build_report_with, read_table_section, table_exists};
pub use config::{ReportConfig, ReportFormat};
pub use html::to_html;
pub use markdown::to_markdown;
pub use model::*;
pub use schedule::{
    ReportScheduler, apply_retention, due_report_date, export_catalog_snapshot,
    latest_written_report, report_path, write_report,
};

use crate::cli::GlobalOptions;
use crate::config::Config;
use crate::store::StoreError;
use crate::store::views::sql_string_literal;
use chrono::NaiveDate;
use std::path::{Path, PathBuf};

pub type Result<T, E = ReportError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{context}: {source}")]
    DuckDb {
        context: String,
        #[source]
        source: duckdb::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("drawing chart {chart}: {message}")]
    Chart { chart: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl ReportConfig {
    pub fn build_options(&self, catalog_source: &str) -> BuildOptions {
        BuildOptions {
            top_identities: self.top_identities.max(1),
            first_seen_lookback_days: self.first_seen_lookback_days.max(1),
            catalog_source: catalog_source.to_string(),
        }
    }
}

/// Renders `report` in `format`.
pub fn render(report: &Report, format: ReportFormat) -> Result<String> {
    match format {
        ReportFormat::Json => to_json(report),
        ReportFormat::Md => Ok(to_markdown(report)),
        ReportFormat::Html => to_html(report),
    }
}

/// The JSON format: pretty-printed, fields in declaration order.
pub fn to_json(report: &Report) -> Result<String> {
    serde_json::to_string_pretty(report)
        .map_err(|error| ReportError::Invalid(format!("serializing the report: {error}")))
}

/// `auditlens report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The UTC day to report on (default: yesterday).
    #[arg(long)]
    pub date: Option<NaiveDate>,
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Write here (atomically) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `auditlens report`: builds the report from a reader session and prints
/// or writes it.
pub fn run(args: &ReportArgs, global: &GlobalOptions, config: &Config) -> Result<()> {
    let date = args
        .date
        .unwrap_or_else(|| chrono::Utc::now().date_naive() - chrono::Duration::days(1));
    let session = open_reader_session(&global.data_dir)?;
    let options = config.report.build_options(&session.source);
    let report = build_report_with(
        &global.data_dir,
        &session.connection,
        date,
        &config.cluster,
        &options,
    )?;
    let text = render(&report, args.format)?;
    match &args.out {
        Some(path) => crate::store::atomic_write(path, text.as_bytes())?,
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|source| ReportError::Io {
                    path: PathBuf::from("<stdout>"),
                    source,
                })?;
        }
    }
    Ok(())
}

/// An in-memory DuckDB session that sees the catalog tables by plain name.
pub struct ReaderSession {
    pub connection: duckdb::Connection,
    /// `attached read-only`, `export of <time>` or `unavailable`.
    pub source: String,
}

/// Folder of the Parquet copies of catalog tables.
pub fn catalog_export_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("catalog-export")
}

/// Opens a session for reading the catalog from outside the daemon: the
/// catalog attached read-only if no process holds it, else the export in
/// `data/catalog-export/`, else no catalog tables at all.
pub fn open_reader_session(data_dir: &Path) -> Result<ReaderSession> {
    let context = |what: &str| {
        let what = what.to_string();
        move |source| ReportError::DuckDb {
            context: what,
            source,
        }
    };
    let connection = duckdb::Connection::open_in_memory().map_err(context("opening DuckDB"))?;
    let catalog_file = data_dir.join("catalog.duckdb");
    if catalog_file.exists() {
        let attached = connection.execute_batch(&format!(
            "ATTACH {} AS auditlens_catalog (READ_ONLY)",
            sql_string_literal(&catalog_file.to_string_lossy())
        ));
        match attached {
            Ok(()) => {
                let tables: Vec<String> = {
                    let mut statement = connection
                        .prepare(
                            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'auditlens_catalog' AND schema_name = 'main'",
                        )
                        .map_err(context("listing catalog tables"))?;
                    let rows = statement
                        .query_map([], |row| row.get::<_, String>(0))
                        .map_err(context("listing catalog tables"))?;
                    rows.collect::<duckdb::Result<Vec<String>>>()
                        .map_err(context("listing catalog tables"))?
                };
                for table in tables {
                    connection
                        .execute_batch(&format!(
                            "CREATE VIEW \"{0}\" AS SELECT * FROM auditlens_catalog.main.\"{0}\"",
                            table.replace('"', "\"\"")
                        ))
                        .map_err(context("exposing catalog tables"))?;
                }
                return Ok(ReaderSession {
                    connection,
                    source: "attached read-only".to_string(),
                });
            }
            Err(error) => {
                tracing::info!(%error, "catalog held by another process; reading its export instead");
            }
        }
    }
    let export_dir = catalog_export_dir(data_dir);
    let mut exported: Vec<(String, PathBuf)> = match std::fs::read_dir(&export_dir) {
        Ok(entries) => entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "parquet")
            })
            .filter_map(|path| {
                let name = path.file_stem()?.to_str()?.to_string();
                (!name.starts_with('.')).then_some((name, path))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    exported.sort();
    if exported.is_empty() {
        return Ok(ReaderSession {
            connection,
            source: "unavailable".to_string(),
        });
    }
    let mut newest = None;
    for (table, path) in &exported {
        connection
            .execute_batch(&format!(
                "CREATE VIEW \"{}\" AS SELECT * FROM read_parquet({})",
                table.replace('"', "\"\""),
                sql_string_literal(&path.to_string_lossy())
            ))
            .map_err(context("reading the catalog export"))?;
        if let Ok(modified) = std::fs::metadata(path).and_then(|metadata| metadata.modified()) {
            newest = newest.max(Some(modified));
        }
    }
    let when = newest
        .map(|time| {
            chrono::DateTime::<chrono::Utc>::from(time)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .unwrap_or_else(|| "unknown time".to_string());
    Ok(ReaderSession {
        connection,
        source: format!("export of {when}"),
    })
}

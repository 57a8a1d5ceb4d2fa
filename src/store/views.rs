//! Installs `sql/views.sql` into a DuckDB session.
//!
//! Every DuckDB session auditlens opens (the daemon's catalog, the local
//! `auditlens sql`, each gRPC query) sees the same `events` and `requests`
//! views. The views read the Parquet folder directly, so a reader never needs
//! the daemon's catalog file (DuckDB lets one process at a time open a
//! database for writing). A `read_parquet` glob fails when nothing matches, so
//! before the first part exists the views read a typed empty relation instead.

use super::schema::duckdb_column_types;
use super::{Result, StoreError};
use std::path::{Path, PathBuf};

/// The SQL text of the views, as shipped in `sql/views.sql`.
pub const VIEWS_SQL: &str = include_str!("../../sql/views.sql");

/// The folder holding `cluster=*/date=*/hour=*/part-*.parquet`.
pub fn events_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("events")
}

/// Whether at least one committed part exists under the events folder.
pub fn any_part_exists(events_dir: &Path) -> bool {
    fn walk(dir: &Path, depth: usize) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|entry| {
            let path = entry.path();
            if depth == 3 {
                path.extension()
                    .is_some_and(|extension| extension == "parquet")
            } else {
                path.is_dir() && walk(&path, depth + 1)
            }
        })
    }
    walk(events_dir, 0)
}

/// The relation the `events` view reads.
pub fn events_source(data_dir: &Path) -> String {
    let events_dir = events_dir(data_dir);
    if any_part_exists(&events_dir) {
        let glob = events_dir.join("*").join("*").join("*").join("*.parquet");
        format!(
            "read_parquet({}, hive_partitioning = true, union_by_name = true, \
             hive_types = {{'cluster': VARCHAR, 'date': DATE, 'hour': INTEGER}})",
            sql_string_literal(&glob.to_string_lossy())
        )
    } else {
        let columns: Vec<String> = duckdb_column_types()
            .into_iter()
            .chain([
                ("cluster", "VARCHAR"),
                ("date", "DATE"),
                ("hour", "INTEGER"),
            ])
            .map(|(name, sql_type)| format!("CAST(NULL AS {sql_type}) AS {name}"))
            .collect();
        format!("(SELECT {} WHERE false)", columns.join(", "))
    }
}

/// Quotes text as a SQL string literal.
pub fn sql_string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Creates (or replaces) the views in this session.
pub fn install_views(connection: &duckdb::Connection, data_dir: &Path) -> Result<()> {
    let sql = VIEWS_SQL.replace("{{EVENTS_SOURCE}}", &events_source(data_dir));
    connection
        .execute_batch(&sql)
        .map_err(|source| StoreError::DuckDb {
            context: "creating the views of sql/views.sql".into(),
            source,
        })
}

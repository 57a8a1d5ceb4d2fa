//! Installs `sql/views.sql` into a DuckDB session.
//!
//! Every DuckDB session auditlens opens (the daemon's catalog, the local
//! `auditlens sql`, each gRPC query) sees the same `events` and `requests`
//! views. The views read the Parquet folder directly, so a reader never needs
//! the daemon's catalog file (DuckDB lets one process at a time open a
//! database for writing). A `read_parquet` glob fails when nothing matches, so
//! before the first part exists the views read a typed empty relation instead.
//!
//! Compaction and retention delete parts while readers read the folder; a
//! query that then finds a listed part gone is run again
//! ([`retry_if_parts_vanish`]).

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

/// Whether a query failed because parts it listed were gone when it read
/// them. The daemon's compaction and retention delete parts while anyone may
/// read the folder (readers take no lock), so a query that lists the folder
/// just before a delete and opens the file just after fails with DuckDB's
/// `Cannot open file "...parquet": No such file or directory`, or, when the
/// last part went, `No files found that match the pattern`. Nothing is wrong
/// with the data: the same query run again lists the folder again.
pub fn parts_vanished(message: &str) -> bool {
    (message.contains("No such file or directory") && message.contains(".parquet"))
        || message.contains("No files found that match the pattern")
}

/// How many times [`retry_if_parts_vanish`] runs a query at most.
pub const VANISHED_PART_ATTEMPTS: u32 = 5;

/// Runs `attempt`, and runs it again (at most [`VANISHED_PART_ATTEMPTS`]
/// times in all, with a short pause) while it fails because maintenance
/// deleted parts under it ([`parts_vanished`]). Each attempt must list the
/// folder anew: prepare the statement again, and install the views again
/// (they read an empty relation once no part is left). A query that succeeds
/// read every part it listed (an open file stays readable after it is
/// deleted), so retrying never loses or double-counts rows.
pub fn retry_if_parts_vanish<T, E: std::fmt::Display>(
    attempt: impl FnMut() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    retry_while_parts_vanish(attempt, || true)
}

/// [`retry_if_parts_vanish`], asking `may_retry` before each retry: a caller
/// that has already handed rows on (a gRPC stream) says no.
pub fn retry_while_parts_vanish<T, E: std::fmt::Display>(
    mut attempt: impl FnMut() -> std::result::Result<T, E>,
    mut may_retry: impl FnMut() -> bool,
) -> std::result::Result<T, E> {
    let mut attempts = 1;
    loop {
        match attempt() {
            Err(error)
                if attempts < VANISHED_PART_ATTEMPTS
                    && parts_vanished(&error.to_string())
                    && may_retry() =>
            {
                tracing::debug!(%error, attempts, "parts were deleted under a query (compaction or retention); running it again");
                std::thread::sleep(std::time::Duration::from_millis(20 * u64::from(attempts)));
                attempts += 1;
            }
            outcome => return outcome,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_query_whose_parts_vanished_is_run_again_other_errors_are_not() {
        let vanished = "running the query: IO Error: Cannot open file \"/d/events/cluster=a/date=2020-01-03/hour=10/part-000000000013-01M8.parquet\": No such file or directory";
        assert!(parts_vanished(vanished));
        assert!(parts_vanished(
            "IO Error: No files found that match the pattern \"/d/events/*/*/*/*.parquet\""
        ));
        assert!(!parts_vanished("Binder Error: column \"nope\" not found"));
        assert!(!parts_vanished("/etc/shadow: No such file or directory"));

        let calls = Cell::new(0);
        let outcome: std::result::Result<i64, String> = retry_if_parts_vanish(|| {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(vanished.to_string())
            } else {
                Ok(42)
            }
        });
        assert_eq!((outcome, calls.get()), (Ok(42), 3));

        calls.set(0);
        let outcome: std::result::Result<i64, String> = retry_if_parts_vanish(|| {
            calls.set(calls.get() + 1);
            Err(vanished.to_string())
        });
        assert!(outcome.is_err());
        assert_eq!(calls.get(), VANISHED_PART_ATTEMPTS);

        calls.set(0);
        let outcome: std::result::Result<i64, String> = retry_if_parts_vanish(|| {
            calls.set(calls.get() + 1);
            Err("Parser Error: syntax error".to_string())
        });
        assert!(outcome.is_err());
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn a_query_over_a_folder_emptied_under_it_sees_nothing_instead_of_failing() {
        let data = tempfile::tempdir().expect("data");
        let hour = events_dir(data.path()).join("cluster=a/date=2020-01-03/hour=10");
        std::fs::create_dir_all(&hour).expect("mkdir");
        let part = hour.join("part-000000000001-01M8EMD024Q4VNQ1MHA8AE7ZS6.parquet");
        // One row of the events schema.
        let columns: Vec<String> = duckdb_column_types()
            .into_iter()
            .map(|(name, sql_type)| format!("CAST(NULL AS {sql_type}) AS {name}"))
            .collect();
        let connection = duckdb::Connection::open_in_memory().expect("duckdb");
        connection
            .execute_batch(&format!(
                "COPY (SELECT {}) TO {} (FORMAT PARQUET)",
                columns.join(", "),
                sql_string_literal(&part.to_string_lossy())
            ))
            .expect("write part");
        let live = duckdb::Connection::open_in_memory().expect("duckdb");
        install_views(&live, data.path()).expect("views");
        let rows: i64 = live
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .expect("count");
        assert_eq!(rows, 1);
        // Views installed while the part existed; retention deletes it.
        let stale = duckdb::Connection::open_in_memory().expect("duckdb");
        install_views(&stale, data.path()).expect("views");
        std::fs::remove_file(&part).expect("delete part");
        let error = stale
            .query_row("SELECT count(*) FROM events", [], |row| {
                row.get::<_, i64>(0)
            })
            .expect_err("the stale view lists a deleted part");
        assert!(parts_vanished(&error.to_string()), "{error}");
        let mut first = true;
        let rows: std::result::Result<i64, String> = retry_if_parts_vanish(|| {
            let count = |session: &duckdb::Connection| {
                session
                    .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
                    .map_err(|error| error.to_string())
            };
            if std::mem::take(&mut first) {
                return count(&stale);
            }
            let fresh = duckdb::Connection::open_in_memory().map_err(|error| error.to_string())?;
            install_views(&fresh, data.path()).map_err(|error| error.to_string())?;
            count(&fresh)
        });
        let rows = rows.expect("count after retry");
        assert_eq!(rows, 0);
    }
}

//! Feature rows per identity and window, computed by DuckDB with the table
//! macro of `sql/features.sql`.
//!
//! The query is the contract: whatever numeric columns it returns after the
//! key columns are the features a spec may name, so adding a feature is one
//! edit to the SQL file. Values that are NULL, NaN or infinite are replaced by
//! 0 and counted (`FeatureTable::repaired_values`), so one odd window never
//! poisons a model or stops scoring.

use super::{ModelError, Result};
use crate::store::views::{install_views, sql_string_literal};
use arrow::array::{Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, Duration, TimeZone, Utc};
use ndarray::Array2;
use std::path::Path;

/// The SQL text of the feature macro, as shipped in `sql/features.sql`.
pub const FEATURES_SQL: &str = include_str!("../../sql/features.sql");

/// The columns that identify a row; every other column is a feature.
pub const KEY_COLUMNS: [&str; 5] = [
    "cluster",
    "identity",
    "identity_kind",
    "window_start",
    "window_end",
];

/// Which windows to compute: `[start, end)` cut into `window`-long windows
/// starting at `start`, with novelty counted against `lookback` of history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub window: Duration,
    pub lookback: Duration,
}

impl FeatureRange {
    /// The range of whole windows ending at or before `until` and starting at
    /// or after `until - span`, aligned to multiples of `window` since the
    /// Unix epoch (so 1 h windows start on the hour).
    pub fn aligned(
        until: DateTime<Utc>,
        span: Duration,
        window: Duration,
        lookback: Duration,
    ) -> FeatureRange {
        let window_seconds = window.num_seconds().max(1);
        let end_seconds = until.timestamp().div_euclid(window_seconds) * window_seconds;
        let start_seconds = (until - span).timestamp().div_euclid(window_seconds) * window_seconds;
        let at = |seconds: i64| Utc.timestamp_opt(seconds, 0).single().unwrap_or(until);
        FeatureRange {
            start: at(start_seconds),
            end: at(end_seconds),
            window: Duration::seconds(window_seconds),
            lookback,
        }
    }

    /// The `SELECT` over the macro for this range.
    pub fn select_sql(&self, has_unfinished_requests: bool) -> String {
        format!(
            "SELECT * FROM identity_window_features({}, {}, {}, {}, {})",
            timestamp_literal(self.start),
            timestamp_literal(self.end),
            self.window.num_seconds().max(1),
            self.lookback.num_seconds().max(0),
            has_unfinished_requests
        )
    }
}

/// A `TIMESTAMP '...'` literal (UTC, microseconds).
pub fn timestamp_literal(time: DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}'", time.format("%Y-%m-%d %H:%M:%S%.6f"))
}

/// The key of one feature row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowKey {
    pub cluster: String,
    pub identity: String,
    pub identity_kind: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
}

/// Feature rows: one key and one row of `values` per (cluster, identity, window).
#[derive(Debug, Clone)]
pub struct FeatureTable {
    /// Feature names, in column order of `values`.
    pub names: Vec<String>,
    pub keys: Vec<WindowKey>,
    pub values: Array2<f64>,
    /// How many NULL / NaN / infinite values were replaced by 0.
    pub repaired_values: usize,
}

impl FeatureTable {
    pub fn empty(names: Vec<String>) -> FeatureTable {
        let columns = names.len();
        FeatureTable {
            names,
            keys: Vec::new(),
            values: Array2::zeros((0, columns)),
            repaired_values: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|candidate| candidate == name)
    }

    /// The rows for which `keep` is true, in order.
    pub fn filter(&self, mut keep: impl FnMut(&WindowKey) -> bool) -> FeatureTable {
        let chosen: Vec<usize> = (0..self.len())
            .filter(|&row| keep(&self.keys[row]))
            .collect();
        let values = self.values.select(ndarray::Axis(0), &chosen);
        FeatureTable {
            names: self.names.clone(),
            keys: chosen.iter().map(|&row| self.keys[row].clone()).collect(),
            values,
            repaired_values: self.repaired_values,
        }
    }

    /// Builds the table from the macro's Arrow batches.
    pub fn from_batches(batches: &[RecordBatch]) -> Result<FeatureTable> {
        let Some(first) = batches.first() else {
            return Err(ModelError::Invalid(
                "the feature query returned no schema".into(),
            ));
        };
        let schema = first.schema();
        for key in KEY_COLUMNS {
            if schema.index_of(key).is_err() {
                return Err(ModelError::Invalid(format!(
                    "the feature query has no {key:?} column"
                )));
            }
        }
        let names: Vec<String> = schema
            .fields()
            .iter()
            .map(|field| field.name().clone())
            .filter(|name| !KEY_COLUMNS.contains(&name.as_str()))
            .collect();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let mut table = FeatureTable::empty(names.clone());
        table.values = Array2::zeros((rows, names.len()));
        let mut row_offset = 0;
        for batch in batches {
            let text = |name: &str| -> Result<StringArray> {
                let column = column_as(batch, name, &DataType::Utf8)?;
                column
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .cloned()
                    .ok_or_else(|| {
                        ModelError::Invalid(format!("feature column {name} is not text"))
                    })
            };
            let time = |name: &str| -> Result<TimestampMicrosecondArray> {
                let column = column_as(
                    batch,
                    name,
                    &DataType::Timestamp(TimeUnit::Microsecond, None),
                )?;
                column
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .cloned()
                    .ok_or_else(|| {
                        ModelError::Invalid(format!("feature column {name} is not a timestamp"))
                    })
            };
            let clusters = text("cluster")?;
            let identities = text("identity")?;
            let kinds = text("identity_kind")?;
            let starts = time("window_start")?;
            let ends = time("window_end")?;
            for row in 0..batch.num_rows() {
                let micros = |array: &TimestampMicrosecondArray| {
                    if array.is_null(row) {
                        None
                    } else {
                        DateTime::from_timestamp_micros(array.value(row))
                    }
                };
                let (Some(window_start), Some(window_end)) = (micros(&starts), micros(&ends))
                else {
                    return Err(ModelError::Invalid(
                        "a feature row has no window bounds".into(),
                    ));
                };
                let value_or_empty = |array: &StringArray| {
                    if array.is_null(row) {
                        String::new()
                    } else {
                        array.value(row).to_string()
                    }
                };
                table.keys.push(WindowKey {
                    cluster: value_or_empty(&clusters),
                    identity: value_or_empty(&identities),
                    identity_kind: value_or_empty(&kinds),
                    window_start,
                    window_end,
                });
            }
            for (column_index, name) in names.iter().enumerate() {
                let column = column_as(batch, name, &DataType::Float64)?;
                let numbers = column
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .ok_or_else(|| {
                        ModelError::Invalid(format!("feature column {name} is not numeric"))
                    })?;
                for row in 0..batch.num_rows() {
                    let value = if numbers.is_null(row) {
                        f64::NAN
                    } else {
                        numbers.value(row)
                    };
                    let value = if value.is_finite() {
                        value
                    } else {
                        table.repaired_values += 1;
                        0.0
                    };
                    table.values[[row_offset + row, column_index]] = value;
                }
            }
            row_offset += batch.num_rows();
        }
        if table.repaired_values > 0 {
            tracing::warn!(
                repaired = table.repaired_values,
                "feature rows held NULL, NaN or infinite values; replaced them by 0"
            );
        }
        Ok(table)
    }
}

fn column_as(
    batch: &RecordBatch,
    name: &str,
    data_type: &DataType,
) -> Result<arrow::array::ArrayRef> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| ModelError::Invalid(format!("the feature query has no {name:?} column")))?;
    if column.data_type() == data_type {
        return Ok(column.clone());
    }
    cast(column, data_type).map_err(|source| ModelError::Arrow {
        context: format!("reading feature column {name}"),
        source,
    })
}

/// A DuckDB session over `data_dir` with the views and the feature macro.
pub fn open_feature_session(data_dir: &Path) -> Result<duckdb::Connection> {
    let connection = duckdb::Connection::open_in_memory()
        .map_err(ModelError::duckdb("opening DuckDB in memory"))?;
    install_views(&connection, data_dir)?;
    install_features(&connection)?;
    Ok(connection)
}

/// Creates (or replaces) the feature macros in a session that has the views.
pub fn install_features(connection: &duckdb::Connection) -> Result<()> {
    connection
        .execute_batch(FEATURES_SQL)
        .map_err(ModelError::duckdb(
            "creating the feature macro of sql/features.sql",
        ))
}

/// The feature names the query produces (its columns after the key columns).
pub fn feature_names(connection: &duckdb::Connection) -> Result<Vec<String>> {
    let probe = FeatureRange {
        start: DateTime::UNIX_EPOCH,
        end: DateTime::UNIX_EPOCH,
        window: Duration::hours(1),
        lookback: Duration::zero(),
    };
    let sql = format!("{} LIMIT 0", probe.select_sql(false));
    let mut statement = connection
        .prepare(&sql)
        .map_err(ModelError::duckdb("describing the feature query"))?;
    let arrow = statement
        .query_arrow([])
        .map_err(ModelError::duckdb("describing the feature query"))?;
    let schema = arrow.get_schema();
    Ok(schema
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .filter(|name| !KEY_COLUMNS.contains(&name.as_str()))
        .collect())
}

/// Whether the range holds stage rows other than a request's final stage; if
/// not, the feature query skips its costly de-duplication (see the SQL).
fn has_unfinished_requests(connection: &duckdb::Connection, range: &FeatureRange) -> Result<bool> {
    let scan_start = range.start - range.lookback;
    let sql = format!(
        "SELECT count(*) > 0 FROM events WHERE date >= CAST({start} AS DATE) AND date <= CAST({end} AS DATE) \
         AND ts >= {start} AND ts < {end} AND stage NOT IN ('ResponseComplete', 'Panic')",
        start = timestamp_literal(scan_start),
        end = timestamp_literal(range.end),
    );
    connection
        .query_row(&sql, [], |row| row.get::<_, bool>(0))
        .map_err(ModelError::duckdb("counting unfinished requests"))
}

/// Computes the feature rows of `range` in a session with views and macros.
pub fn compute_features(
    connection: &duckdb::Connection,
    range: &FeatureRange,
) -> Result<FeatureTable> {
    if range.end <= range.start {
        return Err(ModelError::Invalid(format!(
            "empty feature range: {} is not before {}",
            range.start, range.end
        )));
    }
    let unfinished = has_unfinished_requests(connection, range)?;
    let sql = range.select_sql(unfinished);
    let context = format!("computing features from {} to {}", range.start, range.end);
    let mut statement = connection
        .prepare(&sql)
        .map_err(ModelError::duckdb(context.clone()))?;
    let arrow = statement
        .query_arrow([])
        .map_err(ModelError::duckdb(context))?;
    let schema = arrow.get_schema();
    let mut batches: Vec<RecordBatch> = arrow.collect();
    if batches.is_empty() {
        batches.push(RecordBatch::new_empty(schema));
    }
    FeatureTable::from_batches(&batches)
}

/// Writes the feature rows of `range` to a Parquet file (for `--dump-features`
/// and the scikit-learn comparison in benches/).
pub fn dump_features(
    connection: &duckdb::Connection,
    range: &FeatureRange,
    path: &Path,
) -> Result<()> {
    let unfinished = has_unfinished_requests(connection, range)?;
    let sql = format!(
        "COPY ({}) TO {} (FORMAT parquet)",
        range.select_sql(unfinished),
        sql_string_literal(&path.to_string_lossy())
    );
    connection
        .execute_batch(&sql)
        .map_err(ModelError::duckdb(format!(
            "writing features to {}",
            path.display()
        )))
}

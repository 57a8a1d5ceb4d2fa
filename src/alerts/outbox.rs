//! The `alert_outbox` table: one row per (alert, sink), the body exactly as
//! it will be sent, and the delivery state. Rows are never deleted by
//! delivery, so the table is also the record of what was sent where.

use super::{AlertError, Result};
use chrono::{DateTime, Utc};
use duckdb::params;

/// Created at dispatcher start (idempotent).
pub const OUTBOX_SQL: &str = "
CREATE TABLE IF NOT EXISTS alert_outbox (
    alert_key VARCHAR NOT NULL,         -- the idempotency key: anomaly:<id> or incident:<id>:<severity>
    sink VARCHAR NOT NULL,              -- the sink's configured name
    subject VARCHAR NOT NULL,           -- anomaly | incident
    subject_id VARCHAR NOT NULL,        -- the anomaly or incident id
    severity VARCHAR NOT NULL,
    payload VARCHAR NOT NULL,           -- the body, exactly as sent
    attempts INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    abandoned_at TIMESTAMP,             -- set after alerts.max_attempts failures
    last_error VARCHAR,
    PRIMARY KEY (alert_key, sink)
);
-- How far the dispatcher has read the anomalies table (by seq).
CREATE TABLE IF NOT EXISTS alert_cursor (
    name VARCHAR NOT NULL PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
";

fn duckdb_error(context: &'static str) -> impl FnOnce(duckdb::Error) -> AlertError {
    move |source| AlertError::DuckDb {
        context: context.to_string(),
        source,
    }
}

/// A delivery due now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub alert_key: String,
    pub sink: String,
    pub payload: String,
    pub attempts: u32,
}

/// Counts of outbox rows by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    pub pending: u64,
    pub delivered: u64,
    pub abandoned: u64,
}

pub(crate) fn ensure_schema(connection: &duckdb::Connection) -> Result<()> {
    connection
        .execute_batch(OUTBOX_SQL)
        .map_err(duckdb_error("creating the alert outbox"))
}

/// A row to add.
pub(crate) struct NewOutboxRow<'a> {
    pub alert_key: &'a str,
    pub sink: &'a str,
    pub subject: &'a str,
    pub subject_id: &'a str,
    pub severity: &'a str,
    pub payload: &'a str,
}

/// Adds a row unless (key, sink) is already there. Returns whether it was added.
pub(crate) fn insert(
    connection: &duckdb::Connection,
    row: &NewOutboxRow<'_>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let NewOutboxRow {
        alert_key,
        sink,
        subject,
        subject_id,
        severity,
        payload,
    } = *row;
    let micros = now.timestamp_micros();
    let inserted = connection
        .execute(
            "INSERT OR IGNORE INTO alert_outbox (alert_key, sink, subject, subject_id, severity, payload, attempts, created_at, next_attempt_at) \
             VALUES (?, ?, ?, ?, ?, ?, 0, make_timestamp(?), make_timestamp(?))",
            params![alert_key, sink, subject, subject_id, severity, payload, micros, micros],
        )
        .map_err(duckdb_error("adding to the alert outbox"))?;
    Ok(inserted > 0)
}

/// Undelivered, not abandoned rows whose next attempt is due, oldest first.
/// A row never tried is always due: its `next_attempt_at` is the wall clock
/// at enqueue, which must not hold back the first attempt when the round's
/// `now` is behind it (an injected clock, or the wall clock stepped back).
/// Only the backoff after a failure, set from the round's `now`, delays a row.
pub(crate) fn due(
    connection: &duckdb::Connection,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<OutboxRow>> {
    let mut statement = connection
        .prepare(
            "SELECT alert_key, sink, payload, attempts FROM alert_outbox \
             WHERE delivered_at IS NULL AND abandoned_at IS NULL AND (attempts = 0 OR next_attempt_at <= make_timestamp(?)) \
             ORDER BY created_at, alert_key, sink LIMIT ?",
        )
        .map_err(duckdb_error("reading due alerts"))?;
    let rows = statement
        .query_map(params![now.timestamp_micros(), limit as i64], |row| {
            Ok(OutboxRow {
                alert_key: row.get(0)?,
                sink: row.get(1)?,
                payload: row.get(2)?,
                attempts: row.get::<_, i32>(3)?.max(0) as u32,
            })
        })
        .map_err(duckdb_error("reading due alerts"))?;
    rows.collect::<duckdb::Result<Vec<_>>>()
        .map_err(duckdb_error("reading due alerts"))
}

pub(crate) fn mark_delivered(
    connection: &duckdb::Connection,
    row: &OutboxRow,
    now: DateTime<Utc>,
) -> Result<()> {
    connection
        .execute(
            "UPDATE alert_outbox SET delivered_at = make_timestamp(?), attempts = attempts + 1, last_error = NULL \
             WHERE alert_key = ? AND sink = ?",
            params![now.timestamp_micros(), row.alert_key, row.sink],
        )
        .map_err(duckdb_error("marking an alert delivered"))?;
    Ok(())
}

pub(crate) fn mark_failed(
    connection: &duckdb::Connection,
    row: &OutboxRow,
    error: &str,
    next_attempt_at: DateTime<Utc>,
    abandon: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    connection
        .execute(
            "UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = make_timestamp(?), \
             abandoned_at = CASE WHEN ? THEN make_timestamp(?) ELSE NULL END \
             WHERE alert_key = ? AND sink = ?",
            params![error, next_attempt_at.timestamp_micros(), abandon, now.timestamp_micros(), row.alert_key, row.sink],
        )
        .map_err(duckdb_error("recording a failed delivery"))?;
    Ok(())
}

pub(crate) fn status(connection: &duckdb::Connection) -> Result<OutboxStatus> {
    connection
        .query_row(
            "SELECT count(*) FILTER (WHERE delivered_at IS NULL AND abandoned_at IS NULL), \
                    count(*) FILTER (WHERE delivered_at IS NOT NULL), count(*) FILTER (WHERE abandoned_at IS NOT NULL) \
             FROM alert_outbox",
            [],
            |row| {
                Ok(OutboxStatus {
                    pending: row.get::<_, i64>(0)?.max(0) as u64,
                    delivered: row.get::<_, i64>(1)?.max(0) as u64,
                    abandoned: row.get::<_, i64>(2)?.max(0) as u64,
                })
            },
        )
        .map_err(duckdb_error("counting the alert outbox"))
}

pub(crate) fn read_cursor(connection: &duckdb::Connection, name: &str) -> Result<Option<i64>> {
    let mut statement = connection
        .prepare("SELECT last_seq FROM alert_cursor WHERE name = ?")
        .map_err(duckdb_error("reading the alert cursor"))?;
    let mut rows = statement
        .query_map([name], |row| row.get::<_, i64>(0))
        .map_err(duckdb_error("reading the alert cursor"))?;
    rows.next()
        .transpose()
        .map_err(duckdb_error("reading the alert cursor"))
}

pub(crate) fn write_cursor(
    connection: &duckdb::Connection,
    name: &str,
    last_seq: i64,
) -> Result<()> {
    connection
        .execute(
            "INSERT OR REPLACE INTO alert_cursor VALUES (?, ?)",
            params![name, last_seq],
        )
        .map_err(duckdb_error("writing the alert cursor"))?;
    Ok(())
}

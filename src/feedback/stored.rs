//! Reading back what detection stored, as people saw it: for `auditlens eval
//! --stored`, which scores the alerts that reached people (suppressed
//! anomalies never did) rather than a fresh replay.

use super::{FeedbackError, Result, database};
use crate::detect::{Anomaly, AnomalyKind, UnknownSeverity, datetime_from_micros};
use std::path::Path;

/// What is stored for a range: the anomalies that alerted and how many were suppressed.
#[derive(Debug, Default)]
pub struct StoredRange {
    pub alerting: Vec<Anomaly>,
    pub suppressed: usize,
    /// The range scored (UTC µs): the one asked for, else the stored windows' span.
    pub since: i64,
    pub until: i64,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    f64,
    String,
    String,
    String,
    Option<String>,
);

/// Reads the catalog of `data_dir` read-only (no DDL, nothing written):
/// anomalies whose window starts in `[since, until)`.
pub fn stored_range(
    data_dir: &Path,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<StoredRange> {
    let path = data_dir.join("catalog.duckdb");
    if !path.exists() {
        return Err(FeedbackError::Invalid(format!(
            "no catalog at {}: run `auditlens detect --store` first",
            path.display()
        )));
    }
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .map_err(database("configuring a read-only catalog session"))?;
    let connection = duckdb::Connection::open_with_flags(&path, config).map_err(|error| {
        if error.to_string().to_ascii_lowercase().contains("lock") {
            FeedbackError::CatalogBusy { path: path.clone() }
        } else {
            FeedbackError::DuckDb {
                context: format!("opening {}", path.display()),
                source: error,
            }
        }
    })?;
    let span: (Option<i64>, Option<i64>) = connection
        .query_row(
            "SELECT epoch_us(min(window_start)), epoch_us(max(window_start)) FROM anomalies",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(database("reading the stored range"))?;
    let since = since.or(span.0).unwrap_or(0);
    let until = until.or(span.1.map(|last| last + 1)).unwrap_or(since + 1);
    let rows: Vec<Row> = {
        let mut statement = connection
            .prepare(
                "SELECT id, detector, kind, identity, cluster, epoch_us(window_start), epoch_us(window_end), severity, \
                        score, title, to_json(reasons)::VARCHAR, to_json(evidence_audit_ids)::VARCHAR, suppressed_by \
                 FROM anomalies WHERE window_start >= make_timestamp(?) AND window_start < make_timestamp(?) \
                 ORDER BY window_start, id",
            )
            .map_err(database("reading stored anomalies"))?;
        statement
            .query_map([since, until], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                    row.get(8)?,
                    row.get(9)?,
                    row.get(10)?,
                    row.get(11)?,
                    row.get(12)?,
                ))
            })
            .map_err(database("reading stored anomalies"))?
            .collect::<duckdb::Result<_>>()
            .map_err(database("reading stored anomalies"))?
    };
    let mut range = StoredRange {
        since,
        until,
        ..StoredRange::default()
    };
    for (
        id,
        detector,
        kind,
        identity,
        cluster,
        start,
        end,
        severity,
        score,
        title,
        reasons,
        evidence,
        suppressed_by,
    ) in rows
    {
        if suppressed_by.is_some() {
            range.suppressed += 1;
            continue;
        }
        let corrupt =
            |reason: String| FeedbackError::Invalid(format!("stored anomaly {id}: {reason}"));
        let list = |text: &str| -> Result<Vec<String>> {
            serde_json::from_str(text).map_err(|error| corrupt(error.to_string()))
        };
        range.alerting.push(Anomaly {
            kind: match kind.as_str() {
                "novelty" => AnomalyKind::Novelty,
                "model" => AnomalyKind::Model,
                _ => AnomalyKind::Rule,
            },
            severity: severity
                .parse()
                .map_err(|error: UnknownSeverity| corrupt(error.to_string()))?,
            reasons: list(&reasons)?,
            evidence_audit_ids: list(&evidence)?,
            window_start: datetime_from_micros(start),
            window_end: datetime_from_micros(end),
            detector,
            identity,
            cluster,
            score,
            title,
            id,
        });
    }
    Ok(range)
}

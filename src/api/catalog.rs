//! Reads of the catalog's `anomalies` and `incidents` tables (sql/catalog.sql)
//! for ListAnomalies, GetIncident and WatchAnomalies.
//!
//! The daemon owns the catalog connection and hands in a shared handle; each
//! read clones a connection to the same database (`try_clone`), so reads run
//! concurrently on blocking threads without holding the daemon's lock. All
//! filter values are bound as parameters, never pasted into the SQL.

use super::ApiError;
use super::proto;
use crate::detect::Severity;
use std::sync::{Arc, Mutex};

/// The daemon's catalog connection, shared.
pub type SharedCatalog = Arc<Mutex<duckdb::Connection>>;

/// The DDL of the catalog tables, as shipped in `sql/catalog.sql`.
pub const CATALOG_SQL: &str = include_str!("../../sql/catalog.sql");

const ANOMALY_COLUMNS: &str = "seq, id, detector, kind, identity, cluster, \
     epoch_us(window_start), epoch_us(window_end), severity, score, title, \
     to_json(reasons)::VARCHAR, to_json(evidence_audit_ids)::VARCHAR, incident_id, epoch_us(detected_at), \
     triage_state, suppressed_by";

/// `anomalies` with its current triage state (`crate::feedback::triage`).
fn anomalies_relation() -> String {
    format!(
        "{} AS anomalies",
        crate::feedback::triage::anomalies_with_triage_sql()
    )
}

/// A filter turned into a WHERE clause and its bound values.
#[derive(Debug, Default)]
pub struct AnomalyQuery {
    pub filter: proto::AnomalyFilter,
    /// Only anomalies with seq below (paging, newest first) ...
    pub before_seq: Option<i64>,
    /// ... or above (watching, oldest first).
    pub after_seq: Option<i64>,
    pub limit: u32,
}

fn connection(catalog: &SharedCatalog) -> Result<duckdb::Connection, ApiError> {
    let guard = catalog
        .lock()
        .map_err(|_| ApiError::Catalog("the catalog lock is poisoned".into()))?;
    guard
        .try_clone()
        .map_err(|error| ApiError::Catalog(format!("opening a catalog connection: {error}")))
}

fn timestamp_from_micros(micros: Option<i64>) -> Option<prost_types::Timestamp> {
    micros.map(|micros| prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    })
}

/// Microseconds since the epoch of a protobuf timestamp.
pub fn micros_from_timestamp(timestamp: &prost_types::Timestamp) -> i64 {
    timestamp.seconds.saturating_mul(1_000_000) + i64::from(timestamp.nanos) / 1000
}

fn severities_at_least(minimum: &str) -> Result<Vec<String>, ApiError> {
    let minimum: Severity = minimum
        .parse()
        .map_err(|error| ApiError::InvalidArgument(format!("{error}")))?;
    Ok(Severity::ALL
        .into_iter()
        .filter(|severity| *severity >= minimum)
        .map(|severity| severity.as_str().to_string())
        .collect())
}

/// Builds `WHERE ...` with `?` placeholders and the values to bind.
fn where_clause(query: &AnomalyQuery) -> Result<(String, Vec<duckdb::types::Value>), ApiError> {
    use duckdb::types::Value;
    let mut conditions = vec!["true".to_string()];
    let mut values = Vec::new();
    let filter = &query.filter;
    if let Some(since) = &filter.since {
        conditions.push("window_end >= make_timestamp(?)".into());
        values.push(Value::BigInt(micros_from_timestamp(since)));
    }
    if let Some(until) = &filter.until {
        conditions.push("window_start < make_timestamp(?)".into());
        values.push(Value::BigInt(micros_from_timestamp(until)));
    }
    for (column, value) in [
        ("identity", &filter.identity),
        ("detector", &filter.detector),
        ("cluster", &filter.cluster),
    ] {
        if !value.is_empty() {
            conditions.push(format!("{column} = ?"));
            values.push(Value::Text(value.clone()));
        }
    }
    if !filter.min_severity.is_empty() {
        let allowed = severities_at_least(&filter.min_severity)?;
        let placeholders = vec!["?"; allowed.len()].join(", ");
        conditions.push(format!("severity IN ({placeholders})"));
        values.extend(allowed.into_iter().map(Value::Text));
    }
    if !filter.triage_state.is_empty() {
        let state: crate::feedback::TriageState =
            filter
                .triage_state
                .parse()
                .map_err(|error: crate::feedback::FeedbackError| {
                    ApiError::InvalidArgument(error.to_string())
                })?;
        conditions.push("triage_state = ?".into());
        values.push(Value::Text(state.as_str().to_string()));
    }
    match proto::SuppressedFilter::try_from(filter.suppressed) {
        Ok(proto::SuppressedFilter::Any) => {}
        Ok(proto::SuppressedFilter::Alerting) => conditions.push("suppressed_by IS NULL".into()),
        Ok(proto::SuppressedFilter::Suppressed) => {
            conditions.push("suppressed_by IS NOT NULL".into())
        }
        Err(_) => {
            return Err(ApiError::InvalidArgument(format!(
                "unknown suppressed filter {}",
                filter.suppressed
            )));
        }
    }
    if let Some(before) = query.before_seq {
        conditions.push("seq < ?".into());
        values.push(Value::BigInt(before));
    }
    if let Some(after) = query.after_seq {
        conditions.push("seq > ?".into());
        values.push(Value::BigInt(after));
    }
    Ok((conditions.join(" AND "), values))
}

fn anomaly_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<proto::Anomaly> {
    let list = |text: Option<String>| -> Vec<String> {
        text.and_then(|text| serde_json::from_str::<Vec<String>>(&text).ok())
            .unwrap_or_default()
    };
    Ok(proto::Anomaly {
        seq: row.get(0)?,
        id: row.get(1)?,
        detector: row.get(2)?,
        kind: row.get(3)?,
        identity: row.get(4)?,
        cluster: row.get(5)?,
        window_start: timestamp_from_micros(row.get(6)?),
        window_end: timestamp_from_micros(row.get(7)?),
        severity: row.get(8)?,
        score: row.get(9)?,
        title: row.get(10)?,
        reasons: list(row.get(11)?),
        evidence_audit_ids: list(row.get(12)?),
        incident_id: row.get::<_, Option<String>>(13)?.unwrap_or_default(),
        detected_at: timestamp_from_micros(row.get(14)?),
        triage_state: row.get(15)?,
        suppressed_by: row.get::<_, Option<String>>(16)?.unwrap_or_default(),
    })
}

/// Anomalies matching `query`: newest first, or oldest first with `after_seq`.
pub fn list_anomalies(
    catalog: &SharedCatalog,
    query: &AnomalyQuery,
) -> Result<Vec<proto::Anomaly>, ApiError> {
    let connection = connection(catalog)?;
    let (condition, values) = where_clause(query)?;
    let order = if query.after_seq.is_some() {
        "ASC"
    } else {
        "DESC"
    };
    let sql = format!(
        "SELECT {ANOMALY_COLUMNS} FROM {} WHERE {condition} ORDER BY seq {order} LIMIT {}",
        anomalies_relation(),
        query.limit.max(1)
    );
    let mut statement = connection
        .prepare(&sql)
        .map_err(|error| ApiError::Catalog(format!("reading anomalies: {error}")))?;
    let rows = statement
        .query_map(duckdb::params_from_iter(values), anomaly_from_row)
        .map_err(|error| ApiError::Catalog(format!("reading anomalies: {error}")))?;
    rows.collect::<duckdb::Result<Vec<_>>>()
        .map_err(|error| ApiError::Catalog(format!("reading anomalies: {error}")))
}

/// The highest `seq` stored (0 when there are none).
pub fn latest_seq(catalog: &SharedCatalog) -> Result<i64, ApiError> {
    let connection = connection(catalog)?;
    connection
        .query_row("SELECT coalesce(max(seq), 0) FROM anomalies", [], |row| {
            row.get(0)
        })
        .map_err(|error| ApiError::Catalog(format!("reading the latest anomaly: {error}")))
}

/// One incident and its anomalies.
pub fn get_incident(
    catalog: &SharedCatalog,
    id: &str,
) -> Result<proto::GetIncidentResponse, ApiError> {
    let connection = connection(catalog)?;
    let incident = connection
        .query_row(
            "SELECT id, identity, cluster, epoch_us(first_seen), epoch_us(last_seen), severity, title, \
             anomaly_count, to_json(detectors)::VARCHAR, epoch_us(updated_at) FROM incidents WHERE id = ?",
            [id],
            |row| {
                Ok(proto::Incident {
                    id: row.get(0)?,
                    identity: row.get(1)?,
                    cluster: row.get(2)?,
                    first_seen: timestamp_from_micros(row.get(3)?),
                    last_seen: timestamp_from_micros(row.get(4)?),
                    severity: row.get(5)?,
                    title: row.get(6)?,
                    anomaly_count: row.get(7)?,
                    detectors: row
                        .get::<_, Option<String>>(8)?
                        .and_then(|text| serde_json::from_str(&text).ok())
                        .unwrap_or_default(),
                    updated_at: timestamp_from_micros(row.get(9)?),
                })
            },
        )
        .map_err(|error| match error {
            duckdb::Error::QueryReturnedNoRows => ApiError::NotFound(format!("no incident {id:?}")),
            other => ApiError::Catalog(format!("reading incident {id:?}: {other}")),
        })?;
    let mut statement = connection
        .prepare(&format!(
            "SELECT {ANOMALY_COLUMNS} FROM {} WHERE incident_id = ? ORDER BY seq",
            anomalies_relation()
        ))
        .map_err(|error| ApiError::Catalog(format!("reading incident anomalies: {error}")))?;
    let anomalies = statement
        .query_map([id], anomaly_from_row)
        .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
        .map_err(|error| ApiError::Catalog(format!("reading incident anomalies: {error}")))?;
    Ok(proto::GetIncidentResponse {
        incident: Some(incident),
        anomalies,
    })
}

/// Opens (creating if needed) `catalog.duckdb` with the shared tables. For
/// `auditlens api-serve` and tests; the daemon opens its own catalog.
pub fn open_catalog(path: &std::path::Path) -> Result<duckdb::Connection, ApiError> {
    let connection = duckdb::Connection::open(path)
        .map_err(|error| ApiError::Catalog(format!("opening {}: {error}", path.display())))?;
    connection.execute_batch(CATALOG_SQL).map_err(|error| {
        ApiError::Catalog(format!("creating the tables of sql/catalog.sql: {error}"))
    })?;
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog_with_anomalies() -> SharedCatalog {
        let connection = duckdb::Connection::open_in_memory().expect("duckdb");
        connection.execute_batch(CATALOG_SQL).expect("ddl");
        for (index, (identity, severity)) in [
            ("alice", "low"),
            ("bob", "high"),
            ("alice", "critical"),
            ("carol", "medium"),
        ]
        .iter()
        .enumerate()
        {
            connection
                .execute(
                    "INSERT INTO anomalies (id, detector, kind, identity, cluster, window_start, window_end, severity, \
                     score, title, reasons, evidence_audit_ids, incident_id, detected_at) VALUES \
                     (?, 'rules.test', 'rule', ?, 'default', TIMESTAMP '2026-11-27 09:00:00' + to_minutes(?::BIGINT), \
                     TIMESTAMP '2026-11-27 09:01:00' + to_minutes(?::BIGINT), ?, 1.0, 'test', ['why'], ['a1', 'a2'], \
                     'incident-1', TIMESTAMP '2026-11-27 10:00:00')",
                    duckdb::params![format!("anomaly-{index}"), identity, index as i64, index as i64, severity],
                )
                .expect("insert");
        }
        connection
            .execute(
                "INSERT INTO incidents VALUES ('incident-1', 'alice', 'default', TIMESTAMP '2026-11-27 09:00:00', \
                 TIMESTAMP '2026-11-27 09:05:00', 'critical', 'alice did things', 2, ['rules.test'], TIMESTAMP '2026-11-27 10:00:00')",
                [],
            )
            .expect("incident");
        Arc::new(Mutex::new(connection))
    }

    #[test]
    fn filters_pages_and_resumes_by_seq() {
        let catalog = catalog_with_anomalies();
        let mut query = AnomalyQuery {
            limit: 2,
            ..AnomalyQuery::default()
        };
        let first = list_anomalies(&catalog, &query).expect("list");
        assert_eq!(
            first.iter().map(|anomaly| anomaly.seq).collect::<Vec<_>>(),
            vec![4, 3]
        );
        assert_eq!(first[1].reasons, vec!["why"]);
        assert_eq!(first[1].evidence_audit_ids, vec!["a1", "a2"]);
        query.before_seq = Some(3);
        let second = list_anomalies(&catalog, &query).expect("list");
        assert_eq!(
            second.iter().map(|anomaly| anomaly.seq).collect::<Vec<_>>(),
            vec![2, 1]
        );

        let high = AnomalyQuery {
            filter: proto::AnomalyFilter {
                min_severity: "high".into(),
                ..Default::default()
            },
            limit: 10,
            ..AnomalyQuery::default()
        };
        let found = list_anomalies(&catalog, &high).expect("list");
        assert_eq!(found.len(), 2);
        let alice = AnomalyQuery {
            filter: proto::AnomalyFilter {
                identity: "alice".into(),
                ..Default::default()
            },
            after_seq: Some(1),
            limit: 10,
            ..AnomalyQuery::default()
        };
        let found = list_anomalies(&catalog, &alice).expect("list");
        assert_eq!(
            found.iter().map(|anomaly| anomaly.seq).collect::<Vec<_>>(),
            vec![3]
        );
        assert_eq!(latest_seq(&catalog).expect("latest"), 4);
        let bad = AnomalyQuery {
            filter: proto::AnomalyFilter {
                min_severity: "urgent".into(),
                ..Default::default()
            },
            limit: 1,
            ..AnomalyQuery::default()
        };
        assert!(matches!(
            list_anomalies(&catalog, &bad),
            Err(ApiError::InvalidArgument(_))
        ));
    }

    #[test]
    fn reads_an_incident_with_its_anomalies() {
        let catalog = catalog_with_anomalies();
        let incident = get_incident(&catalog, "incident-1").expect("incident");
        assert_eq!(incident.anomalies.len(), 4);
        assert_eq!(
            incident.incident.expect("incident").detectors,
            vec!["rules.test"]
        );
        assert!(matches!(
            get_incident(&catalog, "nope"),
            Err(ApiError::NotFound(_))
        ));
    }
}

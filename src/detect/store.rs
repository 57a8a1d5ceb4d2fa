//! The anomaly store: the catalog's `anomalies` and `incidents` tables.
//!
//! Anomaly IDs are stable (a hash of detector, identity, window and first
//! evidence), so recording the same anomaly twice is a no-op: re-running
//! `auditlens detect --store` over a range, or the daemon replaying after a
//! restart, never duplicates rows. Incidents are grouped at insert time
//! against the table itself (the identity's latest incident within the gap),
//! so the live path and batch runs group the same way.
//!
//! Each anomaly is marked as it is recorded by [`crate::feedback::AnomalyMarker`]:
//! `suppressed_by` names the suppression or learnt threshold that keeps it
//! from alerting. Suppressed anomalies are stored, grouped and counted like
//! any other; only the mark differs. Suppressions are read at the store's
//! clock now on every [`AnomalyStore::record`], so expiry needs no restart.

use super::anomaly::{Anomaly, AnomalyKind, Severity, datetime_from_micros, stable_anomaly_id};
use super::incidents::Incident;
use crate::feedback::{AnomalyMarker, SharedClock, system_clock};
use crate::store::views::sql_string_literal;
use duckdb::{Connection, params};

/// The shared catalog DDL (`sql/catalog.sql`).
pub const CATALOG_SQL: &str = include_str!("../../sql/catalog.sql");

/// What can go wrong reading or writing the anomaly tables.
#[derive(Debug, thiserror::Error)]
pub enum AnomalyStoreError {
    #[error("{context}: {source}")]
    DuckDb {
        context: String,
        #[source]
        source: duckdb::Error,
    },
    #[error("stored anomaly {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
}

pub type Result<T, E = AnomalyStoreError> = std::result::Result<T, E>;

fn database(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> AnomalyStoreError {
    let context = context.into();
    move |source| AnomalyStoreError::DuckDb { context, source }
}

/// Filters for [`AnomalyStore::list`]; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct AnomalyFilter {
    /// Anomalies whose window ends at or after this time (UTC µs).
    pub since: Option<i64>,
    /// Anomalies whose window starts before this time (UTC µs).
    pub until: Option<i64>,
    pub identity: Option<String>,
    pub minimum_severity: Option<Severity>,
    pub detector: Option<String>,
    pub cluster: Option<String>,
    /// Only anomalies with `seq` greater than this (resume a watch).
    pub after_seq: Option<i64>,
    /// `Some(false)`: only those that alert; `Some(true)`: only suppressed ones.
    pub suppressed: Option<bool>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// A stored anomaly with its catalog bookkeeping.
#[derive(Debug, Clone)]
pub struct StoredAnomaly {
    pub seq: i64,
    pub anomaly: Anomaly,
    pub incident_id: Option<String>,
    /// The suppression or learnt threshold that kept it from alerting.
    pub suppressed_by: Option<String>,
}

/// Reads and writes the anomaly tables of one DuckDB connection.
pub struct AnomalyStore<'a> {
    connection: &'a Connection,
    gap_micros: i64,
    clock: SharedClock,
}

impl<'a> AnomalyStore<'a> {
    /// Creates the tables if missing (runs `sql/catalog.sql`, idempotent).
    pub fn open(connection: &'a Connection, gap_micros: i64) -> Result<AnomalyStore<'a>> {
        ensure_tables(connection)?;
        Ok(AnomalyStore {
            connection,
            gap_micros,
            clock: system_clock(),
        })
    }

    /// Uses `clock` for `detected_at` and for which suppressions are in force.
    pub fn with_clock(mut self, clock: SharedClock) -> AnomalyStore<'a> {
        self.clock = clock;
        self
    }

    /// Records anomalies (any order), grouping each into an incident.
    /// Returns how many were new.
    pub fn record(&self, anomalies: &[Anomaly]) -> Result<usize> {
        let mut sorted: Vec<&Anomaly> = anomalies.iter().collect();
        sorted.sort_by(|a, b| {
            a.window_start
                .cmp(&b.window_start)
                .then_with(|| a.id.cmp(&b.id))
        });
        let transaction = self
            .connection
            .unchecked_transaction()
            .map_err(database("starting an anomaly transaction"))?;
        let now = self.clock.now();
        // A marker that cannot be read marks nothing: anomalies then alert,
        // which is noisy but never silent.
        let marker = AnomalyMarker::load(self.connection, now).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot read suppressions and thresholds; recording anomalies unmarked");
            AnomalyMarker::empty()
        });
        let mut inserted = 0;
        for anomaly in sorted {
            if self.exists(&anomaly.id)? {
                continue;
            }
            let incident_id = self.attach_to_incident(anomaly, now.timestamp_micros())?;
            let suppressed_by = marker.mark(self.connection, anomaly);
            self.insert(
                anomaly,
                &incident_id,
                suppressed_by.as_deref(),
                now.timestamp_micros(),
            )?;
            inserted += 1;
        }
        transaction
            .commit()
            .map_err(database("committing anomalies"))?;
        Ok(inserted)
    }

    fn exists(&self, id: &str) -> Result<bool> {
        let count: i64 = self
            .connection
            .query_row(
                "SELECT count(*) FROM anomalies WHERE id = ?",
                params![id],
                |row| row.get(0),
            )
            .map_err(database("looking up an anomaly"))?;
        Ok(count > 0)
    }

    fn insert(
        &self,
        anomaly: &Anomaly,
        incident_id: &str,
        suppressed_by: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let reasons = serde_json::to_string(&anomaly.reasons).unwrap_or_else(|_| "[]".into());
        let evidence =
            serde_json::to_string(&anomaly.evidence_audit_ids).unwrap_or_else(|_| "[]".into());
        self.connection
            .execute(
                "INSERT INTO anomalies (id, detector, kind, identity, cluster, window_start, window_end, severity, score, \
                 title, reasons, evidence_audit_ids, incident_id, detected_at, suppressed_by) \
                 VALUES (?, ?, ?, ?, ?, make_timestamp(?), make_timestamp(?), ?, ?, ?, \
                 from_json(?::JSON, '[\"VARCHAR\"]'), from_json(?::JSON, '[\"VARCHAR\"]'), ?, make_timestamp(?), ?)",
                params![
                    anomaly.id,
                    anomaly.detector,
                    anomaly.kind.as_str(),
                    anomaly.identity,
                    anomaly.cluster,
                    anomaly.window_start_micros(),
                    anomaly.window_end_micros(),
                    anomaly.severity.as_str(),
                    anomaly.score,
                    anomaly.title,
                    reasons,
                    evidence,
                    incident_id,
                    now,
                    suppressed_by,
                ],
            )
            .map_err(database(format!("inserting anomaly {}", anomaly.id)))?;
        Ok(())
    }

    /// Finds the identity's incident within the gap or opens one; returns its ID.
    fn attach_to_incident(&self, anomaly: &Anomaly, now: i64) -> Result<String> {
        let start = anomaly.window_start_micros();
        let end = anomaly.window_end_micros().max(start);
        let existing: Option<(String, String, String)> = {
            let mut statement = self
                .connection
                .prepare(
                    "SELECT id, severity, title FROM incidents WHERE cluster = ? AND identity = ? \
                     AND epoch_us(last_seen) >= ? AND epoch_us(first_seen) <= ? ORDER BY last_seen DESC LIMIT 1",
                )
                .map_err(database("preparing the incident lookup"))?;
            let mut rows = statement
                .query(params![
                    anomaly.cluster,
                    anomaly.identity,
                    start - self.gap_micros,
                    end + self.gap_micros
                ])
                .map_err(database("looking up the open incident"))?;
            match rows.next().map_err(database("reading the open incident"))? {
                Some(row) => Some((
                    row.get(0).map_err(database("reading incident id"))?,
                    row.get(1).map_err(database("reading incident severity"))?,
                    row.get(2).map_err(database("reading incident title"))?,
                )),
                None => None,
            }
        };
        match existing {
            Some((id, severity, title)) => {
                let current = severity.parse::<Severity>().unwrap_or(Severity::Info);
                let (severity, title) = if anomaly.severity > current {
                    (anomaly.severity.as_str().to_string(), anomaly.title.clone())
                } else {
                    (current.as_str().to_string(), title)
                };
                self.connection
                    .execute(
                        "UPDATE incidents SET first_seen = least(first_seen, make_timestamp(?)), \
                         last_seen = greatest(last_seen, make_timestamp(?)), severity = ?, title = ?, \
                         anomaly_count = anomaly_count + 1, \
                         detectors = CASE WHEN list_contains(detectors, ?::VARCHAR) THEN detectors ELSE list_append(detectors, ?::VARCHAR) END, \
                         updated_at = make_timestamp(?) WHERE id = ?",
                        params![start, end, severity, title, anomaly.detector, anomaly.detector, now, id],
                    )
                    .map_err(database(format!("updating incident {id}")))?;
                Ok(id)
            }
            None => {
                let id = stable_anomaly_id(
                    &anomaly.cluster,
                    "incident",
                    &anomaly.identity,
                    start,
                    Some(&anomaly.id),
                );
                self.connection
                    .execute(
                        "INSERT OR IGNORE INTO incidents (id, identity, cluster, first_seen, last_seen, severity, title, \
                         anomaly_count, detectors, updated_at) VALUES (?, ?, ?, make_timestamp(?), make_timestamp(?), ?, ?, 1, \
                         [?::VARCHAR], make_timestamp(?))",
                        params![id, anomaly.identity, anomaly.cluster, start, end, anomaly.severity.as_str(), anomaly.title, anomaly.detector, now],
                    )
                    .map_err(database(format!("opening incident {id}")))?;
                Ok(id)
            }
        }
    }

    /// Lists stored anomalies, newest window first.
    pub fn list(&self, filter: &AnomalyFilter) -> Result<Vec<StoredAnomaly>> {
        let mut conditions = vec!["true".to_string()];
        if let Some(since) = filter.since {
            conditions.push(format!("epoch_us(window_end) >= {since}"));
        }
        if let Some(until) = filter.until {
            conditions.push(format!("epoch_us(window_start) < {until}"));
        }
        if let Some(identity) = &filter.identity {
            conditions.push(format!("identity = {}", sql_string_literal(identity)));
        }
        if let Some(detector) = &filter.detector {
            conditions.push(format!("detector = {}", sql_string_literal(detector)));
        }
        if let Some(cluster) = &filter.cluster {
            conditions.push(format!("cluster = {}", sql_string_literal(cluster)));
        }
        if let Some(minimum) = filter.minimum_severity {
            let allowed: Vec<String> = Severity::ALL
                .into_iter()
                .filter(|severity| *severity >= minimum)
                .map(|severity| sql_string_literal(severity.as_str()))
                .collect();
            conditions.push(format!("severity IN ({})", allowed.join(", ")));
        }
        if let Some(after) = filter.after_seq {
            conditions.push(format!("seq > {after}"));
        }
        match filter.suppressed {
            Some(true) => conditions.push("suppressed_by IS NOT NULL".into()),
            Some(false) => conditions.push("suppressed_by IS NULL".into()),
            None => {}
        }
        let sql = format!(
            "SELECT seq, id, detector, kind, identity, cluster, epoch_us(window_start), epoch_us(window_end), severity, score, \
             title, to_json(reasons)::VARCHAR, to_json(evidence_audit_ids)::VARCHAR, incident_id, suppressed_by \
             FROM anomalies WHERE {} ORDER BY window_start DESC, seq DESC LIMIT {} OFFSET {}",
            conditions.join(" AND "),
            filter.limit.unwrap_or(1000),
            filter.offset.unwrap_or(0)
        );
        let mut statement = self
            .connection
            .prepare(&sql)
            .map_err(database("preparing the anomaly list"))?;
        let mut rows = statement.query([]).map_err(database("listing anomalies"))?;
        let mut listed = Vec::new();
        while let Some(row) = rows.next().map_err(database("reading an anomaly row"))? {
            let read = |index: usize| -> Result<String> {
                row.get(index)
                    .map_err(database("reading an anomaly column"))
            };
            let id = read(1)?;
            let kind = match read(3)?.as_str() {
                "rule" => AnomalyKind::Rule,
                "novelty" => AnomalyKind::Novelty,
                "model" => AnomalyKind::Model,
                other => {
                    return Err(AnomalyStoreError::Corrupt {
                        id,
                        reason: format!("unknown kind {other:?}"),
                    });
                }
            };
            let severity =
                read(8)?
                    .parse::<Severity>()
                    .map_err(|error| AnomalyStoreError::Corrupt {
                        id: id.clone(),
                        reason: error.to_string(),
                    })?;
            let parse_list = |text: String, id: &str| -> Result<Vec<String>> {
                serde_json::from_str(&text).map_err(|error| AnomalyStoreError::Corrupt {
                    id: id.to_string(),
                    reason: error.to_string(),
                })
            };
            let reasons = parse_list(read(11)?, &id)?;
            let evidence = parse_list(read(12)?, &id)?;
            listed.push(StoredAnomaly {
                seq: row.get(0).map_err(database("reading seq"))?,
                incident_id: row.get(13).map_err(database("reading incident id"))?,
                suppressed_by: row.get(14).map_err(database("reading suppressed_by"))?,
                anomaly: Anomaly {
                    detector: read(2)?,
                    kind,
                    identity: read(4)?,
                    cluster: read(5)?,
                    window_start: datetime_from_micros(
                        row.get(6).map_err(database("reading window start"))?,
                    ),
                    window_end: datetime_from_micros(
                        row.get(7).map_err(database("reading window end"))?,
                    ),
                    severity,
                    score: row.get(9).map_err(database("reading score"))?,
                    title: read(10)?,
                    reasons,
                    evidence_audit_ids: evidence,
                    id,
                },
            });
        }
        Ok(listed)
    }

    /// Incidents overlapping a time range, newest first.
    pub fn incidents(
        &self,
        since: Option<i64>,
        until: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Incident>> {
        let sql = format!(
            "SELECT i.id, i.identity, i.cluster, epoch_us(i.first_seen), epoch_us(i.last_seen), i.severity, i.title, i.anomaly_count, \
             to_json(i.detectors)::VARCHAR, \
             (SELECT to_json(coalesce(list(a.id ORDER BY a.window_start), []::VARCHAR[]))::VARCHAR FROM anomalies a WHERE a.incident_id = i.id), \
             (SELECT to_json(coalesce(flatten(list(a.evidence_audit_ids ORDER BY a.window_start)), []::VARCHAR[]))::VARCHAR FROM anomalies a WHERE a.incident_id = i.id) \
             FROM incidents i WHERE epoch_us(i.last_seen) >= {} AND epoch_us(i.first_seen) < {} ORDER BY i.first_seen DESC LIMIT {limit}",
            since.unwrap_or(i64::MIN),
            until.unwrap_or(i64::MAX)
        );
        let mut statement = self
            .connection
            .prepare(&sql)
            .map_err(database("preparing the incident list"))?;
        let mut rows = statement.query([]).map_err(database("listing incidents"))?;
        let mut incidents = Vec::new();
        while let Some(row) = rows.next().map_err(database("reading an incident row"))? {
            let id: String = row.get(0).map_err(database("reading incident id"))?;
            let list = |index: usize| -> Result<Vec<String>> {
                let text: Option<String> = row
                    .get(index)
                    .map_err(database("reading an incident list"))?;
                serde_json::from_str(text.as_deref().unwrap_or("[]")).map_err(|error| {
                    AnomalyStoreError::Corrupt {
                        id: id.clone(),
                        reason: error.to_string(),
                    }
                })
            };
            let severity: String = row.get(5).map_err(database("reading incident severity"))?;
            incidents.push(Incident {
                identity: row.get(1).map_err(database("reading incident identity"))?,
                cluster: row.get(2).map_err(database("reading incident cluster"))?,
                first_seen: datetime_from_micros(
                    row.get(3).map_err(database("reading first_seen"))?,
                ),
                last_seen: datetime_from_micros(row.get(4).map_err(database("reading last_seen"))?),
                severity: severity.parse().unwrap_or(Severity::Info),
                title: row.get(6).map_err(database("reading incident title"))?,
                anomaly_count: row
                    .get::<_, i64>(7)
                    .map_err(database("reading anomaly_count"))?
                    .max(0) as u64,
                detectors: list(8)?,
                anomaly_ids: list(9)?,
                evidence_audit_ids: list(10)?,
                id: id.clone(),
            });
        }
        Ok(incidents)
    }
}

/// Runs `sql/catalog.sql` (idempotent).
pub fn ensure_tables(connection: &Connection) -> Result<()> {
    connection
        .execute_batch(CATALOG_SQL)
        .map_err(database("creating the catalog tables of sql/catalog.sql"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::anomaly::datetime_from_micros;

    fn anomaly(identity: &str, minute: i64, severity: Severity, detector: &str) -> Anomaly {
        let start = 1_700_000_000_000_000 + minute * 60_000_000;
        Anomaly {
            id: stable_anomaly_id("default", detector, identity, start, None),
            detector: detector.into(),
            kind: AnomalyKind::Rule,
            identity: identity.into(),
            cluster: "default".into(),
            window_start: datetime_from_micros(start),
            window_end: datetime_from_micros(start + 5_000_000),
            severity,
            score: severity.rule_score(),
            title: format!("{detector} by {identity}"),
            reasons: vec!["it's \"quoted\"".into(), "second".into()],
            evidence_audit_ids: vec![format!("audit-{minute}")],
        }
    }

    #[test]
    fn records_idempotently_groups_and_lists() {
        let connection = Connection::open_in_memory().expect("in-memory duckdb");
        let store = AnomalyStore::open(&connection, 30 * 60_000_000).expect("tables");
        let anomalies = vec![
            anomaly("alice", 0, Severity::Low, "workload.exec"),
            anomaly("alice", 10, Severity::Critical, "rbac.wildcard_grant"),
            anomaly("bob", 3, Severity::Medium, "auth.forbidden_burst"),
            anomaly("alice", 200, Severity::Medium, "workload.exec"),
        ];
        assert_eq!(store.record(&anomalies).expect("record"), 4);
        assert_eq!(
            store.record(&anomalies).expect("record again"),
            0,
            "same anomalies are not stored twice"
        );
        let all = store.list(&AnomalyFilter::default()).expect("list");
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[0].anomaly, anomalies[3],
            "newest first and round-trips exactly"
        );
        let alice_high = store
            .list(&AnomalyFilter {
                identity: Some("alice".into()),
                minimum_severity: Some(Severity::High),
                ..AnomalyFilter::default()
            })
            .expect("filtered list");
        assert_eq!(alice_high.len(), 1);
        assert_eq!(alice_high[0].anomaly.detector, "rbac.wildcard_grant");
        let paged = store
            .list(&AnomalyFilter {
                limit: Some(2),
                offset: Some(2),
                ..AnomalyFilter::default()
            })
            .expect("page");
        assert_eq!(paged.len(), 2);
        let incidents = store.incidents(None, None, 100).expect("incidents");
        assert_eq!(incidents.len(), 3);
        let grouped = incidents
            .iter()
            .find(|incident| incident.anomaly_count == 2)
            .expect("alice's grouped incident");
        assert_eq!(grouped.severity, Severity::Critical);
        assert_eq!(
            grouped.detectors,
            vec!["workload.exec", "rbac.wildcard_grant"]
        );
        assert_eq!(grouped.evidence_audit_ids, vec!["audit-0", "audit-10"]);
    }
}

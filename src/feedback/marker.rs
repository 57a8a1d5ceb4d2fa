//! The mark an anomaly gets when it is recorded: the suppression or learnt
//! threshold that keeps it from alerting, or none.
//!
//! [`crate::detect::AnomalyStore::record`] loads one [`AnomalyMarker`] per
//! call, with the suppressions active *at the store's clock now*, so an
//! expired suppression stops applying at the next batch without a restart.
//! The mark is a column; the anomaly is stored and counted either way.

use super::learning::{Thresholds, current_thresholds};
use super::suppression::{Suppression, active, evidence_scope};
use super::{Result, database};
use crate::detect::Anomaly;
use chrono::{DateTime, Utc};
use duckdb::Connection;

/// Suppressions in force and thresholds learnt, at one instant.
#[derive(Debug, Clone, Default)]
pub struct AnomalyMarker {
    suppressions: Vec<Suppression>,
    thresholds: Thresholds,
}

impl AnomalyMarker {
    /// Reads what is in force at `now` from the catalog.
    pub fn load(connection: &Connection, now: DateTime<Utc>) -> Result<AnomalyMarker> {
        let has_tables: i64 = connection
            .query_row(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('suppressions', 'threshold_changes') \
                 AND database_name = current_database() AND schema_name = 'main'",
                [],
                |row| row.get(0),
            )
            .map_err(database("looking for the feedback tables"))?;
        if has_tables < 2 {
            return Ok(AnomalyMarker::default());
        }
        Ok(AnomalyMarker {
            suppressions: active(connection, now)?,
            thresholds: current_thresholds(connection)?,
        })
    }

    /// Nothing suppressed, nothing learnt.
    pub fn empty() -> AnomalyMarker {
        AnomalyMarker::default()
    }

    pub fn is_empty(&self) -> bool {
        self.suppressions.is_empty() && self.thresholds.is_empty()
    }

    /// The ID of what keeps `anomaly` from alerting: the first matching
    /// suppression, else a learnt threshold it scores below; `None` if it alerts.
    /// `connection` is used to read the evidence requests when a matching
    /// suppression has a namespace or source pattern.
    pub fn mark(&self, connection: &Connection, anomaly: &Anomaly) -> Option<String> {
        let mut scope = None;
        let mut scope_read = false;
        for suppression in &self.suppressions {
            if !suppression.matches_subject(anomaly) {
                continue;
            }
            if suppression.needs_evidence() && !scope_read {
                scope = evidence_scope(connection, anomaly);
                scope_read = true;
            }
            if suppression.matches_evidence(scope.as_ref()) {
                return Some(suppression.id.clone());
            }
        }
        match self
            .thresholds
            .effective(&anomaly.detector, &anomaly.identity)
        {
            Some((minimum, id)) if anomaly.score < minimum - 1e-12 => Some(id.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{AnomalyKind, AnomalyStore, Severity, datetime_from_micros};
    use crate::feedback::suppression::{NewSuppression, create, sync_config_suppressions};
    use crate::feedback::{Clock, FeedbackConfig, ManualClock, SuppressionConfig};
    use std::sync::Arc;

    const T0: i64 = 1_800_000_000_000_000;

    fn anomaly(identity: &str, minute: i64, detector: &str, evidence: &str) -> Anomaly {
        let start = T0 + minute * 60_000_000;
        Anomaly {
            id: crate::detect::stable_anomaly_id(
                "default",
                detector,
                identity,
                start,
                Some(evidence),
            ),
            detector: detector.into(),
            kind: AnomalyKind::Rule,
            identity: identity.into(),
            cluster: "default".into(),
            window_start: datetime_from_micros(start),
            window_end: datetime_from_micros(start + 1_000_000),
            severity: Severity::Low,
            score: Severity::Low.rule_score(),
            title: format!("{detector} by {identity}"),
            reasons: vec![],
            evidence_audit_ids: vec![evidence.into()],
        }
    }

    fn marks(connection: &Connection) -> Vec<(String, Option<String>)> {
        let mut statement = connection
            .prepare("SELECT id, suppressed_by FROM anomalies ORDER BY window_start, id")
            .expect("prepare");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("query")
            .collect::<duckdb::Result<Vec<_>>>()
            .expect("rows")
    }

    #[test]
    fn an_expired_suppression_stops_applying_without_a_restart() {
        let connection = Connection::open_in_memory().expect("duckdb");
        let clock = ManualClock::new(datetime_from_micros(T0));
        // One store for the whole test: what a running daemon holds.
        let store = AnomalyStore::open(&connection, 30 * 60_000_000)
            .expect("store")
            .with_clock(Arc::new(clock.clone()));
        let suppression = create(
            &connection,
            &NewSuppression {
                detector: "workload.exec".into(),
                identity_pattern: "ci@example.com".into(),
                namespace_pattern: None,
                source_pattern: None,
                reason: "CI debugging its runners".into(),
                owner: "platform".into(),
                expires_at: datetime_from_micros(T0) + chrono::Duration::days(30),
                origin: "verdict:1".into(),
            },
            &clock,
        )
        .expect("suppression");
        let before = anomaly("ci@example.com", 0, "workload.exec", "a1");
        let other_detector = anomaly("ci@example.com", 1, "node.proxy", "a2");
        let other_identity = anomaly("bob@example.com", 2, "workload.exec", "a3");
        store
            .record(&[
                before.clone(),
                other_detector.clone(),
                other_identity.clone(),
            ])
            .expect("record");
        clock.set(
            datetime_from_micros(T0) + chrono::Duration::days(30) - chrono::Duration::seconds(1),
        );
        let last_second = anomaly("ci@example.com", 3, "workload.exec", "a4");
        store
            .record(std::slice::from_ref(&last_second))
            .expect("record");
        clock.set(datetime_from_micros(T0) + chrono::Duration::days(30));
        let expired = anomaly("ci@example.com", 4, "workload.exec", "a5");
        store
            .record(std::slice::from_ref(&expired))
            .expect("record");
        let marks: std::collections::HashMap<String, Option<String>> =
            marks(&connection).into_iter().collect();
        assert_eq!(marks.len(), 5, "every anomaly is stored");
        assert_eq!(marks[&before.id], Some(suppression.id.clone()));
        assert_eq!(marks[&last_second.id], Some(suppression.id.clone()));
        assert_eq!(
            marks[&expired.id], None,
            "expired at its expiry, no restart"
        );
        assert_eq!(marks[&other_detector.id], None);
        assert_eq!(marks[&other_identity.id], None);
    }

    #[test]
    fn suppressions_change_only_the_marks_never_the_counts() {
        let anomalies: Vec<Anomaly> = (0..40)
            .map(|index| {
                let identity = [
                    "ci@example.com",
                    "alice@example.com",
                    "system:serviceaccount:ci:deployer",
                ][index % 3];
                let detector = ["workload.exec", "node.proxy"][index % 2];
                anomaly(identity, index as i64 * 7, detector, &format!("e{index}"))
            })
            .collect();
        let config = FeedbackConfig {
            suppressions: vec![SuppressionConfig {
                detector: "workload.*".into(),
                identity: "*@example.com".into(),
                namespace: None,
                source: None,
                reason: "people debug their pods".into(),
                owner: "platform".into(),
                expires: None,
            }],
            ..FeedbackConfig::default()
        };
        let mut results = Vec::new();
        for with_suppressions in [false, true] {
            let connection = Connection::open_in_memory().expect("duckdb");
            let clock = ManualClock::new(datetime_from_micros(T0));
            let store = AnomalyStore::open(&connection, 30 * 60_000_000)
                .expect("store")
                .with_clock(Arc::new(clock.clone()));
            if with_suppressions {
                sync_config_suppressions(&connection, &config, &clock).expect("sync");
            }
            store.record(&anomalies).expect("record");
            let counts: (i64, i64, i64) = connection
                .query_row(
                    "SELECT (SELECT count(*) FROM anomalies), (SELECT count(*) FROM incidents), \
                            (SELECT count(*) FROM anomalies WHERE suppressed_by IS NOT NULL)",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .expect("counts");
            let ids: Vec<String> = marks(&connection).into_iter().map(|(id, _)| id).collect();
            results.push((counts, ids));
        }
        let (without, with) = (&results[0], &results[1]);
        assert_eq!(without.0.0, 40);
        assert_eq!(without.0.0, with.0.0, "same anomaly count");
        assert_eq!(without.0.1, with.0.1, "same incident count");
        assert_eq!(without.1, with.1, "the very same anomalies");
        assert_eq!(without.0.2, 0);
        // ci@ and alice@ exec hits: 40 anomalies, exec on even indexes, two
        // thirds of those by an @example.com identity.
        let expected = (0..40usize)
            .filter(|index| index % 2 == 0 && index % 3 != 2)
            .count() as i64;
        assert_eq!(with.0.2, expected);
    }

    #[test]
    fn namespace_patterns_are_checked_against_the_evidence_requests() {
        let connection = Connection::open_in_memory().expect("duckdb");
        crate::detect::store::ensure_tables(&connection).expect("tables");
        connection
            .execute_batch(&format!(
                "CREATE VIEW events AS SELECT * FROM (VALUES \
                   ('in-ci', 'ci', '10.0.0.1', make_timestamp({T0}), 'ResponseComplete'), \
                   ('in-prod', 'prod', '10.0.0.1', make_timestamp({T0}), 'ResponseComplete')) \
                 AS t(audit_id, namespace, source_ip, ts, stage)"
            ))
            .expect("events view");
        let clock = ManualClock::new(datetime_from_micros(T0));
        let suppression = create(
            &connection,
            &NewSuppression {
                detector: "workload.exec".into(),
                identity_pattern: "*".into(),
                namespace_pattern: Some("ci".into()),
                source_pattern: Some("10.0.*".into()),
                reason: "CI pods are debugged all day".into(),
                owner: "platform".into(),
                expires_at: datetime_from_micros(T0) + chrono::Duration::days(1),
                origin: "config".into(),
            },
            &clock,
        )
        .expect("suppression");
        let marker = AnomalyMarker::load(&connection, clock.now()).expect("marker");
        let in_ci = anomaly("bob", 0, "workload.exec", "in-ci");
        let in_prod = anomaly("bob", 0, "workload.exec", "in-prod");
        let unknown = anomaly("bob", 0, "workload.exec", "never-stored");
        assert_eq!(marker.mark(&connection, &in_ci), Some(suppression.id));
        assert_eq!(marker.mark(&connection, &in_prod), None);
        assert_eq!(
            marker.mark(&connection, &unknown),
            None,
            "unverifiable evidence alerts"
        );
    }
}

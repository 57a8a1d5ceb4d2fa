//! The nightly report's feedback section: what verdicts say about detection,
//! and what the feedback loop changed because of them.
//!
//! Built from the catalog tables by name through whatever session the report
//! reads (the daemon's catalog, the read-only attach, or the Parquet export),
//! so every table is optional: a catalog without the feedback tables gives a
//! section with `available = false`, never an error.

use super::triage::ANOMALY_VERDICTS_SQL;
use super::{Result, database, micros_to_time};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use duckdb::{Connection, params};
use serde::{Deserialize, Serialize};

/// Suppressions expiring within this many days after the report's day are listed.
pub const EXPIRING_WITHIN_DAYS: i64 = 7;
/// The day-by-day trend covers this many days, ending with the report's day.
pub const TREND_DAYS: i64 = 8;
const LIST_LIMIT: usize = 20;

/// The feedback section (`feedback` in the report's JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackSection {
    /// False when the catalog has no feedback tables (an older catalog or export).
    pub available: bool,
    /// Anomalies of the day stored with a suppression or threshold mark (not alerted, still counted).
    pub suppressed_anomalies: u64,
    /// Alerting and suppressed anomalies per day and detector, the last 8 days.
    pub alerts_per_day: Vec<DetectorDay>,
    /// Active suppressions expiring within 7 days of the day's end: renew or let go.
    pub expiring_suppressions: Vec<SuppressionUse>,
    /// The suppressions that matched most anomalies in the 30 days up to the day's end.
    pub top_suppressions: Vec<SuppressionUse>,
    /// Per detector, from every verdict on anomalies up to the day's end: true / (true + benign).
    pub precision: Vec<DetectorPrecision>,
    /// Incidents first seen in the 7 days up to the day's end: how fast they got a verdict.
    pub time_to_triage: TimeToTriage,
    /// Identities with the most benign verdicts so far.
    pub benign_identities: Vec<IdentityVerdicts>,
    /// Automatic threshold changes of the 7 days up to the day's end, newest first.
    pub threshold_changes: Vec<ThresholdChangeEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorDay {
    pub date: NaiveDate,
    pub detector: String,
    pub alerting: u64,
    pub suppressed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuppressionUse {
    pub id: String,
    pub detector: String,
    pub identity_pattern: String,
    pub namespace_pattern: Option<String>,
    pub source_pattern: Option<String>,
    pub reason: String,
    pub owner: String,
    pub expires_at: DateTime<Utc>,
    pub origin: String,
    /// Anomalies it marked in the 30 days up to the day's end.
    pub matched_30d: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorPrecision {
    pub detector: String,
    pub true_positives: u64,
    pub benign: u64,
    /// `true_positives / (true_positives + benign)`.
    pub precision: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeToTriage {
    pub incidents: u64,
    pub triaged: u64,
    /// From the incident's first stored anomaly to its first verdict.
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityVerdicts {
    pub identity: String,
    pub benign: u64,
    pub true_positives: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdChangeEntry {
    pub at: DateTime<Utc>,
    pub detector: String,
    pub identity: String,
    pub old_min_score: f64,
    pub new_min_score: f64,
    pub reason: String,
}

fn exists(connection: &Connection, table: &str) -> Result<bool> {
    crate::report::table_exists(connection, table)
        .map_err(|error| super::FeedbackError::Invalid(error.to_string()))
}

fn has_column(connection: &Connection, table: &str, column: &str) -> Result<bool> {
    let found: i64 = connection
        .query_row(
            "SELECT count(*) FROM information_schema.columns WHERE table_catalog = current_database() \
             AND table_schema = 'main' AND table_name = ? AND column_name = ?",
            params![table, column],
            |row| row.get(0),
        )
        .map_err(database("looking up catalog columns"))?;
    Ok(found > 0)
}

fn collect<T>(
    connection: &Connection,
    context: &str,
    sql: &str,
    values: &[i64],
    map: impl FnMut(&duckdb::Row<'_>) -> duckdb::Result<T>,
) -> Result<Vec<T>> {
    let mut statement = connection.prepare(sql).map_err(database(context))?;
    let rows = statement
        .query_map(duckdb::params_from_iter(values.iter()), map)
        .map_err(database(context))?;
    rows.collect::<duckdb::Result<Vec<_>>>()
        .map_err(database(context))
}

/// Builds the section for the UTC day `date` and `cluster`.
pub fn build_section(
    connection: &Connection,
    date: NaiveDate,
    cluster: &str,
) -> Result<FeedbackSection> {
    let mut section = FeedbackSection::default();
    if !exists(connection, "anomalies")? {
        return Ok(section);
    }
    let day_start = date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let day_end = day_start + Duration::days(1);
    let (start, end) = (day_start.timestamp_micros(), day_end.timestamp_micros());
    // An export or catalog from before the feedback loop has no mark column.
    let cluster = crate::store::views::sql_string_literal(cluster);
    let anomalies = if has_column(connection, "anomalies", "suppressed_by")? {
        format!("(SELECT * FROM anomalies WHERE cluster = {cluster})")
    } else {
        format!(
            "(SELECT *, CAST(NULL AS VARCHAR) AS suppressed_by FROM anomalies WHERE cluster = {cluster})"
        )
    };
    section.suppressed_anomalies = connection
        .query_row(
            &format!(
                "SELECT count(*) FROM {anomalies} WHERE suppressed_by IS NOT NULL \
                 AND window_start >= make_timestamp(?) AND window_start < make_timestamp(?)"
            ),
            params![start, end],
            |row| row.get::<_, i64>(0),
        )
        .map_err(database("counting suppressed anomalies"))?
        .max(0) as u64;
    let trend_start = (day_start - Duration::days(TREND_DAYS - 1)).timestamp_micros();
    section.alerts_per_day = collect(
        connection,
        "alerts per day",
        &format!(
            "SELECT epoch_us(date_trunc('day', window_start)), detector, count(*) FILTER (WHERE suppressed_by IS NULL), \
                    count(*) FILTER (WHERE suppressed_by IS NOT NULL) FROM {anomalies} \
             WHERE window_start >= make_timestamp(?) AND window_start < make_timestamp(?) GROUP BY ALL ORDER BY 1, 2"
        ),
        &[trend_start, end],
        |row| {
            Ok(DetectorDay {
                date: micros_to_time(row.get(0)?).date_naive(),
                detector: row.get(1)?,
                alerting: row.get::<_, i64>(2)?.max(0) as u64,
                suppressed: row.get::<_, i64>(3)?.max(0) as u64,
            })
        },
    )?;
    let have_triage = exists(connection, "triage_events")?;
    let have_suppressions = exists(connection, "suppressions")?;
    let have_changes = exists(connection, "threshold_changes")?;
    section.available = have_triage && have_suppressions && have_changes;
    if have_suppressions {
        let month_start = (day_end - Duration::days(30)).timestamp_micros();
        let expiring_end = (day_end + Duration::days(EXPIRING_WITHIN_DAYS)).timestamp_micros();
        let base = format!(
            "SELECT s.id, s.detector, s.identity_pattern, s.namespace_pattern, s.source_pattern, s.reason, s.owner, \
                    epoch_us(s.expires_at), s.origin, \
                    (SELECT count(*) FROM {anomalies} a WHERE a.suppressed_by = s.id \
                       AND a.window_start >= make_timestamp(?) AND a.window_start < make_timestamp(?)) AS matched \
             FROM suppressions s WHERE s.retired_at IS NULL AND s.created_at < make_timestamp(?)"
        );
        let map = |row: &duckdb::Row<'_>| {
            Ok(SuppressionUse {
                id: row.get(0)?,
                detector: row.get(1)?,
                identity_pattern: row.get(2)?,
                namespace_pattern: row.get(3)?,
                source_pattern: row.get(4)?,
                reason: row.get(5)?,
                owner: row.get(6)?,
                expires_at: micros_to_time(row.get(7)?),
                origin: row.get(8)?,
                matched_30d: row.get::<_, i64>(9)?.max(0) as u64,
            })
        };
        section.expiring_suppressions = collect(
            connection,
            "expiring suppressions",
            &format!(
                "{base} AND s.expires_at > make_timestamp(?) AND s.expires_at <= make_timestamp(?) \
                 ORDER BY s.expires_at, s.id LIMIT {LIST_LIMIT}"
            ),
            &[month_start, end, end, end, expiring_end],
            map,
        )?;
        section.top_suppressions = collect(
            connection,
            "top suppressions",
            &format!("{base} ORDER BY matched DESC, s.id LIMIT {LIST_LIMIT}"),
            &[month_start, end, end],
            map,
        )?
        .into_iter()
        .filter(|entry| entry.matched_30d > 0)
        .collect();
    }
    if have_triage {
        let verdicts = format!(
            "(SELECT a.detector, a.identity, v.state FROM {anomalies} a JOIN {ANOMALY_VERDICTS_SQL} v ON v.anomaly_id = a.id \
              WHERE a.window_start < make_timestamp(?))"
        );
        section.precision = collect(
            connection,
            "precision per detector",
            &format!(
                "SELECT detector, count(*) FILTER (WHERE state = 'resolved_true_positive'), \
                        count(*) FILTER (WHERE state = 'resolved_benign') FROM {verdicts} \
                 GROUP BY detector HAVING count(*) FILTER (WHERE state IN ('resolved_true_positive', 'resolved_benign')) > 0 \
                 ORDER BY 1"
            ),
            &[end],
            |row| {
                let true_positives = row.get::<_, i64>(1)?.max(0) as u64;
                let benign = row.get::<_, i64>(2)?.max(0) as u64;
                Ok(DetectorPrecision {
                    detector: row.get(0)?,
                    true_positives,
                    benign,
                    precision: true_positives as f64 / (true_positives + benign).max(1) as f64,
                })
            },
        )?;
        section.benign_identities = collect(
            connection,
            "benign verdicts per identity",
            &format!(
                "SELECT identity, count(*) FILTER (WHERE state = 'resolved_benign') AS benign, \
                        count(*) FILTER (WHERE state = 'resolved_true_positive') FROM {verdicts} \
                 GROUP BY identity HAVING benign > 0 ORDER BY benign DESC, identity LIMIT 10"
            ),
            &[end],
            |row| {
                Ok(IdentityVerdicts {
                    identity: row.get(0)?,
                    benign: row.get::<_, i64>(1)?.max(0) as u64,
                    true_positives: row.get::<_, i64>(2)?.max(0) as u64,
                })
            },
        )?;
        if exists(connection, "incidents")? {
            let week_start = (day_end - Duration::days(7)).timestamp_micros();
            let delays: Vec<Option<f64>> = collect(
                connection,
                "time to triage",
                &format!(
                    "SELECT (SELECT CASE WHEN min(t.decided_at) IS NULL THEN NULL \
                                ELSE greatest(epoch_us(min(t.decided_at)) - epoch_us(min(a.detected_at)), 0) / 1e6 END \
                               FROM triage_events t, {anomalies} a \
                              WHERE a.incident_id = i.id AND t.state <> 'open' AND t.decided_at < make_timestamp(?) \
                                AND ((t.subject_kind = 'incident' AND t.subject_id = i.id) \
                                  OR (t.subject_kind = 'anomaly' AND t.subject_id = a.id))) \
                     FROM incidents i WHERE i.cluster = {cluster} \
                       AND i.first_seen >= make_timestamp(?) AND i.first_seen < make_timestamp(?)"
                ),
                &[end, week_start, end],
                |row| row.get::<_, Option<f64>>(0),
            )?;
            let mut triaged: Vec<f64> = delays.iter().flatten().copied().collect();
            triaged.sort_by(f64::total_cmp);
            let pick = |share: f64| -> Option<f64> {
                if triaged.is_empty() {
                    return None;
                }
                let index =
                    ((triaged.len() as f64 * share).ceil() as usize).clamp(1, triaged.len()) - 1;
                Some(triaged[index])
            };
            section.time_to_triage = TimeToTriage {
                incidents: delays.len() as u64,
                triaged: triaged.len() as u64,
                median_seconds: pick(0.5),
                p90_seconds: pick(0.9),
            };
        }
    }
    if have_changes {
        let week_start = (day_end - Duration::days(7)).timestamp_micros();
        section.threshold_changes = collect(
            connection,
            "threshold changes",
            &format!(
                "SELECT epoch_us(changed_at), detector, identity, old_min_score, new_min_score, reason FROM threshold_changes \
                 WHERE changed_at >= make_timestamp(?) AND changed_at < make_timestamp(?) ORDER BY changed_at DESC, id LIMIT {LIST_LIMIT}"
            ),
            &[week_start, end],
            |row| {
                Ok(ThresholdChangeEntry {
                    at: micros_to_time(row.get(0)?),
                    detector: row.get(1)?,
                    identity: row.get(2)?,
                    old_min_score: row.get(3)?,
                    new_min_score: row.get(4)?,
                    reason: row.get(5)?,
                })
            },
        )?;
    }
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Anomaly, AnomalyKind, AnomalyStore, Severity, datetime_from_micros};
    use crate::feedback::suppression::{NewSuppression, create};
    use crate::feedback::triage::{TriageState, Verdict, record_verdict};
    use crate::feedback::{FeedbackConfig, ManualClock, ThresholdPolicy};
    use std::sync::Arc;

    #[test]
    fn the_section_reports_precision_expiry_triage_time_and_changes() {
        let connection = Connection::open_in_memory().expect("duckdb");
        // 2026-11-26 00:00 UTC.
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let midnight = day.and_hms_opt(0, 0, 0).expect("time").and_utc();
        let clock = ManualClock::new(midnight + Duration::hours(1));
        let store = AnomalyStore::open(&connection, 30 * 60_000_000)
            .expect("store")
            .with_clock(Arc::new(clock.clone()));
        let anomaly = |identity: &str, hour: i64, detector: &str| {
            let start = (midnight + Duration::hours(hour)).timestamp_micros();
            Anomaly {
                id: crate::detect::stable_anomaly_id("default", detector, identity, start, None),
                detector: detector.into(),
                kind: AnomalyKind::Rule,
                identity: identity.into(),
                cluster: "default".into(),
                window_start: datetime_from_micros(start),
                window_end: datetime_from_micros(start + 1_000_000),
                severity: Severity::Low,
                score: Severity::Low.rule_score(),
                title: "t".into(),
                reasons: vec![],
                evidence_audit_ids: vec![format!("{identity}-{hour}")],
            }
        };
        let suppression = create(
            &connection,
            &NewSuppression {
                detector: "workload.exec".into(),
                identity_pattern: "ci".into(),
                namespace_pattern: None,
                source_pattern: None,
                reason: "CI debugging".into(),
                owner: "platform".into(),
                expires_at: midnight + Duration::days(4),
                origin: "config".into(),
            },
            &clock,
        )
        .expect("suppression");
        store
            .record(&[
                anomaly("ci", 2, "workload.exec"),
                anomaly("alice", 3, "workload.exec"),
                anomaly("bob", 5, "rbac.wildcard_grant"),
            ])
            .expect("record");
        let policy = ThresholdPolicy::from_config(&FeedbackConfig::default());
        let incidents = store.incidents(None, None, 10).expect("incidents");
        for incident in &incidents {
            clock.advance(Duration::minutes(30));
            let state = if incident.identity == "bob" {
                TriageState::ResolvedTruePositive
            } else {
                TriageState::ResolvedBenign
            };
            record_verdict(
                &connection,
                &Verdict {
                    subject_id: incident.id.clone(),
                    state,
                    reason: Some("known".into()),
                    actor: "analyst".into(),
                    suppress_for: None,
                    suppress_namespace: None,
                    suppress_source: None,
                },
                &policy,
                &clock,
            )
            .expect("verdict");
        }
        let section = build_section(&connection, day, "default").expect("section");
        assert!(section.available);
        assert_eq!(section.suppressed_anomalies, 1);
        assert_eq!(section.expiring_suppressions.len(), 1);
        assert_eq!(section.expiring_suppressions[0].id, suppression.id);
        assert_eq!(section.top_suppressions.len(), 1);
        assert_eq!(section.top_suppressions[0].matched_30d, 1);
        let exec = section
            .precision
            .iter()
            .find(|entry| entry.detector == "workload.exec")
            .expect("exec precision");
        assert_eq!((exec.true_positives, exec.benign), (0, 2));
        let wildcard = section
            .precision
            .iter()
            .find(|entry| entry.detector == "rbac.wildcard_grant")
            .expect("wildcard precision");
        assert_eq!(wildcard.precision, 1.0);
        assert_eq!(section.time_to_triage.incidents, 3);
        assert_eq!(section.time_to_triage.triaged, 3);
        assert_eq!(section.time_to_triage.median_seconds, Some(3600.0));
        assert_eq!(section.benign_identities.len(), 2);
        let day_total: u64 = section
            .alerts_per_day
            .iter()
            .filter(|entry| entry.date == day)
            .map(|entry| entry.alerting + entry.suppressed)
            .sum();
        assert_eq!(day_total, 3);
        // Nothing to report on a catalog without the feedback tables.
        let bare = Connection::open_in_memory().expect("duckdb");
        assert!(
            !build_section(&bare, day, "default")
                .expect("bare")
                .available
        );
    }
}

//! Triage: the verdicts people give incidents and anomalies, kept as an
//! append-only history (`triage_events`).
//!
//! States: `open` (the default, and what re-opening records), `acknowledged`
//! (someone is on it), `resolved_true_positive`, `resolved_benign` (a reason is
//! mandatory). Nothing is overwritten: the current state is the newest row,
//! and the whole history says who did what when.
//!
//! A verdict on an incident covers the anomalies stored in it *up to the
//! verdict*; an anomaly that joins the incident later is open again (new
//! activity after a resolution deserves a look), and so is the incident.
//!
//! [`record_verdict`] is the one entry point (CLI and gRPC): it validates,
//! appends the verdict, creates the suppressions a benign verdict asks for,
//! and lets [`super::learning`] move thresholds, in one transaction.

use super::learning::{self, ThresholdChange, ThresholdPolicy};
use super::suppression::{self, NewSuppression, Suppression};
use super::{Clock, FeedbackError, Result, database, micros_to_time};
use chrono::{DateTime, Utc};
use duckdb::{Connection, params};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Where an incident or anomaly stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageState {
    Open,
    Acknowledged,
    ResolvedTruePositive,
    ResolvedBenign,
}

impl TriageState {
    pub const ALL: [TriageState; 4] = [
        TriageState::Open,
        TriageState::Acknowledged,
        TriageState::ResolvedTruePositive,
        TriageState::ResolvedBenign,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TriageState::Open => "open",
            TriageState::Acknowledged => "acknowledged",
            TriageState::ResolvedTruePositive => "resolved_true_positive",
            TriageState::ResolvedBenign => "resolved_benign",
        }
    }
}

impl fmt::Display for TriageState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for TriageState {
    type Err = FeedbackError;
    fn from_str(text: &str) -> Result<TriageState> {
        let wanted = text.trim().to_ascii_lowercase().replace('-', "_");
        let alias = match wanted.as_str() {
            "ack" => "acknowledged",
            "true_positive" | "tp" => "resolved_true_positive",
            "benign" => "resolved_benign",
            other => other,
        };
        TriageState::ALL
            .into_iter()
            .find(|state| state.as_str() == alias)
            .ok_or_else(|| {
                FeedbackError::Invalid(format!(
                    "unknown triage state {text:?}: expected open, acknowledged, resolved_true_positive or resolved_benign"
                ))
            })
    }
}

/// What a verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    Incident,
    Anomaly,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Incident => "incident",
            SubjectKind::Anomaly => "anomaly",
        }
    }
}

/// A verdict to record.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// An incident ID or an anomaly ID (incidents are looked up first).
    pub subject_id: String,
    pub state: TriageState,
    /// Mandatory for `resolved_benign` (and becomes the suppression's reason).
    pub reason: Option<String>,
    pub actor: String,
    /// Benign only: suppress the subject's detectors for its identity this long.
    pub suppress_for: Option<chrono::Duration>,
    /// Narrow the suppression to evidence in these namespaces / from these addresses (globs).
    pub suppress_namespace: Option<String>,
    pub suppress_source: Option<String>,
}

/// One row of `triage_events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriageEvent {
    pub seq: i64,
    pub subject_kind: SubjectKind,
    pub subject_id: String,
    pub state: TriageState,
    pub reason: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// What recording a verdict did.
#[derive(Debug, Clone, Serialize)]
pub struct TriageOutcome {
    pub event: TriageEvent,
    pub identity: String,
    pub suppressions: Vec<Suppression>,
    pub threshold_changes: Vec<ThresholdChange>,
    /// Threshold changes the verdicts called for but that were not made, and why.
    pub held_back: Vec<String>,
}

/// The incident or anomaly a verdict names.
struct Subject {
    kind: SubjectKind,
    identity: String,
    /// Detectors of the anomalies it covers.
    detectors: Vec<String>,
}

fn find_subject(connection: &Connection, id: &str) -> Result<Subject> {
    let incident: Option<String> = connection
        .query_row("SELECT identity FROM incidents WHERE id = ?", [id], |row| {
            row.get(0)
        })
        .map(Some)
        .or_else(|error| match error {
            duckdb::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })
        .map_err(database("looking up the incident"))?;
    let (kind, identity, condition) = match incident {
        Some(identity) => (SubjectKind::Incident, identity, "incident_id = ?"),
        None => {
            let identity: Option<String> = connection
                .query_row("SELECT identity FROM anomalies WHERE id = ?", [id], |row| {
                    row.get(0)
                })
                .map(Some)
                .or_else(|error| match error {
                    duckdb::Error::QueryReturnedNoRows => Ok(None),
                    other => Err(other),
                })
                .map_err(database("looking up the anomaly"))?;
            match identity {
                Some(identity) => (SubjectKind::Anomaly, identity, "id = ?"),
                None => return Err(FeedbackError::NotFound(id.to_string())),
            }
        }
    };
    let mut statement = connection
        .prepare(&format!(
            "SELECT DISTINCT detector FROM anomalies WHERE {condition} ORDER BY 1"
        ))
        .map_err(database("reading the subject's detectors"))?;
    let detectors = statement
        .query_map([id], |row| row.get::<_, String>(0))
        .map_err(database("reading the subject's detectors"))?
        .collect::<duckdb::Result<Vec<_>>>()
        .map_err(database("reading the subject's detectors"))?;
    Ok(Subject {
        kind,
        identity,
        detectors,
    })
}

fn check(verdict: &Verdict) -> Result<()> {
    if verdict.subject_id.trim().is_empty() {
        return Err(FeedbackError::Invalid(
            "name the incident or anomaly to triage".into(),
        ));
    }
    if verdict.actor.trim().is_empty() {
        return Err(FeedbackError::Invalid(
            "a verdict needs an actor (who gave it)".into(),
        ));
    }
    let has_reason = verdict
        .reason
        .as_deref()
        .is_some_and(|reason| !reason.trim().is_empty());
    if verdict.state == TriageState::ResolvedBenign && !has_reason {
        return Err(FeedbackError::Invalid(
            "resolving as benign needs a reason (--reason \"nightly backup job\")".into(),
        ));
    }
    let suppression_asked = verdict.suppress_for.is_some()
        || verdict.suppress_namespace.is_some()
        || verdict.suppress_source.is_some();
    if suppression_asked && verdict.state != TriageState::ResolvedBenign {
        return Err(FeedbackError::Invalid(
            "only a benign verdict can create a suppression (--benign --reason ... --suppress 30d)"
                .into(),
        ));
    }
    if verdict.suppress_for.is_none()
        && (verdict.suppress_namespace.is_some() || verdict.suppress_source.is_some())
    {
        return Err(FeedbackError::Invalid(
            "a namespace or source pattern narrows a suppression: add --suppress DURATION".into(),
        ));
    }
    Ok(())
}

/// Records a verdict: appends it to `triage_events`, creates the suppressions
/// a benign verdict asks for (one per detector of the subject, for its
/// identity), then moves thresholds the verdicts now justify. All or nothing.
pub fn record_verdict(
    connection: &Connection,
    verdict: &Verdict,
    policy: &ThresholdPolicy,
    clock: &dyn Clock,
) -> Result<TriageOutcome> {
    check(verdict)?;
    let transaction = connection
        .unchecked_transaction()
        .map_err(database("starting a triage transaction"))?;
    let subject = find_subject(connection, verdict.subject_id.trim())?;
    let now = clock.now();
    let reason = verdict
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|reason| !reason.is_empty());
    let seq: i64 = connection
        .query_row(
            "INSERT INTO triage_events (subject_kind, subject_id, state, reason, actor, decided_at) \
             VALUES (?, ?, ?, ?, ?, make_timestamp(?)) RETURNING seq",
            params![
                subject.kind.as_str(),
                verdict.subject_id.trim(),
                verdict.state.as_str(),
                reason,
                verdict.actor.trim(),
                now.timestamp_micros()
            ],
            |row| row.get(0),
        )
        .map_err(database("recording the verdict"))?;
    let mut suppressions = Vec::new();
    if let (Some(duration), Some(reason)) = (verdict.suppress_for, reason) {
        for detector in &subject.detectors {
            suppressions.push(suppression::create(
                connection,
                &NewSuppression {
                    detector: detector.clone(),
                    identity_pattern: subject.identity.clone(),
                    namespace_pattern: verdict.suppress_namespace.clone(),
                    source_pattern: verdict.suppress_source.clone(),
                    reason: reason.to_string(),
                    owner: verdict.actor.trim().to_string(),
                    expires_at: now + duration,
                    origin: format!("verdict:{seq}"),
                },
                clock,
            )?);
        }
    }
    let adapted = learning::adapt(connection, policy, clock)?;
    transaction
        .commit()
        .map_err(database("committing the verdict"))?;
    for change in &adapted.changes {
        tracing::info!(detector = %change.detector, identity = %change.identity, reason = %change.reason, "threshold changed by feedback");
    }
    Ok(TriageOutcome {
        event: TriageEvent {
            seq,
            subject_kind: subject.kind,
            subject_id: verdict.subject_id.trim().to_string(),
            state: verdict.state,
            reason: reason.map(str::to_string),
            actor: verdict.actor.trim().to_string(),
            at: now,
        },
        identity: subject.identity,
        suppressions,
        threshold_changes: adapted.changes,
        held_back: adapted.held_back,
    })
}

fn event_from_row(row: &duckdb::Row<'_>) -> duckdb::Result<(TriageEvent, String)> {
    let kind: String = row.get(1)?;
    let state: String = row.get(3)?;
    Ok((
        TriageEvent {
            seq: row.get(0)?,
            subject_kind: if kind == "incident" {
                SubjectKind::Incident
            } else {
                SubjectKind::Anomaly
            },
            subject_id: row.get(2)?,
            state: state.parse().unwrap_or(TriageState::Open),
            reason: row.get(4)?,
            actor: row.get(5)?,
            at: micros_to_time(row.get(6)?),
        },
        state,
    ))
}

/// The verdicts given on an incident, or on an anomaly and its incident, oldest first.
pub fn history(connection: &Connection, subject_id: &str) -> Result<Vec<TriageEvent>> {
    let mut statement = connection
        .prepare(
            "SELECT seq, subject_kind, subject_id, state, reason, actor, epoch_us(decided_at) FROM triage_events \
             WHERE subject_id = ? OR subject_id IN (SELECT incident_id FROM anomalies WHERE id = ? AND incident_id IS NOT NULL) \
             ORDER BY seq",
        )
        .map_err(database("reading the triage history"))?;
    let rows = statement
        .query_map(params![subject_id, subject_id], event_from_row)
        .map_err(database("reading the triage history"))?;
    let mut events = Vec::new();
    for row in rows {
        let (event, raw_state) = row.map_err(database("reading the triage history"))?;
        if raw_state != event.state.as_str() {
            return Err(FeedbackError::Invalid(format!(
                "triage event {} has an unknown state {raw_state:?}",
                event.seq
            )));
        }
        events.push(event);
    }
    Ok(events)
}

/// The latest verdict on each anomaly: its own rows, and its incident's rows
/// given at or after the anomaly was stored. Columns: `anomaly_id`, `state`,
/// `actor`, `reason`, `decided_at`. Anomalies without a row are open.
pub const ANOMALY_VERDICTS_SQL: &str = "(SELECT anomaly_id, arg_max(state, seq) AS state, \
       arg_max(actor, seq) AS actor, arg_max(reason, seq) AS reason, max(decided_at) AS decided_at \
     FROM (SELECT t.subject_id AS anomaly_id, t.seq, t.state, t.actor, t.reason, t.decided_at \
             FROM triage_events t WHERE t.subject_kind = 'anomaly' \
           UNION ALL \
           SELECT a.id, t.seq, t.state, t.actor, t.reason, t.decided_at FROM anomalies a \
             JOIN triage_events t ON t.subject_kind = 'incident' AND t.subject_id = a.incident_id \
              AND t.decided_at >= a.detected_at) \
     GROUP BY anomaly_id)";

/// `anomalies` with two more columns: `triage_state` (current state, `open`
/// by default) and `triaged_at`. Use as a table: `FROM {ANOMALIES_WITH_TRIAGE_SQL} AS anomalies`.
pub fn anomalies_with_triage_sql() -> String {
    format!(
        "(SELECT a.*, coalesce(v.state, 'open') AS triage_state, v.decided_at AS triaged_at \
          FROM anomalies a LEFT JOIN {ANOMALY_VERDICTS_SQL} v ON v.anomaly_id = a.id)"
    )
}

/// The current state of an incident: its newest verdict, unless an anomaly
/// that alerts joined it after that verdict (then `open`).
pub fn incident_state(connection: &Connection, incident_id: &str) -> Result<TriageState> {
    let state: Option<String> = connection
        .query_row(
            "WITH latest AS (SELECT arg_max(state, seq) AS state, max(decided_at) AS decided_at FROM triage_events \
                WHERE subject_kind = 'incident' AND subject_id = ?) \
             SELECT CASE WHEN latest.state IS NULL THEN NULL \
                    WHEN EXISTS (SELECT 1 FROM anomalies a WHERE a.incident_id = ? AND a.detected_at > latest.decided_at \
                                 AND a.suppressed_by IS NULL) THEN 'open' \
                    ELSE latest.state END FROM latest",
            params![incident_id, incident_id],
            |row| row.get(0),
        )
        .map_err(database("reading the incident's state"))?;
    state.map_or(Ok(TriageState::Open), |state| state.parse())
}

/// The current state of one anomaly.
pub fn anomaly_state(connection: &Connection, anomaly_id: &str) -> Result<TriageState> {
    let state: Option<String> = connection
        .query_row(
            &format!("SELECT state FROM {ANOMALY_VERDICTS_SQL} WHERE anomaly_id = ?"),
            [anomaly_id],
            |row| row.get(0),
        )
        .map(Some)
        .or_else(|error| match error {
            duckdb::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })
        .map_err(database("reading the anomaly's state"))?;
    state.map_or(Ok(TriageState::Open), |state| state.parse())
}

/// An incident as the triage queue shows it: its state and its anomalies
/// with their marks.
#[derive(Debug, Clone, Serialize)]
pub struct QueuedIncident {
    pub id: String,
    pub identity: String,
    pub cluster: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub severity: String,
    pub title: String,
    pub state: TriageState,
    /// Anomalies that alert (not suppressed): an incident with none reached no one.
    pub alerting_anomalies: u64,
    pub suppressed_anomalies: u64,
    pub anomalies: Vec<QueuedAnomaly>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueuedAnomaly {
    pub id: String,
    pub detector: String,
    pub severity: String,
    pub score: f64,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub title: String,
    pub evidence_audit_ids: Vec<String>,
    pub suppressed_by: Option<String>,
    /// Namespaces of the evidence requests (empty string: cluster-scoped),
    /// when the data folder's events can be read: where a suppression made
    /// from a verdict on it can be narrowed to (`--namespace`).
    pub evidence_namespaces: Vec<String>,
    /// Source addresses of the evidence requests (`--source`).
    pub evidence_sources: Vec<String>,
}

/// Incidents active in `[since, until)` (UTC µs), oldest first, with their
/// current state and anomalies.
pub fn incident_queue(
    connection: &Connection,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Vec<QueuedIncident>> {
    let mut statement = connection
        .prepare(
            "SELECT id, identity, cluster, epoch_us(first_seen), epoch_us(last_seen), severity, title FROM incidents \
             WHERE last_seen >= make_timestamp(?) AND first_seen < make_timestamp(?) ORDER BY first_seen, id",
        )
        .map_err(database("listing incidents"))?;
    let incidents = statement
        .query_map(
            params![since.unwrap_or(i64::MIN / 2), until.unwrap_or(i64::MAX / 2)],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                ))
            },
        )
        .map_err(database("listing incidents"))?
        .collect::<duckdb::Result<Vec<_>>>()
        .map_err(database("listing incidents"))?;
    let mut anomalies_of = connection
        .prepare(
            "SELECT id, detector, severity, score, epoch_us(window_start), epoch_us(window_end), title, \
                    to_json(evidence_audit_ids)::VARCHAR, suppressed_by FROM anomalies WHERE incident_id = ? \
             ORDER BY window_start, id",
        )
        .map_err(database("listing incident anomalies"))?;
    let mut queue = Vec::with_capacity(incidents.len());
    for (id, identity, cluster, first_seen, last_seen, severity, title) in incidents {
        let mut anomalies = anomalies_of
            .query_map([&id], |row| {
                let evidence: Option<String> = row.get(7)?;
                Ok(QueuedAnomaly {
                    id: row.get(0)?,
                    detector: row.get(1)?,
                    severity: row.get(2)?,
                    score: row.get(3)?,
                    window_start: micros_to_time(row.get(4)?),
                    window_end: micros_to_time(row.get(5)?),
                    title: row.get(6)?,
                    evidence_audit_ids: evidence
                        .and_then(|text| serde_json::from_str(&text).ok())
                        .unwrap_or_default(),
                    suppressed_by: row.get(8)?,
                    evidence_namespaces: Vec::new(),
                    evidence_sources: Vec::new(),
                })
            })
            .map_err(database("listing incident anomalies"))?
            .collect::<duckdb::Result<Vec<_>>>()
            .map_err(database("listing incident anomalies"))?;
        for anomaly in &mut anomalies {
            let scope = super::suppression::evidence_scope_of(
                connection,
                &anomaly.evidence_audit_ids,
                anomaly.window_start.timestamp_micros(),
                anomaly.window_end.timestamp_micros(),
            )
            .unwrap_or_default();
            let namespaces: std::collections::BTreeSet<String> = scope
                .iter()
                .map(|(namespace, _)| namespace.clone().unwrap_or_default())
                .collect();
            let sources: std::collections::BTreeSet<String> = scope
                .iter()
                .filter_map(|(_, source)| source.clone())
                .collect();
            anomaly.evidence_namespaces = namespaces.into_iter().collect();
            anomaly.evidence_sources = sources.into_iter().collect();
        }
        let suppressed = anomalies
            .iter()
            .filter(|anomaly| anomaly.suppressed_by.is_some())
            .count() as u64;
        queue.push(QueuedIncident {
            state: incident_state(connection, &id)?,
            alerting_anomalies: anomalies.len() as u64 - suppressed,
            suppressed_anomalies: suppressed,
            id,
            identity,
            cluster,
            first_seen: micros_to_time(first_seen),
            last_seen: micros_to_time(last_seen),
            severity,
            title,
            anomalies,
        });
    }
    Ok(queue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Anomaly, AnomalyKind, AnomalyStore, Severity, datetime_from_micros};
    use crate::feedback::{FeedbackConfig, ManualClock};
    use std::sync::Arc;

    pub(crate) fn anomaly(
        identity: &str,
        minute: i64,
        severity: Severity,
        detector: &str,
    ) -> Anomaly {
        let start = 1_800_000_000_000_000 + minute * 60_000_000;
        Anomaly {
            id: crate::detect::stable_anomaly_id("default", detector, identity, start, None),
            detector: detector.into(),
            kind: AnomalyKind::Rule,
            identity: identity.into(),
            cluster: "default".into(),
            window_start: datetime_from_micros(start),
            window_end: datetime_from_micros(start + 1_000_000),
            severity,
            score: severity.rule_score(),
            title: format!("{detector} by {identity}"),
            reasons: vec![],
            evidence_audit_ids: vec![format!("audit-{identity}-{minute}")],
        }
    }

    fn verdict(subject: &str, state: TriageState, reason: Option<&str>) -> Verdict {
        Verdict {
            subject_id: subject.into(),
            state,
            reason: reason.map(str::to_string),
            actor: "alice".into(),
            suppress_for: None,
            suppress_namespace: None,
            suppress_source: None,
        }
    }

    #[test]
    fn states_parse_with_their_aliases() {
        assert_eq!(
            "benign".parse::<TriageState>().expect("alias"),
            TriageState::ResolvedBenign
        );
        assert_eq!(
            "resolved-true-positive"
                .parse::<TriageState>()
                .expect("dashes"),
            TriageState::ResolvedTruePositive
        );
        assert!("closed".parse::<TriageState>().is_err());
    }

    #[test]
    fn verdicts_build_a_history_and_the_current_state_is_derived() {
        let connection = Connection::open_in_memory().expect("duckdb");
        let clock = ManualClock::new(datetime_from_micros(1_800_000_000_000_000));
        let store = AnomalyStore::open(&connection, 30 * 60_000_000)
            .expect("store")
            .with_clock(Arc::new(clock.clone()));
        let first = anomaly("ci", 0, Severity::Low, "workload.exec");
        let second = anomaly("ci", 5, Severity::Medium, "secrets.enumeration");
        store
            .record(&[first.clone(), second.clone()])
            .expect("record");
        let incident = store.incidents(None, None, 10).expect("incidents")[0]
            .id
            .clone();
        let policy = ThresholdPolicy::from_config(&FeedbackConfig::default());

        clock.advance(chrono::Duration::minutes(10));
        let error = record_verdict(
            &connection,
            &verdict(&incident, TriageState::ResolvedBenign, Some("  ")),
            &policy,
            &clock,
        )
        .expect_err("benign needs a reason");
        assert!(error.to_string().contains("reason"), "{error}");
        assert!(matches!(
            record_verdict(
                &connection,
                &verdict("nope", TriageState::Acknowledged, None),
                &policy,
                &clock
            ),
            Err(FeedbackError::NotFound(_))
        ));

        record_verdict(
            &connection,
            &verdict(&incident, TriageState::Acknowledged, None),
            &policy,
            &clock,
        )
        .expect("ack");
        clock.advance(chrono::Duration::minutes(10));
        let outcome = record_verdict(
            &connection,
            &verdict(
                &incident,
                TriageState::ResolvedBenign,
                Some("CI runner debugging"),
            ),
            &policy,
            &clock,
        )
        .expect("benign");
        assert_eq!(outcome.identity, "ci");
        assert_eq!(outcome.event.subject_kind, SubjectKind::Incident);
        assert!(
            outcome.suppressions.is_empty(),
            "no --suppress, no suppression"
        );
        assert_eq!(
            incident_state(&connection, &incident).expect("state"),
            TriageState::ResolvedBenign
        );
        assert_eq!(
            anomaly_state(&connection, &first.id).expect("state"),
            TriageState::ResolvedBenign
        );
        // One anomaly re-judged on its own: the newest verdict wins.
        clock.advance(chrono::Duration::minutes(1));
        record_verdict(
            &connection,
            &verdict(&second.id, TriageState::ResolvedTruePositive, None),
            &policy,
            &clock,
        )
        .expect("tp");
        assert_eq!(
            anomaly_state(&connection, &second.id).expect("state"),
            TriageState::ResolvedTruePositive
        );
        let history = history(&connection, &second.id).expect("history");
        assert_eq!(
            history.iter().map(|event| event.state).collect::<Vec<_>>(),
            vec![
                TriageState::Acknowledged,
                TriageState::ResolvedBenign,
                TriageState::ResolvedTruePositive
            ],
            "the incident's verdicts and the anomaly's own, never overwritten"
        );
        // New activity after the verdict re-opens the incident, not the old anomalies.
        clock.advance(chrono::Duration::minutes(1));
        let later = anomaly("ci", 20, Severity::Low, "auth.forbidden_burst");
        store.record(std::slice::from_ref(&later)).expect("record");
        assert_eq!(
            incident_state(&connection, &incident).expect("state"),
            TriageState::Open
        );
        assert_eq!(
            anomaly_state(&connection, &later.id).expect("state"),
            TriageState::Open
        );
        assert_eq!(
            anomaly_state(&connection, &first.id).expect("state"),
            TriageState::ResolvedBenign
        );
        let rows: i64 = connection
            .query_row("SELECT count(*) FROM triage_events", [], |row| row.get(0))
            .expect("count");
        assert_eq!(rows, 3);
    }

    #[test]
    fn a_suppression_is_only_made_from_a_benign_verdict() {
        let mut asked = verdict("x", TriageState::Acknowledged, None);
        asked.suppress_for = Some(chrono::Duration::days(30));
        assert!(check(&asked).is_err());
        let mut narrowed = verdict("x", TriageState::ResolvedBenign, Some("r"));
        narrowed.suppress_namespace = Some("ci".into());
        assert!(check(&narrowed).is_err(), "a pattern without --suppress");
        narrowed.suppress_for = Some(chrono::Duration::days(30));
        assert!(check(&narrowed).is_ok());
    }
}

//! Learning from verdicts: thresholds that move, and the windows model
//! training must and must not learn from.
//!
//! **Thresholds.** Every detector has a minimum score per identity, 0 (rules),
//! the novelty alert threshold, or 1.0× the model's own limit to begin with.
//! An anomaly scoring below the minimum in force is stored and counted, and
//! marked `suppressed_by = <change id>` instead of alerting. After
//! `benign_verdicts_per_step` benign verdicts on anomalies that still alert,
//! the minimum for that (detector, identity) rises just above the highest
//! benign score (rules: to the next severity), and detector-wide once the
//! benign verdicts span `min_identities_for_detector` identities. Two limits:
//!
//! * a **bound**: rules never go above `rule_bound` (medium by default: a
//!   high or critical rule hit always alerts), novelty above `novelty_bound`,
//!   a model above its spec's `[feedback] score_bound`;
//! * a **guard**: a change is held back if, applied to history, it would leave
//!   any incident resolved as a true positive with nothing that alerts. Verdicts
//!   can make detection quieter, never blind to an attack a person confirmed.
//!
//! Every change is a row in `threshold_changes` with its reason ("threshold of
//! workload.exec for every identity raised from any to medium (0.50) after 5
//! benign verdicts on 5 identities"), shown in the nightly report.
//!
//! **Training.** Windows of anomalies resolved as true positives are passed to
//! model training as excluded windows ([`training_exclusions`]): an attack
//! never becomes an identity's "usual". The same windows are unlearned by the
//! novelty layer ([`unlearn_confirmed_attacks`]): their first-seen
//! namespaces, addresses, user agents and actions are forgotten, at the
//! daemon's start after the baseline is rebuilt from history and within a
//! minute of a verdict while it runs. Windows resolved benign stay in the
//! training data and in the novelty baseline (all stored history is, unless
//! excluded), so what a person called normal is learned as normal.

use super::config::{FeedbackConfig, ThresholdConfig};
use super::{Clock, FeedbackError, Result, database, micros_to_time, stable_id};
use crate::detect::Severity;
use chrono::{DateTime, Utc};
use duckdb::{Connection, params};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Identity of a detector-wide threshold.
pub const EVERY_IDENTITY: &str = "*";

/// One automatic threshold change, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdChange {
    pub id: String,
    pub detector: String,
    /// An identity, or `*` for every identity.
    pub identity: String,
    pub old_min_score: f64,
    pub new_min_score: f64,
    pub bound: f64,
    pub benign_verdicts: u64,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// `[feedback]` bounds of one model spec (`models/<name>.toml`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelBounds {
    /// Highest minimum score, as a multiple of the model's own limit.
    pub score_bound: f64,
    /// How far above the highest benign score a threshold moves.
    pub score_step: f64,
}

impl Default for ModelBounds {
    fn default() -> ModelBounds {
        ModelBounds {
            score_bound: 1.5,
            score_step: 0.1,
        }
    }
}

/// Which layer a detector belongs to, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layer {
    Rule,
    Novelty,
    Model(String),
}

fn layer(detector: &str) -> Layer {
    if let Some(model) = detector.strip_prefix("model.") {
        Layer::Model(model.to_string())
    } else if detector.starts_with("novelty.") {
        Layer::Novelty
    } else {
        Layer::Rule
    }
}

/// How far thresholds may move, from `[feedback.thresholds]` and the model specs.
#[derive(Debug, Clone, Default)]
pub struct ThresholdPolicy {
    pub config: ThresholdConfig,
    pub models: BTreeMap<String, ModelBounds>,
}

/// `[feedback]` of a model spec file: read here without the full spec check
/// (which needs the feature query), so triage works without a DuckDB session.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct SpecHead {
    #[serde(default)]
    name: String,
    #[serde(default)]
    feedback: Option<crate::model::spec::SpecFeedback>,
}

impl ThresholdPolicy {
    /// Bounds from the config; every model gets the default bounds.
    pub fn from_config(config: &FeedbackConfig) -> ThresholdPolicy {
        ThresholdPolicy {
            config: config.thresholds.clone(),
            models: BTreeMap::new(),
        }
    }

    /// Bounds from the config and the `[feedback]` tables of the model specs
    /// in `models_dir` (the built-in specs when the folder does not exist).
    pub fn load(config: &FeedbackConfig, models_dir: &Path) -> Result<ThresholdPolicy> {
        let mut policy = ThresholdPolicy::from_config(config);
        let mut texts: Vec<(std::path::PathBuf, String)> = Vec::new();
        if models_dir.is_dir() {
            let pattern = models_dir.join("*.toml");
            let paths =
                glob::glob(&pattern.to_string_lossy()).map_err(|error| FeedbackError::File {
                    path: models_dir.to_path_buf(),
                    message: error.to_string(),
                })?;
            for path in paths.flatten() {
                let text = std::fs::read_to_string(&path).map_err(|error| FeedbackError::File {
                    path: path.clone(),
                    message: error.to_string(),
                })?;
                texts.push((path, text));
            }
        } else {
            for (path, text) in crate::model::spec::BUILTIN_SPECS {
                texts.push((path.into(), text.to_string()));
            }
        }
        for (path, text) in texts {
            let head: SpecHead = toml::from_str::<toml::Value>(&text)
                .and_then(|value| value.try_into())
                .map_err(|error| FeedbackError::File {
                    path: path.clone(),
                    message: error.to_string(),
                })?;
            if head.name.is_empty() {
                continue;
            }
            let bounds = head
                .feedback
                .map(|feedback| ModelBounds {
                    score_bound: feedback.score_bound,
                    score_step: feedback.score_step,
                })
                .unwrap_or_default();
            policy.models.insert(head.name, bounds);
        }
        Ok(policy)
    }

    fn model_bounds(&self, model: &str) -> ModelBounds {
        self.models.get(model).copied().unwrap_or_default()
    }

    /// The threshold a detector starts at (what it already applies itself).
    pub fn floor(&self, detector: &str) -> f64 {
        match layer(detector) {
            Layer::Rule => 0.0,
            Layer::Novelty => crate::detect::NoveltyOptions::default().alert_threshold,
            Layer::Model(_) => 1.0,
        }
    }

    /// The highest a detector's threshold may go.
    pub fn bound(&self, detector: &str) -> f64 {
        match layer(detector) {
            Layer::Rule => self.config.rule_bound,
            Layer::Novelty => self.config.novelty_bound,
            Layer::Model(model) => self.model_bounds(&model).score_bound,
        }
    }

    /// The threshold that silences scores up to `highest_benign`, before the bound.
    fn step_above(&self, detector: &str, highest_benign: f64) -> f64 {
        match layer(detector) {
            Layer::Rule => Severity::ALL
                .into_iter()
                .map(Severity::rule_score)
                .find(|score| *score > highest_benign + 1e-9)
                .unwrap_or(highest_benign + 0.1),
            Layer::Novelty => highest_benign + self.config.novelty_step,
            Layer::Model(model) => highest_benign + self.model_bounds(&model).score_step,
        }
    }

    /// A threshold in words: rules by severity, models as a multiple of their limit.
    pub fn describe(&self, detector: &str, score: f64) -> String {
        match layer(detector) {
            Layer::Rule => {
                if score <= 0.0 {
                    "any".to_string()
                } else {
                    let severity = Severity::ALL
                        .into_iter()
                        .find(|severity| severity.rule_score() >= score - 1e-9)
                        .unwrap_or(Severity::Critical);
                    format!("{severity} ({score:.2})")
                }
            }
            Layer::Novelty => format!("{score:.2}"),
            Layer::Model(_) => format!("{score:.2}× the model limit"),
        }
    }
}

/// The minimum scores in force: (detector, identity or `*`) → (score, change id).
#[derive(Debug, Clone, Default)]
pub struct Thresholds {
    entries: HashMap<(String, String), (f64, String)>,
}

impl Thresholds {
    /// The minimum score in force for an anomaly of `detector` by `identity`,
    /// with the change that set it (`None`: nothing learnt, everything alerts).
    pub fn effective(&self, detector: &str, identity: &str) -> Option<(f64, &str)> {
        let own = self
            .entries
            .get(&(detector.to_string(), identity.to_string()));
        let everyone = self
            .entries
            .get(&(detector.to_string(), EVERY_IDENTITY.to_string()));
        match (own, everyone) {
            (Some(a), Some(b)) => Some(if a.0 >= b.0 { (a.0, &a.1) } else { (b.0, &b.1) }),
            (Some(a), None) | (None, Some(a)) => Some((a.0, &a.1)),
            (None, None) => None,
        }
        .map(|(score, id)| (score, id.as_str()))
    }

    fn get(&self, detector: &str, identity: &str) -> Option<f64> {
        self.entries
            .get(&(detector.to_string(), identity.to_string()))
            .map(|(score, _)| *score)
    }

    fn set(&mut self, detector: &str, identity: &str, score: f64, id: &str) {
        self.entries.insert(
            (detector.to_string(), identity.to_string()),
            (score, id.to_string()),
        );
    }

    /// Whether an anomaly still alerts (scores at or above its minimum).
    pub fn alerts(&self, detector: &str, identity: &str, score: f64) -> bool {
        self.effective(detector, identity)
            .is_none_or(|(minimum, _)| score >= minimum - 1e-12)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The thresholds in force: the newest change per (detector, identity).
pub fn current_thresholds(connection: &Connection) -> Result<Thresholds> {
    let mut statement = connection
        .prepare(
            "SELECT detector, identity, arg_max(new_min_score, changed_at), arg_max(id, changed_at) FROM threshold_changes GROUP BY ALL",
        )
        .map_err(database("reading thresholds"))?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, f64>(2)?,
                row.get::<_, String>(3)?,
            ))
        })
        .map_err(database("reading thresholds"))?;
    let mut thresholds = Thresholds::default();
    for row in rows {
        let (detector, identity, score, id) = row.map_err(database("reading thresholds"))?;
        thresholds.set(&detector, &identity, score, &id);
    }
    Ok(thresholds)
}

/// Every threshold change, oldest first.
pub fn threshold_history(connection: &Connection) -> Result<Vec<ThresholdChange>> {
    let mut statement = connection
        .prepare(
            "SELECT id, detector, identity, old_min_score, new_min_score, bound, benign_verdicts, reason, epoch_us(changed_at) \
             FROM threshold_changes ORDER BY changed_at, id",
        )
        .map_err(database("reading threshold changes"))?;
    let rows = statement
        .query_map([], |row| {
            Ok(ThresholdChange {
                id: row.get(0)?,
                detector: row.get(1)?,
                identity: row.get(2)?,
                old_min_score: row.get(3)?,
                new_min_score: row.get(4)?,
                bound: row.get(5)?,
                benign_verdicts: row.get::<_, i64>(6)?.max(0) as u64,
                reason: row.get(7)?,
                at: micros_to_time(row.get(8)?),
            })
        })
        .map_err(database("reading threshold changes"))?;
    rows.collect::<duckdb::Result<Vec<_>>>()
        .map_err(database("reading threshold changes"))
}

/// One stored anomaly, as learning sees it.
#[derive(Debug, Clone)]
struct Judged {
    /// Its incident, or itself when it has none: the unit a person confirmed.
    unit: String,
    detector: String,
    identity: String,
    score: f64,
    /// Hidden by a suppression (not by a threshold, which learning recomputes).
    suppressed: bool,
    state: String,
}

fn judged_anomalies(connection: &Connection) -> Result<Vec<Judged>> {
    let sql = format!(
        "SELECT coalesce(a.incident_id, a.id), a.detector, a.identity, a.score, \
                coalesce(starts_with(a.suppressed_by, 'sup-'), false), coalesce(v.state, 'open') \
         FROM anomalies a LEFT JOIN {} v ON v.anomaly_id = a.id \
         WHERE v.state IN ('resolved_benign', 'resolved_true_positive') \
            OR coalesce(a.incident_id, a.id) IN ( \
                SELECT coalesce(b.incident_id, b.id) FROM anomalies b JOIN {} w ON w.anomaly_id = b.id \
                WHERE w.state = 'resolved_true_positive')",
        super::triage::ANOMALY_VERDICTS_SQL,
        super::triage::ANOMALY_VERDICTS_SQL
    );
    let mut statement = connection
        .prepare(&sql)
        .map_err(database("reading judged anomalies"))?;
    let rows = statement
        .query_map([], |row| {
            Ok(Judged {
                unit: row.get(0)?,
                detector: row.get(1)?,
                identity: row.get(2)?,
                score: row.get(3)?,
                suppressed: row.get(4)?,
                state: row.get(5)?,
            })
        })
        .map_err(database("reading judged anomalies"))?;
    rows.collect::<duckdb::Result<Vec<_>>>()
        .map_err(database("reading judged anomalies"))
}

/// What one round of adaptation did.
#[derive(Debug, Clone, Default)]
pub struct Adaptation {
    pub changes: Vec<ThresholdChange>,
    pub held_back: Vec<String>,
}

/// The confirmed attacks a threshold set would leave with nothing alerting.
fn blinded_units(judged: &[Judged], thresholds: &Thresholds) -> Vec<String> {
    let confirmed: BTreeSet<&str> = judged
        .iter()
        .filter(|anomaly| anomaly.state == "resolved_true_positive")
        .map(|anomaly| anomaly.unit.as_str())
        .collect();
    confirmed
        .into_iter()
        .filter(|unit| {
            !judged.iter().any(|anomaly| {
                anomaly.unit == *unit
                    && !anomaly.suppressed
                    && thresholds.alerts(&anomaly.detector, &anomaly.identity, anomaly.score)
            })
        })
        .map(str::to_string)
        .collect()
}

/// Moves the thresholds the verdicts now justify (see the module doc) and
/// records each change. Idempotent: with no new verdicts it changes nothing.
pub fn adapt(
    connection: &Connection,
    policy: &ThresholdPolicy,
    clock: &dyn Clock,
) -> Result<Adaptation> {
    let mut outcome = Adaptation::default();
    if !policy.config.enabled {
        return Ok(outcome);
    }
    let judged = judged_anomalies(connection)?;
    let mut thresholds = current_thresholds(connection)?;
    let now = clock.now();
    let per_step = policy.config.benign_verdicts_per_step.max(1) as usize;
    let min_identities = policy.config.min_identities_for_detector.max(1) as usize;
    // Detector-wide first, then per identity with what is left alerting.
    for scope_everyone in [true, false] {
        let mut groups: BTreeMap<(String, String), Vec<&Judged>> = BTreeMap::new();
        for anomaly in judged.iter().filter(|anomaly| {
            anomaly.state == "resolved_benign"
                && !anomaly.suppressed
                && thresholds.alerts(&anomaly.detector, &anomaly.identity, anomaly.score)
        }) {
            let identity = if scope_everyone {
                EVERY_IDENTITY.to_string()
            } else {
                anomaly.identity.clone()
            };
            groups
                .entry((anomaly.detector.clone(), identity))
                .or_default()
                .push(anomaly);
        }
        for ((detector, identity), benign) in groups {
            let identities: BTreeSet<&str> = benign
                .iter()
                .map(|anomaly| anomaly.identity.as_str())
                .collect();
            if benign.len() < per_step || (scope_everyone && identities.len() < min_identities) {
                continue;
            }
            let highest = benign
                .iter()
                .map(|anomaly| anomaly.score)
                .fold(f64::MIN, f64::max);
            let bound = policy.bound(&detector);
            let floor = policy.floor(&detector);
            let old = thresholds.get(&detector, &identity).unwrap_or(floor);
            let new = policy.step_above(&detector, highest).min(bound);
            let who = if scope_everyone {
                "every identity".to_string()
            } else {
                identity.clone()
            };
            if new <= old + 1e-9 {
                continue;
            }
            let silenced = benign.iter().filter(|anomaly| anomaly.score < new).count();
            if silenced == 0 {
                outcome.held_back.push(format!(
                    "threshold of {detector} for {who} stays at {}: its bound {} is below the benign scores",
                    policy.describe(&detector, old),
                    policy.describe(&detector, bound)
                ));
                continue;
            }
            let mut tentative = thresholds.clone();
            tentative.set(&detector, &identity, new, "tentative");
            let blinded = blinded_units(&judged, &tentative);
            if !blinded.is_empty() {
                outcome.held_back.push(format!(
                    "threshold of {detector} for {who} not raised to {}: it would leave confirmed incident(s) {} with nothing alerting",
                    policy.describe(&detector, new),
                    blinded.join(", ")
                ));
                continue;
            }
            let verdicts = benign.len() as u64;
            let reason = if scope_everyone {
                format!(
                    "threshold of {detector} for every identity raised from {} to {} after {verdicts} benign verdicts on {} identities",
                    policy.describe(&detector, old),
                    policy.describe(&detector, new),
                    identities.len()
                )
            } else {
                format!(
                    "threshold of {detector} for {identity} raised from {} to {} after {verdicts} benign verdicts",
                    policy.describe(&detector, old),
                    policy.describe(&detector, new)
                )
            };
            let at = now;
            let id = stable_id(
                "thr",
                &[
                    &detector,
                    &identity,
                    &at.timestamp_micros().to_string(),
                    &format!("{new:.6}"),
                ],
            );
            connection
                .execute(
                    "INSERT INTO threshold_changes (id, detector, identity, old_min_score, new_min_score, bound, \
                     benign_verdicts, reason, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, make_timestamp(?))",
                    params![
                        id,
                        detector,
                        identity,
                        old,
                        new,
                        bound,
                        verdicts as i64,
                        reason,
                        at.timestamp_micros()
                    ],
                )
                .map_err(database(format!("recording threshold change {id}")))?;
            thresholds.set(&detector, &identity, new, &id);
            outcome.changes.push(ThresholdChange {
                id,
                detector,
                identity,
                old_min_score: old,
                new_min_score: new,
                bound,
                benign_verdicts: verdicts,
                reason,
                at,
            });
        }
    }
    Ok(outcome)
}

/// A window a person resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictWindow {
    pub cluster: String,
    pub identity: String,
    pub detector: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub true_positive: bool,
}

/// The windows of every anomaly resolved as benign or as a true positive.
pub fn verdict_windows(connection: &Connection) -> Result<Vec<VerdictWindow>> {
    let sql = format!(
        "SELECT a.cluster, a.identity, a.detector, epoch_us(a.window_start), epoch_us(a.window_end), \
                v.state = 'resolved_true_positive' \
         FROM anomalies a JOIN {} v ON v.anomaly_id = a.id \
         WHERE v.state IN ('resolved_benign', 'resolved_true_positive') ORDER BY a.window_start, a.id",
        super::triage::ANOMALY_VERDICTS_SQL
    );
    let mut statement = connection
        .prepare(&sql)
        .map_err(database("reading verdict windows"))?;
    let rows = statement
        .query_map([], |row| {
            Ok(VerdictWindow {
                cluster: row.get(0)?,
                identity: row.get(1)?,
                detector: row.get(2)?,
                start: micros_to_time(row.get(3)?),
                end: micros_to_time(row.get(4)?),
                true_positive: row.get(5)?,
            })
        })
        .map_err(database("reading verdict windows"))?;
    rows.collect::<duckdb::Result<Vec<_>>>()
        .map_err(database("reading verdict windows"))
}

/// The windows of anomalies resolved as true positives, each widened to at
/// least one minute. A catalog without the anomaly or triage tables has none.
pub fn confirmed_attack_windows(connection: &Connection) -> Result<Vec<VerdictWindow>> {
    for table in ["anomalies", "triage_events"] {
        let present: i64 = connection
            .query_row(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_catalog = current_database() AND table_schema = current_schema() AND table_name = ?",
                [table],
                |row| row.get(0),
            )
            .map_err(database("looking for the triage tables"))?;
        if present == 0 {
            return Ok(Vec::new());
        }
    }
    Ok(verdict_windows(connection)?
        .into_iter()
        .filter(|window| window.true_positive)
        .map(|window| VerdictWindow {
            end: window.end.max(window.start + chrono::Duration::minutes(1)),
            ..window
        })
        .collect())
}

/// Windows model training must not learn as normal: those of anomalies
/// resolved as true positives (widened to at least one minute).
pub fn training_exclusions(connection: &Connection) -> Result<Vec<crate::model::ExcludedWindow>> {
    Ok(confirmed_attack_windows(connection)?
        .into_iter()
        .map(|window| crate::model::ExcludedWindow {
            cluster: Some(window.cluster),
            identity: window.identity,
            start: window.start,
            end: window.end,
        })
        .collect())
}

/// How far before a confirmed attack's window the novelty layer also
/// forgets first-seen values: the reconnaissance request that brought the new
/// address or user agent often comes shortly before the one that alerted.
pub const UNLEARN_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

/// The windows the novelty layer must not learn: those resolved as true
/// positives, from [`UNLEARN_MARGIN`] before each. The daemon rebuilds its
/// baseline without their events at start.
pub fn novelty_exclusions(connection: &Connection) -> Result<Vec<crate::model::ExcludedWindow>> {
    Ok(confirmed_attack_windows(connection)?
        .into_iter()
        .map(|window| crate::model::ExcludedWindow {
            cluster: Some(window.cluster),
            identity: window.identity,
            start: window.start - UNLEARN_MARGIN,
            end: window.end,
        })
        .collect())
}

/// Makes a running novelty layer forget what confirmed attacks showed for
/// the first time ([`crate::detect::NoveltyIndex::unlearn_window`] over each
/// of [`novelty_exclusions`]), so an attacker's namespace, address or action
/// is never the identity's usual and a rule hit is never silenced as a habit
/// because of it. Windows resolved benign need nothing: they are stored
/// history like any other and stay in the baseline. `applied` holds the
/// windows already applied; a later call applies only new verdicts. Returns
/// how many values were forgotten.
pub fn unlearn_confirmed_attacks(
    connection: &Connection,
    detector: &mut crate::detect::LiveDetector,
    applied: &mut BTreeSet<(String, String, i64, i64)>,
) -> Result<usize> {
    let mut forgotten = 0;
    for window in novelty_exclusions(connection)? {
        let cluster = window.cluster.unwrap_or_default();
        let start = window.start.timestamp_micros();
        let end = window.end.timestamp_micros();
        if !applied.insert((cluster.clone(), window.identity.clone(), start, end)) {
            continue;
        }
        forgotten += detector.unlearn_window(&cluster, &window.identity, start, end);
    }
    Ok(forgotten)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{AnomalyStore, Severity, datetime_from_micros};
    use crate::feedback::triage::{TriageState, Verdict, record_verdict};
    use crate::feedback::{FeedbackConfig, ManualClock};
    use std::sync::Arc;

    fn anomaly(
        identity: &str,
        minute: i64,
        severity: Severity,
        detector: &str,
    ) -> crate::detect::Anomaly {
        let start = 1_800_000_000_000_000 + minute * 60_000_000;
        crate::detect::Anomaly {
            id: crate::detect::stable_anomaly_id("default", detector, identity, start, None),
            detector: detector.into(),
            kind: crate::detect::AnomalyKind::Rule,
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

    fn judge(
        connection: &Connection,
        clock: &ManualClock,
        subject: &str,
        state: TriageState,
    ) -> crate::feedback::TriageOutcome {
        clock.advance(chrono::Duration::seconds(1));
        record_verdict(
            connection,
            &Verdict {
                subject_id: subject.into(),
                state,
                reason: Some("analyst says so".into()),
                actor: "analyst".into(),
                suppress_for: None,
                suppress_namespace: None,
                suppress_source: None,
            },
            &ThresholdPolicy::from_config(&FeedbackConfig::default()),
            clock,
        )
        .expect("verdict")
    }

    #[test]
    fn benign_verdicts_raise_a_rule_threshold_to_its_bound_and_the_change_is_recorded() {
        let connection = Connection::open_in_memory().expect("duckdb");
        let clock = ManualClock::new(datetime_from_micros(1_800_000_000_000_000));
        let store = AnomalyStore::open(&connection, 30 * 60_000_000)
            .expect("store")
            .with_clock(Arc::new(clock.clone()));
        // Five people exec into their pods (low), hours apart: five incidents.
        let people = ["a@x", "b@x", "c@x", "d@x", "e@x"];
        let benign: Vec<_> = people
            .iter()
            .enumerate()
            .map(|(index, person)| {
                anomaly(person, index as i64 * 120, Severity::Low, "workload.exec")
            })
            .collect();
        store.record(&benign).expect("record");
        let incidents = store.incidents(None, None, 100).expect("incidents");
        assert_eq!(incidents.len(), 5);
        let mut changes = Vec::new();
        for incident in &incidents {
            changes.extend(
                judge(
                    &connection,
                    &clock,
                    &incident.id,
                    TriageState::ResolvedBenign,
                )
                .threshold_changes,
            );
        }
        assert_eq!(changes.len(), 1, "{changes:?}");
        let change = &changes[0];
        assert_eq!(change.identity, EVERY_IDENTITY);
        assert_eq!(change.new_min_score, Severity::Medium.rule_score());
        assert_eq!(
            change.reason,
            "threshold of workload.exec for every identity raised from any to medium (0.50) after 3 benign verdicts on 3 identities"
        );
        assert_eq!(threshold_history(&connection).expect("history"), changes);
        let thresholds = current_thresholds(&connection).expect("thresholds");
        assert!(!thresholds.alerts("workload.exec", "f@x", Severity::Low.rule_score()));
        assert!(thresholds.alerts("workload.exec", "f@x", Severity::Medium.rule_score()));
        assert!(thresholds.alerts("node.proxy", "f@x", Severity::Low.rule_score()));
        // More benign verdicts on medium hits never pass the bound (medium).
        let medium: Vec<_> = people
            .iter()
            .enumerate()
            .map(|(index, person)| {
                anomaly(
                    person,
                    2000 + index as i64 * 120,
                    Severity::Medium,
                    "workload.exec",
                )
            })
            .collect();
        store.record(&medium).expect("record");
        let later = 1_800_000_000_000_000 + 1999 * 60_000_000;
        for incident in store.incidents(Some(later), None, 100).expect("incidents") {
            let outcome = judge(
                &connection,
                &clock,
                &incident.id,
                TriageState::ResolvedBenign,
            );
            assert!(outcome.threshold_changes.is_empty());
        }
        assert_eq!(threshold_history(&connection).expect("history").len(), 1);
    }

    #[test]
    fn a_change_that_would_hide_a_confirmed_attack_is_held_back() {
        let connection = Connection::open_in_memory().expect("duckdb");
        let clock = ManualClock::new(datetime_from_micros(1_800_000_000_000_000));
        let store = AnomalyStore::open(&connection, 30 * 60_000_000)
            .expect("store")
            .with_clock(Arc::new(clock.clone()));
        // An attack whose only alert was a low exec, confirmed.
        let attack = anomaly("mallory@x", 0, Severity::Low, "workload.exec");
        store.record(std::slice::from_ref(&attack)).expect("record");
        judge(
            &connection,
            &clock,
            &attack.id,
            TriageState::ResolvedTruePositive,
        );
        let people = ["a@x", "b@x", "c@x"];
        let mut held = Vec::new();
        for (index, person) in people.iter().enumerate() {
            let benign = anomaly(
                person,
                100 + index as i64 * 120,
                Severity::Low,
                "workload.exec",
            );
            store.record(std::slice::from_ref(&benign)).expect("record");
            let outcome = judge(&connection, &clock, &benign.id, TriageState::ResolvedBenign);
            assert!(outcome.threshold_changes.is_empty());
            held.extend(outcome.held_back);
        }
        assert!(
            held.iter()
                .any(|note| note.contains("would leave confirmed incident")),
            "{held:?}"
        );
        assert!(
            current_thresholds(&connection)
                .expect("thresholds")
                .is_empty()
        );
        let exclusions = training_exclusions(&connection).expect("exclusions");
        assert_eq!(exclusions.len(), 1);
        assert_eq!(exclusions[0].identity, "mallory@x");
    }

    fn request_event(
        user: &str,
        namespace: &str,
        ip: &str,
        ts: i64,
        id: &str,
    ) -> crate::audit::AuditEvent {
        let time = crate::audit::format_rfc3339_micros(ts);
        let value = serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": id,
            "stage": "ResponseComplete", "requestURI": "/", "verb": "get",
            "user": {"username": user, "groups": ["system:authenticated"]}, "sourceIPs": [ip],
            "userAgent": "kubectl/v1.31.0",
            "objectRef": {"resource": "configmaps", "namespace": namespace, "apiVersion": "v1"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": time, "stageTimestamp": time
        });
        crate::audit::AuditEvent::decode(value.to_string().as_bytes()).expect("valid test event")
    }

    #[test]
    fn confirmed_attacks_are_unlearned_by_the_novelty_layer_once() {
        use crate::detect::novelty::namespace_habit_key;
        let connection = Connection::open_in_memory().expect("duckdb");
        let mut detector =
            crate::detect::LiveDetector::new(crate::detect::DetectorOptions::default());
        let mut applied = BTreeSet::new();
        // No triage tables yet: nothing to unlearn, no error.
        assert_eq!(
            unlearn_confirmed_attacks(&connection, &mut detector, &mut applied).expect("no tables"),
            0
        );
        let clock = ManualClock::new(datetime_from_micros(1_800_000_000_000_000));
        let store = AnomalyStore::open(&connection, 30 * 60_000_000)
            .expect("store")
            .with_clock(Arc::new(clock.clone()));
        // Three days of mallory in `app`, then the attack: kube-system from a new address.
        let attack_start = 1_800_000_000_000_000i64;
        let day = 86_400_000_000i64;
        for index in 0..90i64 {
            let ts = attack_start - 3 * day + (index / 30) * day + (index % 30) * 60_000_000;
            detector.observe(
                &request_event("mallory@x", "app", "10.0.0.1", ts, &format!("h-{index}")),
                "default",
            );
        }
        detector.observe(
            &request_event(
                "mallory@x",
                "kube-system",
                "203.0.113.66",
                attack_start + 10_000_000,
                "attack",
            ),
            "default",
        );
        let later = attack_start + day;
        let habitual = |detector: &mut crate::detect::LiveDetector, namespace: &str| {
            detector.cluster("default").novelty_mut().is_habitual(
                "mallory@x",
                &namespace_habit_key(namespace),
                later,
            )
        };
        assert!(
            habitual(&mut detector, "kube-system"),
            "learned as it was seen"
        );

        // A benign verdict changes nothing; a true-positive one makes the window's first-seen values go.
        let attack = anomaly("mallory@x", 0, Severity::High, "rbac.secret_enumeration");
        let benign = anomaly("mallory@x", 600, Severity::Low, "workload.exec");
        store
            .record(&[attack.clone(), benign.clone()])
            .expect("record");
        judge(&connection, &clock, &benign.id, TriageState::ResolvedBenign);
        assert_eq!(
            unlearn_confirmed_attacks(&connection, &mut detector, &mut applied).expect("unlearn"),
            0
        );
        judge(
            &connection,
            &clock,
            &attack.id,
            TriageState::ResolvedTruePositive,
        );
        let forgotten =
            unlearn_confirmed_attacks(&connection, &mut detector, &mut applied).expect("unlearn");
        assert_eq!(forgotten, 4, "namespace, address, network, exact action");
        assert!(!habitual(&mut detector, "kube-system"));
        assert!(
            habitual(&mut detector, "app"),
            "the history before the window stays"
        );
        // Applied once: the next check has nothing new.
        assert_eq!(
            unlearn_confirmed_attacks(&connection, &mut detector, &mut applied).expect("unlearn"),
            0
        );
    }

    #[test]
    fn per_identity_novelty_thresholds_stop_at_their_bound() {
        let policy = ThresholdPolicy::from_config(&FeedbackConfig::default());
        assert!((policy.step_above("novelty.first_seen", 0.7) - 0.75).abs() < 1e-9);
        assert_eq!(policy.bound("novelty.first_seen"), 0.85);
        assert_eq!(policy.bound("workload.exec"), 0.5);
        assert_eq!(policy.bound("model.humans"), 1.5);
        assert_eq!(policy.step_above("workload.exec", 0.3), 0.5);
        assert_eq!(
            policy.describe("model.humans", 1.3),
            "1.30× the model limit"
        );
        let builtin = ThresholdPolicy::load(&FeedbackConfig::default(), Path::new("/nonexistent"))
            .expect("builtin specs");
        assert!(builtin.models.contains_key("humans") && builtin.models.contains_key("workloads"));
    }
}

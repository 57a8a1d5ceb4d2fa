//! Scoring detection against labeled attacks (DESIGN.md "How detection is scored").
//!
//! A labeled attack is caught when some anomaly names one of its audit IDs in
//! `evidence_audit_ids`, or names the attacking identity with a window that
//! overlaps the attack widened by ±10 minutes. Every anomaly that catches
//! nothing is a false alert; false alerts of one identity in one clock hour
//! are one false incident. Recall is caught attacks over all attacks (per
//! scenario and overall); the alert budget is false incidents per day of the
//! detection range. The labels file is JSON lines, one attack per line, as the
//! simulator writes it.

use super::anomaly::Anomaly;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

const TOLERANCE_MICROS: i64 = 10 * 60_000_000;
const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// One labeled attack.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Label {
    pub scenario: String,
    pub identity: String,
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub audit_ids: Vec<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A label with its times parsed.
#[derive(Debug, Clone)]
struct Attack {
    label: Label,
    start: i64,
    end: i64,
}

/// Why the labels file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Invalid {
        path: String,
        line: usize,
        reason: String,
    },
}

/// Reads a labels file (JSON lines; blank lines ignored).
pub fn read_labels(path: &Path) -> Result<Vec<Label>, LabelError> {
    let text = std::fs::read_to_string(path).map_err(|source| LabelError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut labels = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let label: Label = serde_json::from_str(line).map_err(|error| LabelError::Invalid {
            path: path.display().to_string(),
            line: index + 1,
            reason: error.to_string(),
        })?;
        for (field, value) in [("start", &label.start), ("end", &label.end)] {
            if crate::audit::parse_rfc3339_micros(value).is_none() {
                return Err(LabelError::Invalid {
                    path: path.display().to_string(),
                    line: index + 1,
                    reason: format!("{field} {value:?} is not an RFC 3339 time"),
                });
            }
        }
        labels.push(label);
    }
    Ok(labels)
}

/// Recall of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioScore {
    pub scenario: String,
    pub attacks: usize,
    pub caught: usize,
    pub recall: f64,
    /// Which detectors caught this scenario's attacks, with counts.
    pub caught_by: BTreeMap<String, usize>,
    /// Identities and starts of the attacks that were missed.
    pub missed: Vec<String>,
}

/// One false incident: an identity's false alerts within one hour.
#[derive(Debug, Clone, Serialize)]
pub struct FalseIncident {
    pub identity: String,
    pub hour: String,
    pub detectors: Vec<String>,
    pub titles: Vec<String>,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub since: String,
    pub until: String,
    pub days: f64,
    pub attacks: usize,
    pub caught: usize,
    pub recall: f64,
    pub anomalies: usize,
    pub false_anomalies: usize,
    pub false_incidents: usize,
    pub false_incidents_per_day: f64,
    pub false_incidents_by_detector: BTreeMap<String, usize>,
    pub scenarios: Vec<ScenarioScore>,
    pub false_incident_list: Vec<FalseIncident>,
    /// Labels outside the detection range (not scored).
    pub labels_outside_range: usize,
}

/// Scores `anomalies` against `labels` for the detection range `[since, until)`.
pub fn evaluate(labels: &[Label], anomalies: &[Anomaly], since: i64, until: i64) -> Evaluation {
    let mut attacks = Vec::new();
    let mut outside = 0;
    for label in labels {
        let (Some(start), Some(end)) = (
            crate::audit::parse_rfc3339_micros(&label.start),
            crate::audit::parse_rfc3339_micros(&label.end),
        ) else {
            outside += 1;
            continue;
        };
        if end < since || start >= until {
            outside += 1;
            continue;
        }
        attacks.push(Attack {
            label: label.clone(),
            start,
            end: end.max(start),
        });
    }
    let mut scenarios: BTreeMap<String, ScenarioScore> = BTreeMap::new();
    let mut useful: HashSet<usize> = HashSet::new();
    let mut caught_total = 0;
    for attack in &attacks {
        let ids: HashSet<&str> = attack.label.audit_ids.iter().map(String::as_str).collect();
        let mut catchers: BTreeSet<String> = BTreeSet::new();
        for (index, anomaly) in anomalies.iter().enumerate() {
            let by_evidence = anomaly
                .evidence_audit_ids
                .iter()
                .any(|id| ids.contains(id.as_str()));
            let by_identity = anomaly.identity == attack.label.identity
                && anomaly.window_start_micros() <= attack.end + TOLERANCE_MICROS
                && anomaly
                    .window_end_micros()
                    .max(anomaly.window_start_micros())
                    >= attack.start - TOLERANCE_MICROS;
            if by_evidence || by_identity {
                useful.insert(index);
                catchers.insert(anomaly.detector.clone());
            }
        }
        let score = scenarios
            .entry(attack.label.scenario.clone())
            .or_insert_with(|| ScenarioScore {
                scenario: attack.label.scenario.clone(),
                attacks: 0,
                caught: 0,
                recall: 0.0,
                caught_by: BTreeMap::new(),
                missed: Vec::new(),
            });
        score.attacks += 1;
        if catchers.is_empty() {
            score.missed.push(format!(
                "{} at {}",
                attack.label.identity, attack.label.start
            ));
        } else {
            score.caught += 1;
            caught_total += 1;
            for detector in catchers {
                *score.caught_by.entry(detector).or_default() += 1;
            }
        }
    }
    for score in scenarios.values_mut() {
        score.recall = ratio(score.caught, score.attacks);
    }
    let mut false_groups: BTreeMap<(String, i64), (BTreeSet<String>, BTreeSet<String>)> =
        BTreeMap::new();
    let mut false_anomalies = 0;
    for (index, anomaly) in anomalies.iter().enumerate() {
        if useful.contains(&index) {
            continue;
        }
        false_anomalies += 1;
        let hour = anomaly.window_start_micros().div_euclid(HOUR);
        let entry = false_groups
            .entry((anomaly.identity.clone(), hour))
            .or_default();
        entry.0.insert(anomaly.detector.clone());
        entry.1.insert(anomaly.title.clone());
    }
    let mut by_detector: BTreeMap<String, usize> = BTreeMap::new();
    let false_incident_list: Vec<FalseIncident> = false_groups
        .into_iter()
        .map(|((identity, hour), (detectors, titles))| {
            for detector in &detectors {
                *by_detector.entry(detector.clone()).or_default() += 1;
            }
            FalseIncident {
                identity,
                hour: crate::audit::format_rfc3339_micros(hour * HOUR),
                detectors: detectors.into_iter().collect(),
                titles: titles.into_iter().take(3).collect(),
            }
        })
        .collect();
    let days = ((until - since) as f64 / DAY as f64).max(1.0 / 24.0);
    Evaluation {
        since: crate::audit::format_rfc3339_micros(since),
        until: crate::audit::format_rfc3339_micros(until),
        days,
        attacks: attacks.len(),
        caught: caught_total,
        recall: ratio(caught_total, attacks.len()),
        anomalies: anomalies.len(),
        false_anomalies,
        false_incidents: false_incident_list.len(),
        false_incidents_per_day: false_incident_list.len() as f64 / days,
        false_incidents_by_detector: by_detector,
        scenarios: scenarios.into_values().collect(),
        false_incident_list,
        labels_outside_range: outside,
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// The evaluation as a plain-text table.
pub fn render_table(evaluation: &Evaluation) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "range {} .. {} ({:.2} days)\n\n{:<40} {:>7} {:>7} {:>7}  caught by\n",
        evaluation.since,
        evaluation.until,
        evaluation.days,
        "scenario",
        "attacks",
        "caught",
        "recall"
    ));
    for score in &evaluation.scenarios {
        let by: Vec<String> = score
            .caught_by
            .iter()
            .map(|(detector, count)| format!("{detector}×{count}"))
            .collect();
        out.push_str(&format!(
            "{:<40} {:>7} {:>7} {:>7.2}  {}\n",
            score.scenario,
            score.attacks,
            score.caught,
            score.recall,
            by.join(" ")
        ));
        for missed in &score.missed {
            out.push_str(&format!("    missed: {missed}\n"));
        }
    }
    out.push_str(&format!(
        "{:<40} {:>7} {:>7} {:>7.2}\n\nanomalies {} (false {}), false incidents {} = {:.2} per day\n",
        "TOTAL", evaluation.attacks, evaluation.caught, evaluation.recall, evaluation.anomalies, evaluation.false_anomalies,
        evaluation.false_incidents, evaluation.false_incidents_per_day
    ));
    if !evaluation.false_incidents_by_detector.is_empty() {
        out.push_str("false incidents by detector:");
        for (detector, count) in &evaluation.false_incidents_by_detector {
            out.push_str(&format!(" {detector}={count}"));
        }
        out.push('\n');
    }
    if evaluation.labels_outside_range > 0 {
        out.push_str(&format!(
            "{} labels outside the range were not scored\n",
            evaluation.labels_outside_range
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::anomaly::{AnomalyKind, Severity, datetime_from_micros};

    const T0: i64 = 1_800_000_000_000_000;

    fn label(
        scenario: &str,
        identity: &str,
        start_minute: i64,
        end_minute: i64,
        ids: &[&str],
    ) -> Label {
        Label {
            scenario: scenario.into(),
            identity: identity.into(),
            start: crate::audit::format_rfc3339_micros(T0 + start_minute * 60_000_000),
            end: crate::audit::format_rfc3339_micros(T0 + end_minute * 60_000_000),
            audit_ids: ids.iter().map(|id| id.to_string()).collect(),
            severity: None,
            description: None,
        }
    }

    fn anomaly(identity: &str, minute: i64, evidence: &[&str]) -> Anomaly {
        Anomaly {
            id: format!("{identity}-{minute}"),
            detector: "test.rule".into(),
            kind: AnomalyKind::Rule,
            identity: identity.into(),
            cluster: "default".into(),
            window_start: datetime_from_micros(T0 + minute * 60_000_000),
            window_end: datetime_from_micros(T0 + minute * 60_000_000 + 1),
            severity: Severity::High,
            score: 0.8,
            title: "t".into(),
            reasons: vec![],
            evidence_audit_ids: evidence.iter().map(|id| id.to_string()).collect(),
        }
    }

    #[test]
    fn scores_by_evidence_identity_window_and_budget() {
        let labels = vec![
            label("wildcard", "mallory", 0, 5, &["a1", "a2"]),
            label("wildcard", "eve", 100, 110, &["b1"]),
            label("night", "trudy", 200, 220, &["c1"]),
            label("late", "oscar", 10_000, 10_010, &["z"]),
        ];
        let anomalies = vec![
            anomaly("someone-else", 3, &["a2"]), // catches by evidence
            anomaly("trudy", 229, &[]),          // catches by identity within +10 min
            anomaly("eve", 125, &[]),            // 15 min after: too late, false
            anomaly("eve", 126, &[]),            // same hour: same false incident
            anomaly("bob", 500, &["nothing"]),   // false
        ];
        let evaluation = evaluate(
            &labels,
            &anomalies,
            T0 - 60_000_000,
            T0 + 24 * 60 * 60_000_000,
        );
        assert_eq!(evaluation.attacks, 3);
        assert_eq!(evaluation.labels_outside_range, 1);
        assert_eq!(evaluation.caught, 2);
        let wildcard = evaluation
            .scenarios
            .iter()
            .find(|score| score.scenario == "wildcard")
            .expect("scenario");
        assert_eq!((wildcard.attacks, wildcard.caught), (2, 1));
        assert_eq!(evaluation.false_anomalies, 3);
        assert_eq!(evaluation.false_incidents, 2);
        assert!((evaluation.false_incidents_per_day - 2.0 / (1.0 + 1.0 / 1440.0)).abs() < 1e-9);
        assert!(render_table(&evaluation).contains("missed: eve"));
    }
}

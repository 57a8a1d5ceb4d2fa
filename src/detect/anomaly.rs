//! The one record every detection layer writes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How serious a finding or anomaly is, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected one of info, low, medium, high, critical")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(text: &str) -> Result<Severity, UnknownSeverity> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownSeverity(text.to_string()))
    }
}

/// Which layer produced an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyKind {
    /// A rule on one event or a short burst.
    Rule,
    /// First-seen behaviour against the identity's own history.
    Novelty,
    /// A window far from the identity's usual archetypes.
    Model,
}

impl AnomalyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Rule => "rule",
            AnomalyKind::Novelty => "novelty",
            AnomalyKind::Model => "model",
        }
    }
}

/// One anomaly, with exactly the fields of DESIGN.md's Detection section.
///
/// `identity` is the authenticated actor (for impersonation, the impersonator);
/// `evidence_audit_ids` names the events that matter, so a person (and the
/// evaluation) can go straight to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub id: String,
    pub detector: String,
    pub kind: AnomalyKind,
    pub identity: String,
    pub cluster: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub severity: Severity,
    pub score: f64,
    pub title: String,
    pub reasons: Vec<String>,
    pub evidence_audit_ids: Vec<String>,
}

impl Severity {
    /// The score a rule hit of this severity carries (rules are not
    /// probabilistic; the score only orders anomalies of different layers).
    pub fn rule_score(self) -> f64 {
        match self {
            Severity::Info => 0.1,
            Severity::Low => 0.3,
            Severity::Medium => 0.5,
            Severity::High => 0.8,
            Severity::Critical => 1.0,
        }
    }

    /// One step more serious, saturating at critical.
    pub fn raised(self) -> Severity {
        match self {
            Severity::Info => Severity::Low,
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }
}

/// UTC microseconds since the epoch as a `DateTime<Utc>` (the epoch if out of range).
pub fn datetime_from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default()
}

/// A stable anomaly ID: the same detector firing on the same evidence for the
/// same identity and window always gets the same ID, so re-running detection
/// over a range and storing the result is idempotent.
pub fn stable_anomaly_id(
    cluster: &str,
    detector: &str,
    identity: &str,
    window_start_micros: i64,
    first_evidence: Option<&str>,
) -> String {
    let mut key = String::with_capacity(128);
    for part in [
        cluster,
        detector,
        identity,
        &window_start_micros.to_string(),
        first_evidence.unwrap_or(""),
    ] {
        key.push_str(part);
        key.push('\u{1f}');
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}

impl Anomaly {
    /// Window start as UTC microseconds.
    pub fn window_start_micros(&self) -> i64 {
        self.window_start.timestamp_micros()
    }

    /// Window end as UTC microseconds.
    pub fn window_end_micros(&self) -> i64 {
        self.window_end.timestamp_micros()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Low > Severity::Info);
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("urgent".parse::<Severity>().is_err());
    }

    #[test]
    fn serializes_with_the_contract_field_names() {
        let anomaly = Anomaly {
            id: "01J0000000000000000000000".into(),
            detector: "rbac.wildcard_grant".into(),
            kind: AnomalyKind::Rule,
            identity: "alice".into(),
            cluster: "default".into(),
            window_start: DateTime::from_timestamp(1_700_000_000, 0).expect("valid time"),
            window_end: DateTime::from_timestamp(1_700_000_060, 0).expect("valid time"),
            severity: Severity::Critical,
            score: 1.0,
            title: "ClusterRole with wildcard verbs created".into(),
            reasons: vec!["verbs [*] on resources [*]".into()],
            evidence_audit_ids: vec!["abc".into()],
        };
        let json = serde_json::to_value(&anomaly).expect("serializable");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 12);
        assert_eq!(json["kind"], "rule");
        assert_eq!(json["severity"], "critical");
        assert_eq!(json["window_start"], "2023-11-14T22:13:20Z");
    }
}

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
        let keys: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 12);
        assert_eq!(json["kind"], "rule");
        assert_eq!(json["severity"], "critical");
        assert_eq!(json["window_start"], "2023-11-14T22:13:20Z");
    }
}

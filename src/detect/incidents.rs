//! Incidents: anomalies of one identity close together, grouped so a person
//! sees a handful a day rather than every rule hit.
//!
//! Grouping is by (cluster, identity) with a gap: an anomaly whose window
//! starts within `gap` of the end of the identity's open incident joins it,
//! otherwise it opens a new one. The incident carries the highest severity,
//! every detector and all evidence. [`IncidentGrouper`] does this
//! incrementally (anomalies must arrive roughly in time order, as both the
//! live path and the batch replay produce them); [`group`] is the batch form.

use super::anomaly::{Anomaly, Severity, stable_anomaly_id};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// Default gap between anomalies of one incident.
pub const DEFAULT_GAP_MICROS: i64 = 30 * 60_000_000;

/// A group of anomalies of one identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: String,
    pub identity: String,
    pub cluster: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub severity: Severity,
    pub title: String,
    pub anomaly_count: u64,
    pub detectors: Vec<String>,
    pub anomaly_ids: Vec<String>,
    pub evidence_audit_ids: Vec<String>,
}

impl Incident {
    fn open(anomaly: &Anomaly) -> Incident {
        Incident {
            id: stable_anomaly_id(
                &anomaly.cluster,
                "incident",
                &anomaly.identity,
                anomaly.window_start_micros(),
                Some(&anomaly.id),
            ),
            identity: anomaly.identity.clone(),
            cluster: anomaly.cluster.clone(),
            first_seen: anomaly.window_start,
            last_seen: anomaly.window_end.max(anomaly.window_start),
            severity: anomaly.severity,
            title: anomaly.title.clone(),
            anomaly_count: 1,
            detectors: vec![anomaly.detector.clone()],
            anomaly_ids: vec![anomaly.id.clone()],
            evidence_audit_ids: anomaly.evidence_audit_ids.clone(),
        }
    }

    fn absorb(&mut self, anomaly: &Anomaly) {
        self.first_seen = self.first_seen.min(anomaly.window_start);
        self.last_seen = self
            .last_seen
            .max(anomaly.window_end)
            .max(anomaly.window_start);
        if anomaly.severity > self.severity {
            self.severity = anomaly.severity;
            self.title = anomaly.title.clone();
        }
        self.anomaly_count += 1;
        if !self.detectors.contains(&anomaly.detector) {
            self.detectors.push(anomaly.detector.clone());
        }
        self.anomaly_ids.push(anomaly.id.clone());
        let known: BTreeSet<&String> = self.evidence_audit_ids.iter().collect();
        let new: Vec<String> = anomaly
            .evidence_audit_ids
            .iter()
            .filter(|id| !known.contains(id))
            .cloned()
            .collect();
        self.evidence_audit_ids.extend(new);
    }

    /// The title shown to a person: the most severe anomaly's, and how many more.
    pub fn display_title(&self) -> String {
        if self.anomaly_count > 1 {
            format!(
                "{} (+{} more: {})",
                self.title,
                self.anomaly_count - 1,
                self.detectors.join(", ")
            )
        } else {
            self.title.clone()
        }
    }
}

/// Groups anomalies into incidents as they arrive.
#[derive(Debug)]
pub struct IncidentGrouper {
    gap_micros: i64,
    open: HashMap<(String, String), Incident>,
}

impl IncidentGrouper {
    pub fn new(gap_micros: i64) -> IncidentGrouper {
        IncidentGrouper {
            gap_micros,
            open: HashMap::new(),
        }
    }

    /// Adds an anomaly; returns the incident it now belongs to (a copy of its
    /// current state) and, when it closed an older incident of the identity,
    /// that incident.
    pub fn add(&mut self, anomaly: &Anomaly) -> (Incident, Option<Incident>) {
        let key = (anomaly.cluster.clone(), anomaly.identity.clone());
        let gap = chrono::Duration::microseconds(self.gap_micros);
        let mut closed = None;
        match self.open.get_mut(&key) {
            Some(incident) if anomaly.window_start <= incident.last_seen + gap => {
                incident.absorb(anomaly);
                return (incident.clone(), None);
            }
            Some(_) => closed = self.open.remove(&key),
            None => {}
        }
        let incident = Incident::open(anomaly);
        self.open.insert(key, incident.clone());
        (incident, closed)
    }

    /// Every incident still open.
    pub fn drain(&mut self) -> Vec<Incident> {
        let mut incidents: Vec<Incident> =
            self.open.drain().map(|(_, incident)| incident).collect();
        incidents.sort_by(|a, b| {
            a.first_seen
                .cmp(&b.first_seen)
                .then_with(|| a.id.cmp(&b.id))
        });
        incidents
    }
}

/// Groups a set of anomalies (any order) into incidents, ordered by first_seen.
pub fn group(anomalies: &[Anomaly], gap_micros: i64) -> Vec<Incident> {
    let mut sorted: Vec<&Anomaly> = anomalies.iter().collect();
    sorted.sort_by(|a, b| {
        a.window_start
            .cmp(&b.window_start)
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut grouper = IncidentGrouper::new(gap_micros);
    let mut incidents = Vec::new();
    for anomaly in sorted {
        let (_, closed) = grouper.add(anomaly);
        incidents.extend(closed);
    }
    incidents.extend(grouper.drain());
    incidents.sort_by(|a, b| {
        a.first_seen
            .cmp(&b.first_seen)
            .then_with(|| a.id.cmp(&b.id))
    });
    incidents
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::anomaly::{AnomalyKind, datetime_from_micros};

    fn anomaly(identity: &str, minute: i64, severity: Severity, detector: &str) -> Anomaly {
        let start = minute * 60_000_000;
        Anomaly {
            id: format!("{identity}-{minute}-{detector}"),
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

    #[test]
    fn groups_by_identity_within_the_gap() {
        let anomalies = vec![
            anomaly("alice", 0, Severity::Low, "workload.exec"),
            anomaly("bob", 5, Severity::High, "node.proxy"),
            anomaly("alice", 20, Severity::Critical, "rbac.wildcard_grant"),
            anomaly("alice", 49, Severity::Medium, "auth.forbidden_burst"),
            anomaly("alice", 120, Severity::Low, "workload.exec"),
        ];
        let incidents = group(&anomalies, DEFAULT_GAP_MICROS);
        assert_eq!(incidents.len(), 3);
        let first = &incidents[0];
        assert_eq!(first.identity, "alice");
        assert_eq!(first.anomaly_count, 3);
        assert_eq!(first.severity, Severity::Critical);
        assert_eq!(first.title, "rbac.wildcard_grant by alice");
        assert_eq!(first.evidence_audit_ids.len(), 3);
        assert_eq!(
            first.detectors,
            vec![
                "workload.exec",
                "rbac.wildcard_grant",
                "auth.forbidden_burst"
            ]
        );
        assert_eq!(incidents[1].identity, "bob");
        assert_eq!(incidents[2].anomaly_count, 1);
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let mut anomalies = vec![
            anomaly("alice", 0, Severity::Low, "a"),
            anomaly("alice", 10, Severity::Low, "b"),
            anomaly("alice", 100, Severity::Low, "c"),
        ];
        let forward = group(&anomalies, DEFAULT_GAP_MICROS);
        anomalies.reverse();
        assert_eq!(group(&anomalies, DEFAULT_GAP_MICROS), forward);
    }
}

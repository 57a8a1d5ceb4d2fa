//! The report as data: the JSON format (`schema_version` 1), which the
//! Markdown and HTML renderers only present. docs/REPORTS.md documents every
//! field; a change that removes or retypes a field bumps [`SCHEMA_VERSION`],
//! adding a field does not.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the JSON format. Readers should refuse a major version they do not know.
pub const SCHEMA_VERSION: u32 = 1;

/// The nightly report of one cluster and one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub generated_at: DateTime<Utc>,
    pub cluster: String,
    /// The UTC day covered: `[window_start, window_end)`.
    pub date: NaiveDate,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// Where the catalog tables were read from (`catalog`, `attached read-only`,
    /// `export of <time>`, or `unavailable`).
    pub catalog_source: String,
    pub summary: Summary,
    /// Incidents active during the day, most severe first, each with its anomalies.
    pub incidents: Vec<IncidentEntry>,
    /// Anomalies of the day not grouped into any incident.
    pub ungrouped_anomalies: Vec<AnomalyEntry>,
    /// Events per hour (0–23) and identity kind.
    pub events_by_hour: Vec<HourlyCount>,
    /// Anomalies per hour (of `window_start`) and severity.
    pub anomalies_by_hour: Vec<HourlyCount>,
    /// The busiest identities of the day against their previous 7 days.
    pub identity_activity: Vec<IdentityActivity>,
    /// Identities with no request in the look-back period before the day.
    pub new_identities: Vec<String>,
    /// Namespaces and source IPs an identity used for the first time in the look-back period.
    pub first_seen: Vec<FirstSeen>,
    pub denied: DeniedRequests,
    /// Every write to rbac.authorization.k8s.io objects during the day.
    pub rbac_changes: Vec<RbacChange>,
    /// True when `rbac_changes` was cut at the row limit.
    pub rbac_changes_truncated: bool,
    pub compliance: Compliance,
    /// Risky grants found by the RBAC audit (a catalog table, if present).
    pub rbac_risky_grants: TableSection,
    /// Sensitive grants unused in the observation window (a catalog table, if present).
    pub rbac_unused_grants: TableSection,
    /// Model registry status (the `models` table, if present).
    pub models: TableSection,
    pub ingest: IngestHealth,
    /// Verdicts, suppressions and automatic threshold changes (issue 9).
    #[serde(default)]
    pub feedback: crate::feedback::report::FeedbackSection,
    /// New and removed grants since last week, over-privilege per identity per day (issue 9).
    #[serde(default)]
    pub rbac_drift: crate::rbac::drift::RbacDrift,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Stored rows (one per audit event and stage).
    pub events: u64,
    /// Distinct requests (audit IDs).
    pub requests: u64,
    pub identities: u64,
    pub denied_requests: u64,
    pub anomalies: u64,
    pub incidents: u64,
    /// Anomalies of the day by severity name.
    pub anomalies_by_severity: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEntry {
    pub id: String,
    pub identity: String,
    pub severity: String,
    pub title: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub detectors: Vec<String>,
    pub anomaly_count: u64,
    /// Its anomalies, most severe and highest score first.
    pub anomalies: Vec<AnomalyEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyEntry {
    pub id: String,
    pub detector: String,
    pub kind: String,
    pub identity: String,
    pub severity: String,
    pub score: f64,
    pub title: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// Why it fired, in words.
    pub reasons: Vec<String>,
    /// The audit IDs of the events that matter.
    pub evidence_audit_ids: Vec<String>,
    pub incident_id: Option<String>,
}

/// One bar of an hourly chart: `series` is the identity kind or the severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourlyCount {
    pub hour: u32,
    pub series: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityActivity {
    pub identity: String,
    pub identity_kind: String,
    pub requests: u64,
    pub denied: u64,
    pub writes: u64,
    pub namespaces: u64,
    pub source_ips: u64,
    /// Mean requests per day over the previous 7 days (days without activity count as 0).
    pub usual_daily_requests: f64,
    /// Days of the previous 7 with any request.
    pub usual_active_days: u64,
    /// `requests / usual_daily_requests`, absent when there is no history.
    pub ratio_to_usual: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstSeen {
    pub identity: String,
    /// `namespace` or `source_ip`.
    pub what: String,
    pub value: String,
    pub first_at: DateTime<Utc>,
    pub requests: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeniedRequests {
    pub total: u64,
    /// Denied requests per hour of the day (24 entries).
    pub by_hour: Vec<u64>,
    /// Mean denied requests per day over the previous 7 days.
    pub previous_daily_average: f64,
    /// Denied requests per day for the day and the 7 before it, oldest first.
    pub daily: Vec<DailyCount>,
    /// The most frequent (identity, verb, resource) denials.
    pub top: Vec<DeniedGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyCount {
    pub date: NaiveDate,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedGroup {
    pub identity: String,
    pub verb: String,
    pub resource: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RbacChange {
    pub at: DateTime<Utc>,
    pub identity: String,
    pub verb: String,
    /// `roles`, `clusterroles`, `rolebindings`, `clusterrolebindings`.
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub response_code: Option<i32>,
    /// Whether the API server accepted it (2xx).
    pub succeeded: bool,
    pub audit_id: String,
}

/// SOC 2 / ISO 27001 style evidence: who read secrets, every RBAC change
/// (`Report::rbac_changes`), every incident and its evidence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Compliance {
    pub secret_access: Vec<SecretAccess>,
    pub secret_access_truncated: bool,
    pub rbac_change_count: u64,
    pub incident_evidence: Vec<IncidentEvidence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretAccess {
    pub identity: String,
    pub namespace: Option<String>,
    /// `get`, `list` or `watch`.
    pub verb: String,
    /// Distinct secret names read with `get` (empty for list/watch).
    pub names: Vec<String>,
    pub requests: u64,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentEvidence {
    pub incident_id: String,
    pub severity: String,
    pub identity: String,
    pub evidence_audit_ids: Vec<String>,
}

/// A section read from a catalog table another module owns. When the table
/// is absent, `available` is false and `note` says so.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableSection {
    pub available: bool,
    /// The table it was read from.
    pub source: Option<String>,
    pub note: String,
    pub columns: Vec<String>,
    /// Cells as text (NULL as empty).
    pub rows: Vec<Vec<String>>,
    pub truncated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestHealth {
    /// Parts committed during the day (by creation time) and their size.
    pub parts_written: u64,
    pub part_bytes: u64,
    pub rows_written: u64,
    /// Live parts holding the day's events.
    pub parts_for_day: u64,
    /// Seconds from an event's time to its part's commit: mean and max over
    /// the parts written during the day (`created_at - max_ts`).
    pub mean_commit_lag_seconds: Option<f64>,
    pub max_commit_lag_seconds: Option<f64>,
    /// Lines quarantined during the day (`data/quarantine/<date>.jsonl`) by reason.
    pub quarantined_by_reason: BTreeMap<String, u64>,
    pub quarantined_total: u64,
    /// Whether the manifest table was readable.
    pub manifest_available: bool,
}

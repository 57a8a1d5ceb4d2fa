//! The bodies sinks receive. Each carries its idempotency key: the webhook
//! and file JSON as `idempotency_key`, Slack's text in its footer line (and
//! every HTTP request as the `X-Auditlens-Idempotency-Key` header).

use super::{AlertSubject, SinkConfig, SinkKind};
use crate::detect::{Anomaly, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An incident as alerts see it: the columns of the `incidents` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentAlert {
    pub id: String,
    pub identity: String,
    pub cluster: String,
    pub severity: Severity,
    pub title: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub anomaly_count: u64,
    pub detectors: Vec<String>,
}

/// `anomaly:<id>`: an anomaly is alerted once.
pub fn anomaly_key(anomaly: &Anomaly) -> String {
    format!("anomaly:{}", anomaly.id)
}

/// `incident:<id>:<severity>`: an incident is alerted when it opens and again
/// each time it escalates to a higher severity.
pub fn incident_key(incident: &IncidentAlert) -> String {
    format!("incident:{}:{}", incident.id, incident.severity)
}

#[derive(Serialize)]
struct WebhookBody<'a> {
    idempotency_key: &'a str,
    #[serde(rename = "type")]
    subject: AlertSubject,
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    anomaly: Option<&'a Anomaly>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incident: Option<&'a IncidentAlert>,
}

#[derive(Serialize)]
struct SlackBody {
    text: String,
}

fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The body for `sink` about an anomaly.
pub(crate) fn anomaly_payload(sink: &SinkConfig, anomaly: &Anomaly) -> String {
    let key = anomaly_key(anomaly);
    match sink.kind {
        SinkKind::Webhook | SinkKind::File => serde_json::to_string(&WebhookBody {
            idempotency_key: &key,
            subject: AlertSubject::Anomaly,
            source: "auditlens",
            anomaly: Some(anomaly),
            incident: None,
        })
        .unwrap_or_default(),
        SinkKind::Slack => {
            let mut text = format!(
                "*[{}] {}*\nidentity `{}` · cluster `{}` · detector `{}` · score {:.2}\n{} – {} UTC",
                anomaly.severity.as_str().to_uppercase(),
                slack_escape(&anomaly.title),
                slack_escape(&anomaly.identity),
                slack_escape(&anomaly.cluster),
                slack_escape(&anomaly.detector),
                anomaly.score,
                anomaly.window_start.format("%Y-%m-%d %H:%M:%S"),
                anomaly.window_end.format("%H:%M:%S"),
            );
            for reason in anomaly.reasons.iter().take(5) {
                text.push_str(&format!("\n• {}", slack_escape(reason)));
            }
            if !anomaly.evidence_audit_ids.is_empty() {
                let ids: Vec<&str> = anomaly
                    .evidence_audit_ids
                    .iter()
                    .take(5)
                    .map(String::as_str)
                    .collect();
                text.push_str(&format!(
                    "\nevidence: `{}`",
                    slack_escape(&ids.join("`, `"))
                ));
            }
            text.push_str(&format!("\n_auditlens key {}_", slack_escape(&key)));
            serde_json::to_string(&SlackBody { text }).unwrap_or_default()
        }
    }
}

/// The body for `sink` about an incident.
pub(crate) fn incident_payload(sink: &SinkConfig, incident: &IncidentAlert) -> String {
    let key = incident_key(incident);
    match sink.kind {
        SinkKind::Webhook | SinkKind::File => serde_json::to_string(&WebhookBody {
            idempotency_key: &key,
            subject: AlertSubject::Incident,
            source: "auditlens",
            anomaly: None,
            incident: Some(incident),
        })
        .unwrap_or_default(),
        SinkKind::Slack => {
            let text = format!(
                "*[{}] incident: {}*\nidentity `{}` · cluster `{}` · {} anomalies from {} to {} UTC\ndetectors: {}\n_auditlens key {}_",
                incident.severity.as_str().to_uppercase(),
                slack_escape(&incident.title),
                slack_escape(&incident.identity),
                slack_escape(&incident.cluster),
                incident.anomaly_count,
                incident.first_seen.format("%Y-%m-%d %H:%M:%S"),
                incident.last_seen.format("%H:%M:%S"),
                slack_escape(&incident.detectors.join(", ")),
                slack_escape(&key),
            );
            serde_json::to_string(&SlackBody { text }).unwrap_or_default()
        }
    }
}

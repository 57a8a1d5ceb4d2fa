//! `[alerts]` of the config file: the sinks and the retry schedule, and
//! their validation.
//!
//! Design decision: this file needs nothing of the outbox, the dispatcher or
//! DuckDB, so the config loader (and its fuzz target, which compiles
//! `src/config.rs` without DuckDB) can include it on its own.

use super::{AlertError, Result};
use crate::detect::Severity;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[alerts]` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    pub sinks: Vec<SinkConfig>,
    /// Wait before the first retry; doubles with each failure.
    pub initial_backoff_ms: u64,
    /// Longest wait between retries.
    pub max_backoff_ms: u64,
    /// Give up on an alert after this many failed attempts (0: never give up).
    pub max_attempts: u32,
    /// Time limit of one HTTP delivery (connect, TLS, request, response).
    pub request_timeout_ms: u64,
    /// How often the dispatcher looks for new anomalies and due deliveries.
    pub poll_interval_ms: u64,
}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig {
            sinks: Vec::new(),
            initial_backoff_ms: 1_000,
            max_backoff_ms: 600_000,
            max_attempts: 0,
            request_timeout_ms: 10_000,
            poll_interval_ms: 1_000,
        }
    }
}

impl AlertsConfig {
    pub fn validate(&self) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for sink in &self.sinks {
            if sink.name.is_empty() {
                return Err(AlertError::Config(
                    "every [[alerts.sinks]] needs a name".into(),
                ));
            }
            if !names.insert(sink.name.as_str()) {
                return Err(AlertError::Config(format!(
                    "two sinks are named {:?}",
                    sink.name
                )));
            }
            match sink.kind {
                SinkKind::Webhook | SinkKind::Slack => {
                    let url = sink.url.as_deref().ok_or_else(|| {
                        AlertError::Config(format!("sink {:?} needs a url", sink.name))
                    })?;
                    let uri: hyper::Uri = url.parse().map_err(|error| {
                        AlertError::Config(format!("sink {:?}: url {url:?}: {error}", sink.name))
                    })?;
                    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                        return Err(AlertError::Config(format!(
                            "sink {:?}: url {url:?} must be http:// or https:// with a host",
                            sink.name
                        )));
                    }
                }
                SinkKind::File => {
                    if sink.path.is_none() {
                        return Err(AlertError::Config(format!(
                            "sink {:?} needs a path",
                            sink.name
                        )));
                    }
                }
            }
            if sink.alert_on.is_empty() {
                return Err(AlertError::Config(format!(
                    "sink {:?}: alert_on is empty, so it would never alert",
                    sink.name
                )));
            }
        }
        if self.initial_backoff_ms == 0 || self.max_backoff_ms < self.initial_backoff_ms {
            return Err(AlertError::Config(
                "initial_backoff_ms must be positive and at most max_backoff_ms".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// JSON POST of the alert (optionally HMAC-signed).
    Webhook,
    /// A Slack-compatible incoming webhook (`{"text": ...}`).
    Slack,
    /// One JSON object per line appended to a file.
    File,
}

/// What a sink is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSubject {
    Anomaly,
    Incident,
}

/// One `[[alerts.sinks]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique; recorded in the outbox, so renaming a sink re-sends nothing
    /// already delivered under the old name and abandons what was pending.
    pub name: String,
    pub kind: SinkKind,
    /// Webhook and Slack: `http://` or `https://` (TLS with the Mozilla roots).
    pub url: Option<String>,
    /// File sink: the JSON-lines file.
    pub path: Option<PathBuf>,
    /// A file holding the HMAC-SHA256 key (trailing whitespace ignored):
    /// requests then carry `X-Auditlens-Signature: sha256=<hex of HMAC(body)>`.
    pub hmac_secret_file: Option<PathBuf>,
    /// Alerts below this severity are not sent to this sink.
    pub min_severity: Severity,
    /// Only these detectors (`rbac.wildcard_grant`, or a prefix `rbac.*`); empty: all.
    pub detectors: Vec<String>,
    pub alert_on: Vec<AlertSubject>,
}

impl Default for SinkConfig {
    fn default() -> SinkConfig {
        SinkConfig {
            name: String::new(),
            kind: SinkKind::Webhook,
            url: None,
            path: None,
            hmac_secret_file: None,
            min_severity: Severity::Medium,
            detectors: Vec::new(),
            alert_on: vec![AlertSubject::Anomaly, AlertSubject::Incident],
        }
    }
}

impl SinkConfig {
    /// Whether one detector name passes this sink's detector filter.
    pub fn accepts_detector(&self, detector: &str) -> bool {
        self.detectors.is_empty()
            || self
                .detectors
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => detector.starts_with(prefix),
                    None => pattern == detector,
                })
    }

    /// Whether an alert about `subject` with `severity` from `detectors` goes to this sink.
    pub fn accepts(&self, subject: AlertSubject, severity: Severity, detectors: &[String]) -> bool {
        self.alert_on.contains(&subject)
            && severity >= self.min_severity
            && (self.detectors.is_empty()
                || detectors
                    .iter()
                    .any(|detector| self.accepts_detector(detector)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_severity_detector_prefix_and_subject() {
        let sink = SinkConfig {
            name: "s".into(),
            url: Some("http://127.0.0.1:9/hook".into()),
            min_severity: Severity::High,
            detectors: vec!["rbac.*".into(), "novelty.new_ip".into()],
            alert_on: vec![AlertSubject::Anomaly],
            ..SinkConfig::default()
        };
        assert!(sink.accepts(
            AlertSubject::Anomaly,
            Severity::Critical,
            &["rbac.wildcard_grant".into()]
        ));
        assert!(sink.accepts(
            AlertSubject::Anomaly,
            Severity::High,
            &["novelty.new_ip".into()]
        ));
        assert!(!sink.accepts(
            AlertSubject::Anomaly,
            Severity::Medium,
            &["rbac.wildcard_grant".into()]
        ));
        assert!(!sink.accepts(
            AlertSubject::Anomaly,
            Severity::High,
            &["novelty.new_ip_range".into()]
        ));
        assert!(!sink.accepts(
            AlertSubject::Incident,
            Severity::Critical,
            &["rbac.wildcard_grant".into()]
        ));
        AlertsConfig {
            sinks: vec![sink],
            ..AlertsConfig::default()
        }
        .validate()
        .expect("valid");
    }

    #[test]
    fn invalid_sinks_are_refused() {
        let no_url = SinkConfig {
            name: "a".into(),
            ..SinkConfig::default()
        };
        assert!(
            AlertsConfig {
                sinks: vec![no_url],
                ..AlertsConfig::default()
            }
            .validate()
            .is_err()
        );
        let bad_scheme = SinkConfig {
            name: "a".into(),
            url: Some("ftp://x/y".into()),
            ..SinkConfig::default()
        };
        assert!(
            AlertsConfig {
                sinks: vec![bad_scheme],
                ..AlertsConfig::default()
            }
            .validate()
            .is_err()
        );
        let file = SinkConfig {
            name: "f".into(),
            kind: SinkKind::File,
            path: Some("/tmp/x.jsonl".into()),
            ..SinkConfig::default()
        };
        let duplicate = vec![file.clone(), file];
        assert!(
            AlertsConfig {
                sinks: duplicate,
                ..AlertsConfig::default()
            }
            .validate()
            .is_err()
        );
    }
}

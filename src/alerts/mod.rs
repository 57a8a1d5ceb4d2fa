//! Alert delivery: anomalies and incidents go to the sinks the config names
//! (`[[alerts.sinks]]`: a generic JSON webhook with an optional HMAC
//! signature, a Slack-compatible incoming webhook, a JSON-lines file), each
//! with its own severity and detector filters.
//!
//! The design decision to know: nothing is sent straight from the detector.
//! An alert is first written to the `alert_outbox` table of the catalog, one
//! row per (alert, sink), keyed by the alert's idempotency key; a dispatcher
//! thread delivers due rows and marks them delivered, retrying failures with
//! exponential backoff. So an alert survives a sink outage and a daemon
//! restart, and is delivered once per sink. "Once" is at-least-once on the
//! wire plus the idempotency key: if the daemon dies after a sink accepted a
//! POST but before the delivered mark is committed, the POST is repeated with
//! the same `idempotency_key`, which the receiver can deduplicate on.

mod config;
mod dispatcher;
mod http;
mod outbox;
mod payload;

pub use config::{AlertSubject, AlertsConfig, SinkConfig, SinkKind};
pub use dispatcher::{AlertDispatcher, AlertHandle, AlertInput, DeliveryRound};
pub use http::{HttpClient, signature_header_value};
pub use outbox::{OUTBOX_SQL, OutboxRow, OutboxStatus};
pub use payload::{IncidentAlert, anomaly_key, incident_key};

use std::path::PathBuf;

pub type Result<T, E = AlertError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{context}: {source}")]
    DuckDb {
        context: String,
        #[source]
        source: duckdb::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("alerts config: {0}")]
    Config(String),
    #[error("{0}")]
    Runtime(String),
}

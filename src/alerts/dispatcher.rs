//! The dispatcher: turns anomalies and incidents into outbox rows (one per
//! matching sink) and delivers due rows. It owns its own catalog connection
//! and a single-threaded async runtime for HTTP, so it runs on a plain thread
//! and must not be created or dropped inside async code.

use super::outbox::{self, NewOutboxRow, OutboxRow, OutboxStatus};
use super::payload::{IncidentAlert, anomaly_key, anomaly_payload, incident_key, incident_payload};
use super::{
    AlertError, AlertSubject, AlertsConfig, HttpClient, Result, SinkConfig, SinkKind,
    signature_header_value,
};
use crate::detect::{Anomaly, AnomalyKind, Severity};
use crate::metrics::Metrics;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows delivered per round at most, so one round stays short.
const ROUND_LIMIT: usize = 500;
/// Anomalies re-read behind the cursor, so one committed late (a lower `seq`
/// committed after a higher one) is still enqueued; the outbox key dedupes.
const CURSOR_OVERLAP: i64 = 256;
const CURSOR_NAME: &str = "anomalies";
/// The newest `seq` when alerting first started: anomalies up to it are history.
const CURSOR_FLOOR_NAME: &str = "anomalies_floor";

/// What one [`AlertDispatcher::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryRound {
    pub delivered: u64,
    pub failed: u64,
    /// Due rows left for a later round because their sink failed earlier in this one.
    pub deferred: u64,
    pub abandoned: u64,
}

/// An input sent to a running dispatcher thread.
#[derive(Debug, Clone)]
pub enum AlertInput {
    Anomaly(Anomaly),
    Incident(IncidentAlert),
}

struct Sink {
    config: SinkConfig,
    secret: Option<Vec<u8>>,
}

pub struct AlertDispatcher {
    connection: duckdb::Connection,
    config: AlertsConfig,
    sinks: Vec<Sink>,
    client: HttpClient,
    runtime: tokio::runtime::Runtime,
    metrics: Option<Arc<Metrics>>,
    /// Rows in `anomalies` at the last poll: a change with no new maximum
    /// `seq` means a late commit below the cursor, so the overlap is re-read.
    anomalies_seen: std::cell::Cell<Option<i64>>,
}

impl AlertDispatcher {
    /// Creates the outbox tables if needed and reads the sinks' HMAC secrets.
    /// `connection` is a connection to the catalog (e.g. `Catalog::connection()`).
    pub fn new(
        connection: duckdb::Connection,
        config: AlertsConfig,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<AlertDispatcher> {
        config.validate()?;
        outbox::ensure_schema(&connection)?;
        let mut sinks = Vec::new();
        for sink in &config.sinks {
            let secret = match &sink.hmac_secret_file {
                Some(path) => {
                    let text = std::fs::read(path).map_err(|source| AlertError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    let end = text
                        .iter()
                        .rposition(|byte| !byte.is_ascii_whitespace())
                        .map(|index| index + 1)
                        .unwrap_or(0);
                    if end == 0 {
                        return Err(AlertError::Config(format!(
                            "sink {:?}: {} is empty",
                            sink.name,
                            path.display()
                        )));
                    }
                    Some(text[..end].to_vec())
                }
                None => None,
            };
            sinks.push(Sink {
                config: sink.clone(),
                secret,
            });
        }
        let client = HttpClient::new(std::time::Duration::from_millis(
            config.request_timeout_ms.max(1),
        ))
        .map_err(AlertError::Runtime)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| AlertError::Runtime(format!("starting the alert runtime: {error}")))?;
        Ok(AlertDispatcher {
            connection,
            config,
            sinks,
            client,
            runtime,
            metrics,
            anomalies_seen: std::cell::Cell::new(None),
        })
    }

    /// Adds an outbox row for each sink that accepts the anomaly. Returns how
    /// many rows were new (an anomaly enqueued twice is stored once).
    pub fn enqueue(&self, anomaly: &Anomaly) -> Result<usize> {
        let key = anomaly_key(anomaly);
        let detectors = [anomaly.detector.clone()];
        let mut added = 0;
        for sink in &self.sinks {
            if !sink
                .config
                .accepts(AlertSubject::Anomaly, anomaly.severity, &detectors)
            {
                continue;
            }
            let payload = anomaly_payload(&sink.config, anomaly);
            let row = NewOutboxRow {
                alert_key: &key,
                sink: &sink.config.name,
                subject: "anomaly",
                subject_id: &anomaly.id,
                severity: anomaly.severity.as_str(),
                payload: &payload,
            };
            added += usize::from(outbox::insert(&self.connection, &row, Utc::now())?);
        }
        Ok(added)
    }

    /// Adds an outbox row for each sink that accepts the incident.
    pub fn enqueue_incident(&self, incident: &IncidentAlert) -> Result<usize> {
        let key = incident_key(incident);
        let mut added = 0;
        for sink in &self.sinks {
            if !sink.config.accepts(
                AlertSubject::Incident,
                incident.severity,
                &incident.detectors,
            ) {
                continue;
            }
            let payload = incident_payload(&sink.config, incident);
            let row = NewOutboxRow {
                alert_key: &key,
                sink: &sink.config.name,
                subject: "incident",
                subject_id: &incident.id,
                severity: incident.severity.as_str(),
                payload: &payload,
            };
            added += usize::from(outbox::insert(&self.connection, &row, Utc::now())?);
        }
        Ok(added)
    }

    /// Enqueues anomalies the catalog gained since the last call (by `seq`)
    /// and incidents updated in the last two days. Suppressed anomalies
    /// (`suppressed_by` set, see `crate::feedback`) are skipped, and so are
    /// incidents made only of them. On the very first run the
    /// cursor starts at the newest anomaly: history is not re-alerted.
    pub fn enqueue_from_catalog(&self) -> Result<usize> {
        let context = |what: &'static str| {
            move |source: duckdb::Error| AlertError::DuckDb {
                context: what.to_string(),
                source,
            }
        };
        let mut added = 0;
        let has_table = |name: &str| -> Result<bool> {
            let found: i64 = self
                .connection
                .query_row(
                    "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = ?",
                    [name],
                    |row| row.get(0),
                )
                .map_err(context("looking up catalog tables"))?;
            Ok(found > 0)
        };
        if has_table("anomalies")? {
            let (newest, total): (i64, i64) = self
                .connection
                .query_row(
                    "SELECT coalesce(max(seq), 0), count(*) FROM anomalies",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(context("reading the newest anomaly"))?;
            let (cursor, fresh) = match outbox::read_cursor(&self.connection, CURSOR_NAME)? {
                Some(cursor) => (cursor, false),
                None => {
                    // The floor keeps the overlap below from reaching into history.
                    outbox::write_cursor(&self.connection, CURSOR_FLOOR_NAME, newest)?;
                    outbox::write_cursor(&self.connection, CURSOR_NAME, newest)?;
                    (newest, true)
                }
            };
            let floor = outbox::read_cursor(&self.connection, CURSOR_FLOOR_NAME)?.unwrap_or(0);
            let changed = newest > cursor || self.anomalies_seen.get() != Some(total);
            self.anomalies_seen.set(Some(total));
            if !fresh && changed {
                let mut statement = self
                    .connection
                    .prepare(
                        "SELECT seq, id, detector, kind, identity, cluster, epoch_us(window_start), epoch_us(window_end), severity, score, \
                                title, to_json(reasons)::VARCHAR, to_json(evidence_audit_ids)::VARCHAR \
                         FROM anomalies WHERE seq > ? AND suppressed_by IS NULL ORDER BY seq",
                    )
                    .map_err(context("reading new anomalies"))?;
                let rows = statement
                    .query_map([(cursor - CURSOR_OVERLAP).max(floor)], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, String>(5)?,
                            row.get::<_, i64>(6)?,
                            row.get::<_, i64>(7)?,
                            row.get::<_, String>(8)?,
                            row.get::<_, f64>(9)?,
                            row.get::<_, String>(10)?,
                            row.get::<_, Option<String>>(11)?,
                            row.get::<_, Option<String>>(12)?,
                        ))
                    })
                    .map_err(context("reading new anomalies"))?;
                // Collected first: the outbox inserts below run on the same connection.
                let rows = rows
                    .collect::<duckdb::Result<Vec<_>>>()
                    .map_err(context("reading new anomalies"))?;
                drop(statement);
                let mut last = cursor;
                for (
                    seq,
                    id,
                    detector,
                    kind,
                    identity,
                    cluster,
                    start,
                    end,
                    severity,
                    score,
                    title,
                    reasons,
                    evidence,
                ) in rows
                {
                    last = last.max(seq);
                    let anomaly = Anomaly {
                        id,
                        detector,
                        kind: match kind.as_str() {
                            "novelty" => AnomalyKind::Novelty,
                            "model" => AnomalyKind::Model,
                            _ => AnomalyKind::Rule,
                        },
                        identity,
                        cluster,
                        window_start: DateTime::from_timestamp_micros(start).unwrap_or_default(),
                        window_end: DateTime::from_timestamp_micros(end).unwrap_or_default(),
                        severity: severity.parse().unwrap_or(Severity::Medium),
                        score,
                        title,
                        reasons: json_strings(reasons),
                        evidence_audit_ids: json_strings(evidence),
                    };
                    added += self.enqueue(&anomaly)?;
                }
                if last > cursor {
                    outbox::write_cursor(&self.connection, CURSOR_NAME, last)?;
                }
            }
        }
        if has_table("incidents")? {
            let mut statement = self
                .connection
                .prepare(
                    "SELECT id, identity, cluster, severity, title, epoch_us(first_seen), epoch_us(last_seen), anomaly_count, \
                            to_json(detectors)::VARCHAR \
                     FROM incidents WHERE updated_at >= now()::TIMESTAMP - INTERVAL 2 DAY \
                     AND EXISTS (SELECT 1 FROM anomalies a WHERE a.incident_id = incidents.id AND a.suppressed_by IS NULL) \
                     ORDER BY updated_at",
                )
                .map_err(context("reading recent incidents"))?;
            let incidents: Vec<IncidentAlert> = statement
                .query_map([], |row| {
                    Ok(IncidentAlert {
                        id: row.get(0)?,
                        identity: row.get(1)?,
                        cluster: row.get(2)?,
                        severity: row.get::<_, String>(3)?.parse().unwrap_or(Severity::Medium),
                        title: row.get(4)?,
                        first_seen: DateTime::from_timestamp_micros(row.get(5)?)
                            .unwrap_or_default(),
                        last_seen: DateTime::from_timestamp_micros(row.get(6)?).unwrap_or_default(),
                        anomaly_count: row.get::<_, i64>(7)?.max(0) as u64,
                        detectors: json_strings(row.get(8)?),
                    })
                })
                .map_err(context("reading recent incidents"))?
                .collect::<duckdb::Result<_>>()
                .map_err(context("reading recent incidents"))?;
            drop(statement);
            for incident in &incidents {
                added += self.enqueue_incident(incident)?;
            }
        }
        Ok(added)
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let millis = self
            .config
            .initial_backoff_ms
            .saturating_mul(1u64 << exponent)
            .min(self.config.max_backoff_ms);
        Duration::milliseconds(millis as i64)
    }

    /// Delivers every due row once. A sink that fails is not tried again in
    /// the same round (its other rows are deferred, not counted as attempts),
    /// so an outage costs one timeout per round, not one per alert.
    pub fn run_once(&self, now: DateTime<Utc>) -> Result<DeliveryRound> {
        let mut round = DeliveryRound::default();
        let mut failed_sinks: HashSet<String> = HashSet::new();
        for row in outbox::due(&self.connection, now, ROUND_LIMIT)? {
            let Some(sink) = self.sinks.iter().find(|sink| sink.config.name == row.sink) else {
                // The sink left the config: keep the row for if it comes back.
                continue;
            };
            if failed_sinks.contains(&row.sink) {
                round.deferred += 1;
                continue;
            }
            let started = std::time::Instant::now();
            let outcome = self.deliver(sink, &row);
            let seconds = started.elapsed().as_secs_f64();
            if let Some(metrics) = &self.metrics {
                metrics.record_sink_delivery(&row.sink, outcome.is_ok(), seconds);
            }
            match outcome {
                Ok(()) => {
                    outbox::mark_delivered(&self.connection, &row, Utc::now())?;
                    round.delivered += 1;
                }
                Err(error) => {
                    let attempts = row.attempts + 1;
                    let abandon =
                        self.config.max_attempts > 0 && attempts >= self.config.max_attempts;
                    tracing::warn!(sink = %row.sink, key = %row.alert_key, attempts, %error, abandon, "alert delivery failed");
                    outbox::mark_failed(
                        &self.connection,
                        &row,
                        &error,
                        now + self.backoff(attempts),
                        abandon,
                        now,
                    )?;
                    failed_sinks.insert(row.sink.clone());
                    round.failed += 1;
                    round.abandoned += u64::from(abandon);
                }
            }
        }
        Ok(round)
    }

    fn deliver(&self, sink: &Sink, row: &OutboxRow) -> Result<(), String> {
        match sink.config.kind {
            SinkKind::File => {
                let path = sink
                    .config
                    .path
                    .as_ref()
                    .ok_or("file sink without a path")?;
                if let Some(parent) = path
                    .parent()
                    .filter(|parent| !parent.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(parent)
                        .map_err(|error| format!("{}: {error}", parent.display()))?;
                }
                let mut line = row.payload.clone();
                line.push('\n');
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut file| {
                        file.write_all(line.as_bytes())?;
                        file.sync_data()
                    })
                    .map_err(|error| format!("{}: {error}", path.display()))
            }
            SinkKind::Webhook | SinkKind::Slack => {
                let url = sink
                    .config
                    .url
                    .as_deref()
                    .ok_or("webhook sink without a url")?;
                let body = row.payload.as_bytes().to_vec();
                let mut headers = vec![("x-auditlens-idempotency-key", row.alert_key.clone())];
                if let Some(secret) = &sink.secret {
                    headers.push((
                        "x-auditlens-signature",
                        signature_header_value(secret, &body),
                    ));
                }
                let status = self
                    .runtime
                    .block_on(self.client.post(url, body, &headers))?;
                if (200..300).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("HTTP status {status}"))
                }
            }
        }
    }

    /// Counts of outbox rows by state.
    pub fn status(&self) -> Result<OutboxStatus> {
        outbox::status(&self.connection)
    }

    /// Runs the dispatcher on its own thread until `stop` is set: inputs sent
    /// through the handle are enqueued, the catalog is polled for new
    /// anomalies, and due rows are delivered every `poll_interval_ms`.
    pub fn start(self, stop: Arc<AtomicBool>) -> std::io::Result<AlertHandle> {
        let (sender, receiver) = crossbeam_channel::bounded::<AlertInput>(10_000);
        let poll = std::time::Duration::from_millis(self.config.poll_interval_ms.max(10));
        let thread = std::thread::Builder::new()
            .name("auditlens-alerts".to_string())
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match receiver.recv_timeout(poll) {
                        Ok(input) => {
                            for input in std::iter::once(input).chain(receiver.try_iter()) {
                                let result = match &input {
                                    AlertInput::Anomaly(anomaly) => self.enqueue(anomaly),
                                    AlertInput::Incident(incident) => {
                                        self.enqueue_incident(incident)
                                    }
                                };
                                if let Err(error) = result {
                                    tracing::error!(%error, "could not add an alert to the outbox");
                                }
                            }
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                            std::thread::sleep(poll)
                        }
                    }
                    if let Err(error) = self.enqueue_from_catalog() {
                        tracing::error!(%error, "could not read new anomalies for alerting");
                    }
                    if let Err(error) = self.run_once(Utc::now()) {
                        tracing::error!(%error, "alert delivery round failed");
                    }
                }
            })?;
        Ok(AlertHandle {
            sender,
            thread: Some(thread),
        })
    }
}

fn json_strings(text: Option<String>) -> Vec<String> {
    text.and_then(|text| serde_json::from_str::<Vec<Option<String>>>(&text).ok())
        .map(|values| values.into_iter().flatten().collect())
        .unwrap_or_default()
}

/// The running dispatcher: send it anomalies and incidents; join it after
/// setting the stop flag.
pub struct AlertHandle {
    sender: crossbeam_channel::Sender<AlertInput>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AlertHandle {
    /// Queues an input; if the dispatcher is far behind the input is dropped
    /// here, and the anomaly is still enqueued from the catalog.
    pub fn send(&self, input: AlertInput) {
        if self.sender.try_send(input).is_err() {
            tracing::warn!("alert queue full; the anomaly will be picked up from the catalog");
        }
    }

    pub fn sender(&self) -> crossbeam_channel::Sender<AlertInput> {
        self.sender.clone()
    }

    /// Waits for the thread (set the stop flag first).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert_anomaly(connection: &duckdb::Connection, seq: Option<i64>, id: &str) {
        connection
            .execute(
                "INSERT INTO anomalies (seq, id, detector, kind, identity, cluster, window_start, window_end, severity, score, title, reasons, evidence_audit_ids, detected_at) \
                 VALUES (coalesce(?, nextval('anomaly_seq')), ?, 'rbac.wildcard_grant', 'rule', 'alice', 'default', now()::TIMESTAMP, now()::TIMESTAMP, 'high', 0.9, 't', ['r'], ['a'], now()::TIMESTAMP)",
                duckdb::params![seq, id],
            )
            .expect("insert anomaly");
    }

    fn dispatcher(connection: &duckdb::Connection, directory: &std::path::Path) -> AlertDispatcher {
        let config = AlertsConfig {
            sinks: vec![SinkConfig {
                name: "file".into(),
                kind: SinkKind::File,
                path: Some(directory.join("out.jsonl")),
                min_severity: Severity::Info,
                ..SinkConfig::default()
            }],
            ..AlertsConfig::default()
        };
        AlertDispatcher::new(connection.try_clone().expect("clone"), config, None)
            .expect("dispatcher")
    }

    #[test]
    fn the_overlap_re_read_never_reaches_history() {
        let directory = tempfile::tempdir().expect("tempdir");
        let connection = duckdb::Connection::open_in_memory().expect("duckdb");
        connection
            .execute_batch(crate::store::catalog::CATALOG_SQL)
            .expect("catalog tables");
        for index in 0..3 {
            insert_anomaly(&connection, None, &format!("history-{index}"));
        }
        let first = dispatcher(&connection, directory.path());
        assert_eq!(first.enqueue_from_catalog().expect("first poll"), 0);
        insert_anomaly(&connection, Some(10), "new-1");
        assert_eq!(first.enqueue_from_catalog().expect("poll"), 1);
        // A late commit below the cursor (but after the history) is still enqueued.
        insert_anomaly(&connection, Some(7), "late");
        insert_anomaly(&connection, Some(11), "new-2");
        assert_eq!(first.enqueue_from_catalog().expect("poll"), 2);
        drop(first);
        // After a restart the history is still history and nothing is enqueued twice.
        let second = dispatcher(&connection, directory.path());
        insert_anomaly(&connection, Some(12), "new-3");
        assert_eq!(second.enqueue_from_catalog().expect("poll"), 1);
        let keys: Vec<String> = connection
            .prepare("SELECT alert_key FROM alert_outbox ORDER BY alert_key")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<duckdb::Result<_>>()
            .expect("rows");
        assert_eq!(
            keys,
            [
                "anomaly:late",
                "anomaly:new-1",
                "anomaly:new-2",
                "anomaly:new-3"
            ]
        );
    }

    fn anomaly(id: &str) -> Anomaly {
        let at = DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
        Anomaly {
            id: id.into(),
            detector: "rbac.wildcard_grant".into(),
            kind: AnomalyKind::Rule,
            identity: "alice".into(),
            cluster: "default".into(),
            window_start: at,
            window_end: at,
            severity: Severity::High,
            score: 0.9,
            title: "t".into(),
            reasons: vec!["r".into()],
            evidence_audit_ids: vec!["a".into()],
        }
    }

    #[test]
    fn a_new_row_is_due_at_once_and_a_failed_one_after_its_backoff() {
        let directory = tempfile::tempdir().expect("tempdir");
        let connection = duckdb::Connection::open_in_memory().expect("duckdb");
        let working = dispatcher(&connection, directory.path());
        assert_eq!(working.enqueue(&anomaly("one")).expect("enqueue"), 1);
        // The round's clock is behind the wall clock the row was stamped with.
        let behind = Utc::now() - Duration::hours(1);
        assert_eq!(working.run_once(behind).expect("round").delivered, 1);
        assert_eq!(working.run_once(behind).expect("round").delivered, 0);
        drop(working);

        // A sink that cannot write: its parent folder is a file.
        std::fs::write(directory.path().join("blocker"), b"").expect("file");
        let config = AlertsConfig {
            sinks: vec![SinkConfig {
                name: "broken".into(),
                kind: SinkKind::File,
                path: Some(directory.path().join("blocker/out.jsonl")),
                min_severity: Severity::Info,
                ..SinkConfig::default()
            }],
            initial_backoff_ms: 1_000,
            max_backoff_ms: 1_000,
            ..AlertsConfig::default()
        };
        let broken = AlertDispatcher::new(connection.try_clone().expect("clone"), config, None)
            .expect("dispatcher");
        assert_eq!(broken.enqueue(&anomaly("two")).expect("enqueue"), 1);
        assert_eq!(broken.run_once(behind).expect("round").failed, 1);
        assert_eq!(
            broken.run_once(behind).expect("round").failed,
            0,
            "not retried before its backoff"
        );
        assert_eq!(
            broken
                .run_once(behind + Duration::milliseconds(1_000))
                .expect("round")
                .failed,
            1,
            "retried once the backoff has passed"
        );
    }
}

//! Prometheus metrics: the [`Metrics`] registry other modules increment, the
//! text exposition format (written here, version 0.0.4), and the HTTP server
//! for `/metrics`, `/healthz` and `/readyz`.
//!
//! The design decision to know: counters that already live elsewhere are read
//! through at scrape time, never copied. Ingest counters come from
//! [`IngestStats`]; anomaly, incident, outbox and manifest figures are
//! counted in the catalog by one query each, so `/metrics` always equals the
//! rows stored. Labels are bounded: detector and severity names, quarantine
//! reason codes, sink and model names from the config, audit file base names.

use crate::ingest::IngestStats;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Latency buckets in seconds, shared by every histogram here.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A fixed-bucket histogram with atomic counts (cumulative at exposition).
#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    /// (cumulative counts per bucket bound incl. +Inf, sum in seconds, count).
    fn snapshot(&self) -> (Vec<u64>, f64, u64) {
        let mut cumulative = Vec::with_capacity(self.counts.len());
        let mut running = 0;
        for count in &self.counts {
            running += count.load(Ordering::Relaxed);
            cumulative.push(running);
        }
        (
            cumulative,
            self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            running,
        )
    }
}

/// An admission webhook's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookDecision {
    Allowed,
    Denied,
    Error,
}

impl WebhookDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookDecision::Allowed => "allowed",
            WebhookDecision::Denied => "denied",
            WebhookDecision::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct ModelStatus {
    version: String,
    last_training_seconds: f64,
    trainings_ok: u64,
    trainings_failed: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SinkCounts {
    delivered: u64,
    failed: u64,
}

/// Counters other modules increment. Cheap to share as `Arc<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    queries: AtomicU64,
    query_refusals: AtomicU64,
    query_latency: Histogram,
    webhook_decisions: Mutex<BTreeMap<WebhookDecision, u64>>,
    webhook_latency: Histogram,
    sink_deliveries: Mutex<BTreeMap<String, SinkCounts>>,
    sink_latency: Histogram,
    models: Mutex<BTreeMap<String, ModelStatus>>,
    reports_written: AtomicU64,
    report_failures: AtomicU64,
    report_build_latency: Histogram,
}

impl Metrics {
    /// A query answered (`refused` = rejected by the sandbox or a limit).
    pub fn record_query(&self, seconds: f64, refused: bool) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        if refused {
            self.query_refusals.fetch_add(1, Ordering::Relaxed);
        }
        self.query_latency.observe(seconds);
    }

    /// An admission review answered by the guard webhook.
    pub fn record_webhook_decision(&self, decision: WebhookDecision, seconds: f64) {
        if let Ok(mut decisions) = self.webhook_decisions.lock() {
            *decisions.entry(decision).or_default() += 1;
        }
        self.webhook_latency.observe(seconds);
    }

    /// One delivery attempt to an alert sink.
    pub fn record_sink_delivery(&self, sink: &str, delivered: bool, seconds: f64) {
        if let Ok(mut sinks) = self.sink_deliveries.lock() {
            let counts = sinks.entry(sink.to_string()).or_default();
            if delivered {
                counts.delivered += 1;
            } else {
                counts.failed += 1;
            }
        }
        self.sink_latency.observe(seconds);
    }

    /// A training run of `model`; on success `version` becomes its current version.
    pub fn record_training(&self, model: &str, version: &str, seconds: f64, succeeded: bool) {
        if let Ok(mut models) = self.models.lock() {
            let status = models.entry(model.to_string()).or_default();
            status.last_training_seconds = seconds;
            if succeeded {
                status.version = version.to_string();
                status.trainings_ok += 1;
            } else {
                status.trainings_failed += 1;
            }
        }
    }

    /// A nightly report built (or failed).
    pub fn record_report(&self, seconds: f64, succeeded: bool) {
        if succeeded {
            self.reports_written.fetch_add(1, Ordering::Relaxed);
            self.report_build_latency.observe(seconds);
        } else {
            self.report_failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Builds the text exposition: one `# HELP` and `# TYPE` per family, then its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

/// Escapes a `# HELP` text: backslash and newline.
pub fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        }
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

impl Exposition {
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (label, label_value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label_value(label_value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", format_value(value));
    }

    /// A single unlabelled sample with its family lines.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    pub fn histogram(&mut self, name: &str, help: &str, histogram: &Histogram) {
        self.family(name, "histogram", help);
        let (cumulative, sum, count) = histogram.snapshot();
        for (index, bound) in LATENCY_BUCKETS.iter().enumerate() {
            self.sample(
                &format!("{name}_bucket"),
                &[("le", &format_value(*bound))],
                cumulative[index] as f64,
            );
        }
        self.sample(&format!("{name}_bucket"), &[("le", "+Inf")], count as f64);
        self.sample(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], count as f64);
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// What `/metrics` reads and `/readyz` reports.
pub struct MetricsState {
    pub metrics: Arc<Metrics>,
    pub ingest: Option<Arc<IngestStats>>,
    /// A catalog connection used only by scrapes (one at a time).
    pub catalog: Option<Mutex<duckdb::Connection>>,
    /// Set once the catalog is open and recovery is done.
    pub ready: Arc<AtomicBool>,
}

fn file_label(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

fn render_ingest(out: &mut Exposition, stats: &IngestStats) {
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as f64;
    out.single(
        "auditlens_ingest_lines_total",
        "counter",
        "Audit log lines read.",
        load(&stats.lines),
    );
    out.single(
        "auditlens_ingest_bytes_total",
        "counter",
        "Audit log bytes read (decompressed).",
        load(&stats.bytes_read),
    );
    out.single(
        "auditlens_events_stored_total",
        "counter",
        "Events committed to Parquet.",
        load(&stats.events_stored),
    );
    out.single(
        "auditlens_read_errors_total",
        "counter",
        "Errors reading audit log files.",
        load(&stats.read_errors),
    );
    out.family(
        "auditlens_quarantined_lines_total",
        "counter",
        "Lines that did not decode, by reason code.",
    );
    for (reason, count) in stats.quarantine_reasons() {
        out.sample(
            "auditlens_quarantined_lines_total",
            &[("reason", &reason)],
            count as f64,
        );
    }
    out.single(
        "auditlens_parts_written_total",
        "counter",
        "Parquet parts committed.",
        load(&stats.parts_written),
    );
    out.single(
        "auditlens_part_bytes_written_total",
        "counter",
        "Bytes of Parquet parts committed.",
        load(&stats.part_bytes),
    );
    out.single(
        "auditlens_flush_errors_total",
        "counter",
        "Flushes that failed (retried).",
        load(&stats.flush_errors),
    );
    out.single(
        "auditlens_compactions_total",
        "counter",
        "Hours compacted into one part.",
        load(&stats.compactions),
    );
    out.family(
        "auditlens_flush_duration_seconds",
        "summary",
        "Time to write and commit one flush.",
    );
    out.sample(
        "auditlens_flush_duration_seconds_sum",
        &[],
        load(&stats.flush_micros_total) / 1e6,
    );
    out.sample(
        "auditlens_flush_duration_seconds_count",
        &[],
        load(&stats.flushes),
    );
    out.single(
        "auditlens_last_flush_duration_seconds",
        "gauge",
        "Duration of the most recent flush.",
        load(&stats.flush_micros_last) / 1e6,
    );
    let files = stats.files();
    out.family(
        "auditlens_file_lag_bytes",
        "gauge",
        "Bytes on disk not yet committed, per audit log file.",
    );
    for file in &files {
        out.sample(
            "auditlens_file_lag_bytes",
            &[("file", &file_label(&file.path))],
            file.lag_bytes as f64,
        );
    }
    out.family(
        "auditlens_file_lag_seconds",
        "gauge",
        "Seconds a file has had uncommitted bytes, per audit log file.",
    );
    for file in &files {
        out.sample(
            "auditlens_file_lag_seconds",
            &[("file", &file_label(&file.path))],
            file.lag_seconds,
        );
    }
    out.family(
        "auditlens_file_committed_bytes",
        "gauge",
        "Committed offset (decompressed bytes), per audit log file.",
    );
    for file in &files {
        out.sample(
            "auditlens_file_committed_bytes",
            &[("file", &file_label(&file.path))],
            file.committed_offset as f64,
        );
    }
}

fn table_exists(connection: &duckdb::Connection, name: &str) -> duckdb::Result<bool> {
    connection
        .query_row(
            "SELECT count(*) > 0 FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = ?",
            [name],
            |row| row.get(0),
        )
}

fn has_column(connection: &duckdb::Connection, table: &str, column: &str) -> duckdb::Result<bool> {
    connection.query_row(
        "SELECT count(*) > 0 FROM information_schema.columns WHERE table_catalog = current_database() AND table_schema = 'main' \
         AND table_name = ? AND column_name = ?",
        [table, column],
        |row| row.get(0),
    )
}

fn render_catalog(out: &mut Exposition, connection: &duckdb::Connection) -> duckdb::Result<()> {
    if table_exists(connection, "anomalies")? {
        out.family(
            "auditlens_anomalies_total",
            "counter",
            "Anomalies stored, by detector and severity.",
        );
        let mut statement = connection.prepare(
            "SELECT detector, severity, count(*) FROM anomalies GROUP BY ALL ORDER BY ALL",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (detector, severity, count) = row?;
            out.sample(
                "auditlens_anomalies_total",
                &[("detector", &detector), ("severity", &severity)],
                count as f64,
            );
        }
    }
    if table_exists(connection, "incidents")? {
        let now = chrono::Utc::now().timestamp_micros();
        let open: i64 = if has_column(connection, "incidents", "status")? {
            connection.query_row(
                "SELECT count(*) FROM incidents WHERE status = 'open'",
                [],
                |row| row.get(0),
            )?
        } else {
            connection.query_row(
                "SELECT count(*) FROM incidents WHERE last_seen >= make_timestamp(?) - INTERVAL 24 HOUR",
                [now],
                |row| row.get(0),
            )?
        };
        out.single(
            "auditlens_incidents_open",
            "gauge",
            "Open incidents (status 'open', or, without a status column, a last anomaly less than 24 h old).",
            open as f64,
        );
        let total: i64 =
            connection.query_row("SELECT count(*) FROM incidents", [], |row| row.get(0))?;
        out.single(
            "auditlens_incidents_total",
            "counter",
            "Incidents stored.",
            total as f64,
        );
    }
    if table_exists(connection, "alert_outbox")? {
        let (pending, delivered, abandoned): (i64, i64, i64) = connection.query_row(
            "SELECT count(*) FILTER (WHERE delivered_at IS NULL AND abandoned_at IS NULL), count(*) FILTER (WHERE delivered_at IS NOT NULL), \
                    count(*) FILTER (WHERE abandoned_at IS NOT NULL) FROM alert_outbox",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;
        out.family(
            "auditlens_alert_outbox",
            "gauge",
            "Alert outbox rows (alert × sink) by state.",
        );
        out.sample(
            "auditlens_alert_outbox",
            &[("state", "pending")],
            pending as f64,
        );
        out.sample(
            "auditlens_alert_outbox",
            &[("state", "delivered")],
            delivered as f64,
        );
        out.sample(
            "auditlens_alert_outbox",
            &[("state", "abandoned")],
            abandoned as f64,
        );
    }
    if table_exists(connection, "parts")? {
        let (parts, bytes, rows): (i64, i64, i64) = connection.query_row(
            "SELECT count(*), coalesce(sum(bytes), 0)::BIGINT, coalesce(sum(rows), 0)::BIGINT FROM parts WHERE removed_at IS NULL",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;
        out.single(
            "auditlens_catalog_parts",
            "gauge",
            "Live Parquet parts in the manifest.",
            parts as f64,
        );
        out.single(
            "auditlens_catalog_part_bytes",
            "gauge",
            "Bytes of live Parquet parts in the manifest.",
            bytes as f64,
        );
        out.single(
            "auditlens_catalog_rows",
            "gauge",
            "Rows in live Parquet parts in the manifest.",
            rows as f64,
        );
    }
    Ok(())
}

/// The whole `/metrics` page.
pub fn render(state: &MetricsState) -> String {
    let mut out = Exposition::default();
    let metrics = &state.metrics;
    out.single(
        "auditlens_up",
        "gauge",
        "1 while the process serves metrics.",
        1.0,
    );
    out.single(
        "auditlens_ready",
        "gauge",
        "1 once the catalog is open and start-up recovery is done.",
        if state.ready.load(Ordering::SeqCst) {
            1.0
        } else {
            0.0
        },
    );
    if let Some(stats) = &state.ingest {
        render_ingest(&mut out, stats);
    }
    if let Some(catalog) = &state.catalog {
        let result = match catalog.lock() {
            Ok(connection) => {
                render_catalog(&mut out, &connection).map_err(|error| error.to_string())
            }
            Err(_) => Err("catalog connection poisoned".to_string()),
        };
        if let Err(error) = &result {
            tracing::warn!(%error, "reading catalog counts for /metrics failed");
        }
        out.single(
            "auditlens_catalog_scrape_ok",
            "gauge",
            "1 if the catalog counts in this scrape were read without error.",
            if result.is_ok() { 1.0 } else { 0.0 },
        );
    }
    out.single(
        "auditlens_queries_total",
        "counter",
        "Queries run through the query endpoint.",
        metrics.queries.load(Ordering::Relaxed) as f64,
    );
    out.single(
        "auditlens_query_refusals_total",
        "counter",
        "Queries refused by the sandbox or a limit.",
        metrics.query_refusals.load(Ordering::Relaxed) as f64,
    );
    out.histogram(
        "auditlens_query_duration_seconds",
        "Query latency.",
        &metrics.query_latency,
    );
    out.family(
        "auditlens_webhook_decisions_total",
        "counter",
        "Admission reviews answered by the guard webhook, by decision.",
    );
    if let Ok(decisions) = metrics.webhook_decisions.lock() {
        for (decision, count) in decisions.iter() {
            out.sample(
                "auditlens_webhook_decisions_total",
                &[("decision", decision.as_str())],
                *count as f64,
            );
        }
    }
    out.histogram(
        "auditlens_webhook_duration_seconds",
        "Admission review latency.",
        &metrics.webhook_latency,
    );
    let sinks = metrics
        .sink_deliveries
        .lock()
        .map(|sinks| sinks.clone())
        .unwrap_or_default();
    out.family(
        "auditlens_alert_deliveries_total",
        "counter",
        "Alert delivery attempts that succeeded, per sink.",
    );
    for (sink, counts) in &sinks {
        out.sample(
            "auditlens_alert_deliveries_total",
            &[("sink", sink)],
            counts.delivered as f64,
        );
    }
    out.family(
        "auditlens_alert_delivery_failures_total",
        "counter",
        "Alert delivery attempts that failed, per sink.",
    );
    for (sink, counts) in &sinks {
        out.sample(
            "auditlens_alert_delivery_failures_total",
            &[("sink", sink)],
            counts.failed as f64,
        );
    }
    out.histogram(
        "auditlens_alert_delivery_duration_seconds",
        "Alert delivery latency.",
        &metrics.sink_latency,
    );
    let models = metrics
        .models
        .lock()
        .map(|models| models.clone())
        .unwrap_or_default();
    out.family(
        "auditlens_model_info",
        "gauge",
        "The current version of each model (value 1).",
    );
    for (model, status) in models
        .iter()
        .filter(|(_, status)| !status.version.is_empty())
    {
        out.sample(
            "auditlens_model_info",
            &[("model", model), ("version", &status.version)],
            1.0,
        );
    }
    out.family(
        "auditlens_model_training_duration_seconds",
        "gauge",
        "Duration of each model's last training run.",
    );
    for (model, status) in &models {
        out.sample(
            "auditlens_model_training_duration_seconds",
            &[("model", model)],
            status.last_training_seconds,
        );
    }
    out.family(
        "auditlens_model_trainings_total",
        "counter",
        "Training runs per model and outcome.",
    );
    for (model, status) in &models {
        out.sample(
            "auditlens_model_trainings_total",
            &[("model", model), ("outcome", "ok")],
            status.trainings_ok as f64,
        );
        out.sample(
            "auditlens_model_trainings_total",
            &[("model", model), ("outcome", "failed")],
            status.trainings_failed as f64,
        );
    }
    out.single(
        "auditlens_reports_written_total",
        "counter",
        "Nightly reports written.",
        metrics.reports_written.load(Ordering::Relaxed) as f64,
    );
    out.single(
        "auditlens_report_failures_total",
        "counter",
        "Nightly reports that failed.",
        metrics.report_failures.load(Ordering::Relaxed) as f64,
    );
    out.histogram(
        "auditlens_report_build_duration_seconds",
        "Time to build and write a nightly report.",
        &metrics.report_build_latency,
    );
    out.finish()
}

async fn metrics_handler(
    axum::extract::State(state): axum::extract::State<Arc<MetricsState>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Catalog counts are DuckDB queries: off the async workers.
    match tokio::task::spawn_blocking(move || render(&state)).await {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "rendering metrics failed\n",
        )
            .into_response(),
    }
}

async fn ready_handler(
    axum::extract::State(state): axum::extract::State<Arc<MetricsState>>,
) -> (axum::http::StatusCode, &'static str) {
    if state.ready.load(Ordering::SeqCst) {
        (axum::http::StatusCode::OK, "ready\n")
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// The routes: `/metrics`, `/healthz` (the process answers), `/readyz`.
pub fn router(state: Arc<MetricsState>) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(state)
}

/// Binds `listen` (port 0 picks a free port) and serves on `runtime` until
/// `shutdown` completes. Returns the bound address.
pub fn start(
    runtime: &tokio::runtime::Handle,
    listen: &str,
    state: Arc<MetricsState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let task = runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((address, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_help_and_label_values() {
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
        assert_eq!(escape_label_value("x\"y\\z\n"), "x\\\"y\\\\z\\n");
        let mut out = Exposition::default();
        out.family("m_total", "counter", "help");
        out.sample("m_total", &[("file", "a\"b")], 3.0);
        assert_eq!(
            out.finish(),
            "# HELP m_total help\n# TYPE m_total counter\nm_total{file=\"a\\\"b\"} 3\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let histogram = Histogram::default();
        for seconds in [0.0005, 0.003, 0.003, 20.0] {
            histogram.observe(seconds);
        }
        let (cumulative, sum, count) = histogram.snapshot();
        assert_eq!(count, 4);
        assert_eq!(cumulative[0], 1);
        assert_eq!(cumulative[2], 3);
        assert_eq!(cumulative[LATENCY_BUCKETS.len() - 1], 3);
        assert_eq!(cumulative[LATENCY_BUCKETS.len()], 4);
        assert!((sum - 20.0065).abs() < 1e-6);
    }
}

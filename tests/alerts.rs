//! Alert delivery against a real local HTTP sink (axum on 127.0.0.1:0):
//! the sink fails its first requests, goes down, stays down across a
//! dispatcher restart (dropped and re-created from the same catalog file),
//! comes back, and must end up with every alert exactly once per sink.

use auditlens::alerts::{
    AlertDispatcher, AlertInput, AlertSubject, AlertsConfig, IncidentAlert, SinkConfig, SinkKind,
    signature_header_value,
};
use auditlens::detect::{Anomaly, AnomalyKind, Severity};
use auditlens::metrics::Metrics;
use auditlens::store::catalog::Catalog;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

const SECRET: &[u8] = b"s3cret-for-tests";

#[derive(Default)]
struct SinkState {
    /// Requests still to answer with HTTP 500.
    fail_remaining: usize,
    /// Accepted deliveries per idempotency key, per path.
    accepted: BTreeMap<(String, String), usize>,
    requests: usize,
    bad_signatures: usize,
}

type Shared = Arc<Mutex<SinkState>>;

async fn receive(
    path: &str,
    state: Shared,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let mut state = state.lock().expect("state");
    state.requests += 1;
    if state.fail_remaining > 0 {
        state.fail_remaining -= 1;
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
    }
    let key = if path == "hook" {
        let expected = signature_header_value(SECRET, &body);
        if headers
            .get("x-auditlens-signature")
            .and_then(|value| value.to_str().ok())
            != Some(expected.as_str())
        {
            state.bad_signatures += 1;
            return axum::http::StatusCode::UNAUTHORIZED;
        }
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
        json["idempotency_key"]
            .as_str()
            .expect("idempotency_key in the payload")
            .to_string()
    } else {
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
        let text = json["text"].as_str().expect("slack text").to_string();
        text.rsplit("auditlens key ")
            .next()
            .expect("key in the text")
            .trim_end_matches('_')
            .to_string()
    };
    let header_key = headers
        .get("x-auditlens-idempotency-key")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert_eq!(header_key, key, "header and payload carry the same key");
    *state.accepted.entry((path.to_string(), key)).or_default() += 1;
    axum::http::StatusCode::NO_CONTENT
}

struct SinkServer {
    task: tokio::task::JoinHandle<()>,
}

fn start_sink(
    runtime: &tokio::runtime::Runtime,
    address: SocketAddr,
    state: Shared,
) -> (SinkServer, SocketAddr) {
    use axum::routing::post;
    let hook_state = state.clone();
    let slack_state = state;
    let app = axum::Router::new()
        .route(
            "/hook",
            post(move |headers, body| receive("hook", hook_state.clone(), headers, body)),
        )
        .route(
            "/slack",
            post(move |headers, body| receive("slack", slack_state.clone(), headers, body)),
        );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(address))
        .expect("bind sink");
    let bound = listener.local_addr().expect("address");
    let task = runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (SinkServer { task }, bound)
}

fn stop_sink(runtime: &tokio::runtime::Runtime, server: SinkServer, address: SocketAddr) {
    server.task.abort();
    let _ = runtime.block_on(server.task);
    // The listener is closed once the task is gone: connections are refused.
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "sink is down"
    );
}

fn anomaly(index: usize, severity: Severity) -> Anomaly {
    let start: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().expect("time");
    Anomaly {
        id: format!("anomaly-{index}"),
        detector: if index.is_multiple_of(2) {
            "rbac.wildcard_grant".into()
        } else {
            "novelty.new_ip".into()
        },
        kind: AnomalyKind::Rule,
        identity: format!("user-{index}"),
        cluster: "default".into(),
        window_start: start + Duration::minutes(index as i64),
        window_end: start + Duration::minutes(index as i64 + 1),
        severity,
        score: 0.9,
        title: format!("test anomaly {index}"),
        reasons: vec!["because".into()],
        evidence_audit_ids: vec![format!("audit-{index}")],
    }
}

fn config(sink_address: SocketAddr, directory: &Path) -> AlertsConfig {
    let secret_file = directory.join("secret");
    std::fs::write(&secret_file, [SECRET, b"\n"].concat()).expect("secret file");
    AlertsConfig {
        sinks: vec![
            SinkConfig {
                name: "soc".into(),
                kind: SinkKind::Webhook,
                url: Some(format!("http://{sink_address}/hook")),
                hmac_secret_file: Some(secret_file),
                min_severity: Severity::Low,
                ..SinkConfig::default()
            },
            SinkConfig {
                name: "chat".into(),
                kind: SinkKind::Slack,
                url: Some(format!("http://{sink_address}/slack")),
                min_severity: Severity::Critical,
                alert_on: vec![AlertSubject::Anomaly],
                ..SinkConfig::default()
            },
            SinkConfig {
                name: "archive".into(),
                kind: SinkKind::File,
                path: Some(directory.join("alerts/archive.jsonl")),
                min_severity: Severity::Info,
                ..SinkConfig::default()
            },
        ],
        initial_backoff_ms: 100,
        max_backoff_ms: 400,
        request_timeout_ms: 2_000,
        ..AlertsConfig::default()
    }
}

fn insert_catalog_anomaly(connection: &duckdb::Connection, anomaly: &Anomaly) {
    connection
        .execute(
            "INSERT INTO anomalies (id, detector, kind, identity, cluster, window_start, window_end, severity, score, title, reasons, evidence_audit_ids, detected_at) \
             VALUES (?, ?, 'rule', ?, 'default', make_timestamp(?), make_timestamp(?), ?, ?, ?, ['from the catalog'], [?], now()::TIMESTAMP)",
            duckdb::params![
                anomaly.id,
                anomaly.detector,
                anomaly.identity,
                anomaly.window_start.timestamp_micros(),
                anomaly.window_end.timestamp_micros(),
                anomaly.severity.as_str(),
                anomaly.score,
                anomaly.title,
                anomaly.evidence_audit_ids[0]
            ],
        )
        .expect("insert anomaly");
}

#[test]
fn every_alert_reaches_every_sink_exactly_once_across_failures_outage_and_restart() {
    let directory = tempfile::tempdir().expect("tempdir");
    let data_dir = directory.path().join("data");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let state: Shared = Arc::new(Mutex::new(SinkState {
        fail_remaining: 3,
        ..SinkState::default()
    }));
    let (server, sink_address) = start_sink(
        &runtime,
        "127.0.0.1:0".parse().expect("address"),
        state.clone(),
    );
    let alerts_config = config(sink_address, directory.path());
    let metrics = Arc::new(Metrics::default());

    let mut now: DateTime<Utc> = Utc::now();
    let mut expected_keys: Vec<(String, Severity)> = Vec::new();
    {
        let catalog = Catalog::open(&data_dir).expect("catalog");
        let dispatcher = AlertDispatcher::new(
            catalog.connection().expect("connection"),
            alerts_config.clone(),
            Some(metrics.clone()),
        )
        .expect("dispatcher");
        // Anomalies already in the catalog before the first start are history: not alerted.
        insert_catalog_anomaly(
            &catalog.connection().expect("connection"),
            &anomaly(100, Severity::Critical),
        );
        assert_eq!(dispatcher.enqueue_from_catalog().expect("first poll"), 0);

        for index in 0..6usize {
            let severity = if index.is_multiple_of(3) {
                Severity::Critical
            } else {
                Severity::Medium
            };
            let added = dispatcher
                .enqueue(&anomaly(index, severity))
                .expect("enqueue");
            assert_eq!(added, if severity == Severity::Critical { 3 } else { 2 });
            assert_eq!(
                dispatcher
                    .enqueue(&anomaly(index, severity))
                    .expect("enqueue again"),
                0,
                "enqueued once"
            );
            expected_keys.push((format!("anomaly:anomaly-{index}"), severity));
        }
        // Anomalies the detector writes to the catalog are picked up by seq.
        for index in 6..8 {
            insert_catalog_anomaly(
                &catalog.connection().expect("connection"),
                &anomaly(index, Severity::High),
            );
            expected_keys.push((format!("anomaly:anomaly-{index}"), Severity::High));
        }
        assert_eq!(dispatcher.enqueue_from_catalog().expect("poll"), 4);
        let incident = IncidentAlert {
            id: "inc-1".into(),
            identity: "user-0".into(),
            cluster: "default".into(),
            severity: Severity::High,
            title: "grouped".into(),
            first_seen: now,
            last_seen: now,
            anomaly_count: 2,
            detectors: vec!["rbac.wildcard_grant".into()],
        };
        assert_eq!(
            dispatcher.enqueue_incident(&incident).expect("incident"),
            2,
            "webhook and file take incidents; chat does not"
        );
        expected_keys.push(("incident:inc-1:high".into(), Severity::High));

        // The sink fails its first three requests; retries back off, some get through.
        for _ in 0..4 {
            dispatcher.run_once(now).expect("round");
            now += Duration::seconds(1);
        }
        assert!(
            !state.lock().expect("state").accepted.is_empty(),
            "some alerts delivered before the outage"
        );
        stop_sink(&runtime, server, sink_address);
        // Outage: new alerts cannot reach the HTTP sinks and are retried later.
        for (index, severity) in [
            (8, Severity::Critical),
            (9, Severity::Medium),
            (10, Severity::Critical),
        ] {
            dispatcher
                .enqueue(&anomaly(index, severity))
                .expect("enqueue during outage");
            expected_keys.push((format!("anomaly:anomaly-{index}"), severity));
        }
        let mut failed = 0;
        for _ in 0..3 {
            let round = dispatcher.run_once(now).expect("round");
            failed += round.failed;
            now += Duration::seconds(1);
        }
        assert!(failed >= 2, "both HTTP sinks failed during the outage");
        assert!(
            dispatcher.status().expect("status").pending >= 5,
            "alerts are waiting in the outbox"
        );
        // The daemon stops here (dispatcher and catalog dropped).
    }

    // Restart while the sink is still down.
    let catalog = Catalog::open(&data_dir).expect("catalog reopened");
    let dispatcher = AlertDispatcher::new(
        catalog.connection().expect("connection"),
        alerts_config.clone(),
        Some(metrics.clone()),
    )
    .expect("dispatcher");
    assert_eq!(
        dispatcher
            .enqueue_from_catalog()
            .expect("poll after restart"),
        0,
        "nothing re-enqueued"
    );
    let round = dispatcher
        .run_once(now + Duration::seconds(10))
        .expect("round");
    assert!(round.failed > 0, "the sink is still down after the restart");
    now += Duration::seconds(10);

    // The sink comes back on the same address.
    let (_server, _) = start_sink(&runtime, sink_address, state.clone());
    let mut rounds = 0;
    while dispatcher.status().expect("status").pending > 0 {
        now += Duration::seconds(1);
        dispatcher.run_once(now).expect("round");
        rounds += 1;
        assert!(
            rounds < 50,
            "outbox never drained: {:?}",
            dispatcher.status()
        );
    }

    let state = state.lock().expect("state");
    assert_eq!(state.bad_signatures, 0);
    for (key, severity) in &expected_keys {
        assert_eq!(
            state.accepted.get(&("hook".to_string(), key.clone())),
            Some(&1),
            "webhook got {key} exactly once"
        );
        let chat = state
            .accepted
            .get(&("slack".to_string(), key.clone()))
            .copied();
        if *severity == Severity::Critical && key.starts_with("anomaly:") {
            assert_eq!(chat, Some(1), "chat got {key} exactly once");
        } else {
            assert_eq!(chat, None, "chat filters {key} out");
        }
    }
    let webhook_keys = state
        .accepted
        .keys()
        .filter(|(path, _)| path == "hook")
        .count();
    assert_eq!(
        webhook_keys,
        expected_keys.len(),
        "nothing else was delivered"
    );
    assert!(
        !state
            .accepted
            .keys()
            .any(|(_, key)| key == "anomaly:anomaly-100"),
        "history not alerted"
    );

    let archive = std::fs::read_to_string(directory.path().join("alerts/archive.jsonl"))
        .expect("archive file");
    let mut archived: BTreeMap<String, usize> = BTreeMap::new();
    for line in archive.lines() {
        let json: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        *archived
            .entry(json["idempotency_key"].as_str().expect("key").to_string())
            .or_default() += 1;
    }
    assert_eq!(archived.len(), expected_keys.len());
    assert!(archived.values().all(|count| *count == 1), "{archived:?}");
    let status = dispatcher.status().expect("status");
    assert_eq!(status.pending, 0);
    assert_eq!(status.abandoned, 0);
    let exposition = auditlens::metrics::render(&auditlens::metrics::MetricsState {
        metrics: metrics.clone(),
        ingest: None,
        catalog: None,
        ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
    });
    let failures: f64 = exposition
        .lines()
        .find(|line| line.starts_with("auditlens_alert_delivery_failures_total{sink=\"soc\"}"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .expect("failure counter for soc");
    assert!(
        failures >= 4.0,
        "3 HTTP 500s and at least one refused connection were counted: {failures}"
    );
}

#[test]
fn the_dispatcher_thread_delivers_what_it_is_sent() {
    let directory = tempfile::tempdir().expect("tempdir");
    let data_dir = directory.path().join("data");
    let catalog = Catalog::open(&data_dir).expect("catalog");
    let path = directory.path().join("out.jsonl");
    let config = AlertsConfig {
        sinks: vec![SinkConfig {
            name: "file".into(),
            kind: SinkKind::File,
            path: Some(path.clone()),
            min_severity: Severity::Info,
            ..SinkConfig::default()
        }],
        poll_interval_ms: 20,
        ..AlertsConfig::default()
    };
    let dispatcher = AlertDispatcher::new(catalog.connection().expect("connection"), config, None)
        .expect("dispatcher");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handle = dispatcher.start(stop.clone()).expect("thread");
    handle.send(AlertInput::Anomaly(anomaly(1, Severity::Low)));
    handle.send(AlertInput::Anomaly(anomaly(1, Severity::Low)));
    handle.send(AlertInput::Anomaly(anomaly(2, Severity::High)));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&path)
        .map(|text| text.lines().count())
        .unwrap_or(0)
        < 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    handle.join();
    let text = std::fs::read_to_string(&path).expect("delivered");
    let keys: Vec<String> = text
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("json")["idempotency_key"]
                .as_str()
                .expect("key")
                .to_string()
        })
        .collect();
    assert_eq!(keys, ["anomaly:anomaly-1", "anomaly:anomaly-2"]);
}

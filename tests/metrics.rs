//! `/metrics` over real HTTP, parsed by a strict Prometheus text-format
//! (0.0.4) parser written here, with every figure compared to what was
//! recorded or to the rows stored in a real catalog.

use auditlens::ingest::IngestStats;
use auditlens::metrics::{Metrics, MetricsState, WebhookDecision};
use auditlens::store::catalog::Catalog;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Exposition {
    types: HashMap<String, String>,
    helps: HashMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|sample| sample.name == name && sample.labels == wanted)
            .map(|sample| sample.value)
    }
}

fn valid_metric_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && characters.all(|character| {
            character.is_ascii_alphanumeric() || character == '_' || character == ':'
        })
}

fn valid_label_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
        && !name.starts_with("__")
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        other => other
            .parse::<f64>()
            .map_err(|error| format!("bad value {other:?}: {error}")),
    }
}

/// Parses `{a="x",b="y"}` starting after the `{`; returns the labels and the rest after `}`.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let equals = rest.find('=').ok_or("label without '='")?;
        let name = &rest[..equals];
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[equals + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut characters = rest.char_indices();
        let end = loop {
            let (index, character) = characters.next().ok_or("unterminated label value")?;
            match character {
                '"' => break index,
                '\\' => match characters.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                '\n' => return Err("raw newline in a label value".into()),
                other => value.push(other),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected ',' or '}' after a label".into());
        }
    }
}

/// The family a sample name belongs to, given the declared types.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && matches!(
                types.get(base).map(String::as_str),
                Some("histogram" | "summary")
            )
            && (suffix != "_bucket" || types[base] == "histogram")
        {
            return Some(base);
        }
    }
    None
}

/// A strict parser of the text format: every rule a scraper relies on is an error here.
fn parse_exposition(text: &str) -> Result<Exposition, String> {
    let mut exposition = Exposition::default();
    let mut finished_families: HashSet<String> = HashSet::new();
    let mut current_family: Option<String> = None;
    let mut series: HashSet<(String, BTreeMap<String, String>)> = HashSet::new();
    if !text.ends_with('\n') {
        return Err("exposition must end with a newline".into());
    }
    for (number, line) in text.lines().enumerate() {
        let fail = |message: String| format!("line {}: {message}: {line:?}", number + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let keyword = parts.next().unwrap_or_default();
            let name = parts
                .next()
                .ok_or_else(|| fail("comment without a name".into()))?
                .to_string();
            let rest = parts.next().unwrap_or_default().to_string();
            if !valid_metric_name(&name) {
                return Err(fail("bad metric name".into()));
            }
            if finished_families.contains(&name) {
                return Err(fail("family declared again after its samples".into()));
            }
            match keyword {
                "HELP"
                    if rest.contains('\n')
                        || exposition
                            .helps
                            .insert(name.clone(), rest.clone())
                            .is_some() =>
                {
                    return Err(fail("HELP repeated".into()));
                }
                "TYPE" => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"]
                        .contains(&rest.as_str())
                    {
                        return Err(fail("unknown type".into()));
                    }
                    if exposition.samples.iter().any(|sample| {
                        family_of(&sample.name, &exposition.types) == Some(name.as_str())
                    }) {
                        return Err(fail("TYPE after samples".into()));
                    }
                    if rest == "counter" && !name.ends_with("_total") {
                        return Err(fail("counter names end in _total".into()));
                    }
                    if exposition.types.insert(name.clone(), rest).is_some() {
                        return Err(fail("TYPE repeated".into()));
                    }
                }
                _ => {}
            }
            if let Some(previous) = current_family.replace(name.clone())
                && previous != name
            {
                finished_families.insert(previous);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| fail("sample without a value".into()))?;
        let name = &line[..name_end];
        if !valid_metric_name(name) {
            return Err(fail("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end + 1..]).map_err(fail)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| fail("expected a space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap_or_default()).map_err(fail)?;
        if let Some(timestamp) = fields.next() {
            timestamp
                .parse::<i64>()
                .map_err(|error| fail(format!("bad timestamp: {error}")))?;
        }
        if fields.next().is_some() {
            return Err(fail("trailing fields".into()));
        }
        let family = family_of(name, &exposition.types)
            .ok_or_else(|| fail("sample of an undeclared family".into()))?
            .to_string();
        if finished_families.contains(&family) {
            return Err(fail("samples of a family are not contiguous".into()));
        }
        if current_family.as_deref() != Some(family.as_str())
            && let Some(previous) = current_family.replace(family.clone())
        {
            finished_families.insert(previous);
        }
        let kind = exposition.types[&family].as_str();
        if kind == "counter" && (value.is_nan() || value < 0.0) {
            return Err(fail("negative or NaN counter".into()));
        }
        if name.ends_with("_bucket") && !labels.contains_key("le") {
            return Err(fail("bucket without le".into()));
        }
        if !series.insert((name.to_string(), labels.clone())) {
            return Err(fail("duplicate series".into()));
        }
        exposition.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    // Histograms: ascending le, cumulative counts, +Inf equal to _count.
    for (family, kind) in &exposition.types {
        if kind != "histogram" {
            continue;
        }
        let buckets: Vec<(f64, f64)> = exposition
            .samples
            .iter()
            .filter(|sample| sample.name == format!("{family}_bucket"))
            .map(|sample| {
                (
                    parse_value(&sample.labels["le"]).unwrap_or(f64::NAN),
                    sample.value,
                )
            })
            .collect();
        if buckets.last().map(|bucket| bucket.0) != Some(f64::INFINITY) {
            return Err(format!("{family}: no +Inf bucket"));
        }
        if buckets
            .windows(2)
            .any(|pair| pair[0].0.is_nan() || pair[0].0 >= pair[1].0 || pair[0].1 > pair[1].1)
        {
            return Err(format!("{family}: buckets not ascending and cumulative"));
        }
        let count = exposition
            .value(&format!("{family}_count"), &[])
            .ok_or(format!("{family}: no _count"))?;
        exposition
            .value(&format!("{family}_sum"), &[])
            .ok_or(format!("{family}: no _sum"))?;
        if buckets.last().map(|bucket| bucket.1) != Some(count) {
            return Err(format!("{family}: +Inf bucket differs from _count"));
        }
    }
    Ok(exposition)
}

/// A plain HTTP/1.1 GET: (status, content type, body).
fn http_get(address: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("response");
    let text = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status");
    let content_type = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, content_type, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

#[test]
fn parser_rejects_malformed_expositions() {
    assert!(parse_exposition("# TYPE a_total counter\na_total 1\n").is_ok());
    for bad in [
        "a_total 1\n",                                                      // undeclared
        "# TYPE a_total counter\na_total{x=\"1\"} 1\na_total{x=\"1\"} 2\n", // duplicate
        "# TYPE a counter\na 1\n",                                          // counter name
        "# TYPE a_total counter\na_total{x=\"\\q\"} 1\n",                   // bad escape
        "# TYPE a_total counter\na_total -1\n",                             // negative counter
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // not cumulative
        "# TYPE a_total counter\na_total 1", // no final newline
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted: {bad:?}");
    }
}

#[test]
fn metrics_endpoint_serves_what_was_recorded_and_stored() {
    let directory = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(directory.path()).expect("catalog");
    let connection = catalog.connection().expect("connection");
    connection
        .execute_batch(
            "INSERT INTO anomalies (id, detector, kind, identity, cluster, window_start, window_end, severity, score, title, reasons, evidence_audit_ids, detected_at)
             SELECT 'a-' || i, CASE WHEN i % 3 = 0 THEN 'rbac.wildcard_grant' ELSE 'novelty.new_ip' END, 'rule', 'u', 'default',
                    now()::TIMESTAMP, now()::TIMESTAMP, CASE WHEN i % 2 = 0 THEN 'high' ELSE 'low' END, 1.0, 't', [], [], now()::TIMESTAMP
             FROM range(17) r(i);
             INSERT INTO incidents VALUES
               ('i-open', 'u', 'default', now()::TIMESTAMP - INTERVAL 2 HOUR, now()::TIMESTAMP - INTERVAL 1 HOUR, 'high', 't', 2, ['x'], now()::TIMESTAMP),
               ('i-old', 'u', 'default', now()::TIMESTAMP - INTERVAL 3 DAY, now()::TIMESTAMP - INTERVAL 3 DAY, 'low', 't', 1, ['x'], now()::TIMESTAMP);",
        )
        .expect("rows");

    let stats = Arc::new(IngestStats::default());
    stats.record_decoded(40, ["not_json", "not_json", "line_too_long"].into_iter());
    stats.events_stored.fetch_add(37, Ordering::Relaxed);
    stats.bytes_read.fetch_add(12_345, Ordering::Relaxed);
    stats.flushes.fetch_add(4, Ordering::Relaxed);
    stats
        .flush_micros_total
        .fetch_add(2_500_000, Ordering::Relaxed);
    stats.record_committed("fp1", "/var/log/kubernetes/audit/audit \"live\".log", 1_000);
    stats.record_file_size(
        "/var/log/kubernetes/audit/audit \"live\".log",
        1_500,
        true,
        std::time::Duration::from_secs(3),
    );

    let metrics = Arc::new(Metrics::default());
    metrics.record_query(0.004, false);
    metrics.record_query(0.2, false);
    metrics.record_query(0.0001, true);
    metrics.record_webhook_decision(WebhookDecision::Denied, 0.003);
    metrics.record_webhook_decision(WebhookDecision::Allowed, 0.002);
    metrics.record_webhook_decision(WebhookDecision::Allowed, 0.002);
    metrics.record_sink_delivery("soc", false, 0.5);
    metrics.record_sink_delivery("soc", true, 0.05);
    metrics.record_training("per-identity-kmeans", "20261126T020000", 12.5, true);

    let ready = Arc::new(AtomicBool::new(false));
    let state = Arc::new(MetricsState {
        metrics: metrics.clone(),
        ingest: Some(stats.clone()),
        catalog: Some(Mutex::new(catalog.connection().expect("connection"))),
        ready: ready.clone(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (shutdown_sender, shutdown) = tokio::sync::oneshot::channel::<()>();
    let (address, server) =
        auditlens::metrics::start(runtime.handle(), "127.0.0.1:0", state, async move {
            let _ = shutdown.await;
        })
        .expect("metrics server");
    assert_ne!(address.port(), 0);

    assert_eq!(http_get(address, "/healthz").0, 200);
    assert_eq!(
        http_get(address, "/readyz").0,
        503,
        "not ready before the catalog is"
    );
    ready.store(true, Ordering::SeqCst);
    assert_eq!(http_get(address, "/readyz").0, 200);

    let (status, content_type, body) = http_get(address, "/metrics");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let exposition = parse_exposition(&body).unwrap_or_else(|error| panic!("{error}\n{body}"));
    for family in exposition.types.keys() {
        assert!(exposition.helps.contains_key(family), "{family} has HELP");
    }

    // Rows stored: anomalies by detector and severity, open incidents.
    let mut statement = connection
        .prepare("SELECT detector, severity, count(*) FROM anomalies GROUP BY ALL")
        .expect("prepare");
    let stored: Vec<(String, String, i64)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("query")
        .map(|row| row.expect("row"))
        .collect();
    assert_eq!(stored.len(), 4);
    for (detector, severity, count) in &stored {
        assert_eq!(
            exposition.value(
                "auditlens_anomalies_total",
                &[("detector", detector), ("severity", severity)]
            ),
            Some(*count as f64)
        );
    }
    let exposed_total: f64 = exposition
        .samples
        .iter()
        .filter(|sample| sample.name == "auditlens_anomalies_total")
        .map(|sample| sample.value)
        .sum();
    assert_eq!(exposed_total, 17.0);
    assert_eq!(exposition.value("auditlens_incidents_open", &[]), Some(1.0));
    assert_eq!(
        exposition.value("auditlens_incidents_total", &[]),
        Some(2.0)
    );

    // Ingest read-through.
    assert_eq!(
        exposition.value("auditlens_ingest_lines_total", &[]),
        Some(40.0)
    );
    assert_eq!(
        exposition.value("auditlens_events_stored_total", &[]),
        Some(37.0)
    );
    assert_eq!(
        exposition.value("auditlens_ingest_bytes_total", &[]),
        Some(12_345.0)
    );
    assert_eq!(
        exposition.value(
            "auditlens_quarantined_lines_total",
            &[("reason", "not_json")]
        ),
        Some(2.0)
    );
    assert_eq!(
        exposition.value(
            "auditlens_quarantined_lines_total",
            &[("reason", "line_too_long")]
        ),
        Some(1.0)
    );
    assert_eq!(
        exposition.value("auditlens_flush_duration_seconds_count", &[]),
        Some(4.0)
    );
    assert_eq!(
        exposition.value("auditlens_flush_duration_seconds_sum", &[]),
        Some(2.5)
    );
    assert_eq!(
        exposition.value(
            "auditlens_file_lag_bytes",
            &[("file", "audit \"live\".log")]
        ),
        Some(500.0),
        "label escaped and parsed back"
    );
    assert_eq!(
        exposition.value(
            "auditlens_file_lag_seconds",
            &[("file", "audit \"live\".log")]
        ),
        Some(3.0)
    );

    // Recorded by other modules.
    assert_eq!(exposition.value("auditlens_queries_total", &[]), Some(3.0));
    assert_eq!(
        exposition.value("auditlens_query_refusals_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        exposition.value("auditlens_query_duration_seconds_count", &[]),
        Some(3.0)
    );
    assert_eq!(
        exposition.value(
            "auditlens_query_duration_seconds_bucket",
            &[("le", "0.005")]
        ),
        Some(2.0)
    );
    assert_eq!(
        exposition.value("auditlens_query_duration_seconds_bucket", &[("le", "0.1")]),
        Some(2.0)
    );
    assert_eq!(
        exposition.value("auditlens_query_duration_seconds_bucket", &[("le", "0.25")]),
        Some(3.0)
    );
    assert_eq!(
        exposition.value(
            "auditlens_webhook_decisions_total",
            &[("decision", "allowed")]
        ),
        Some(2.0)
    );
    assert_eq!(
        exposition.value(
            "auditlens_webhook_decisions_total",
            &[("decision", "denied")]
        ),
        Some(1.0)
    );
    assert_eq!(
        exposition.value(
            "auditlens_alert_delivery_failures_total",
            &[("sink", "soc")]
        ),
        Some(1.0)
    );
    assert_eq!(
        exposition.value("auditlens_alert_deliveries_total", &[("sink", "soc")]),
        Some(1.0)
    );
    assert_eq!(
        exposition.value(
            "auditlens_model_info",
            &[
                ("model", "per-identity-kmeans"),
                ("version", "20261126T020000")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        exposition.value(
            "auditlens_model_training_duration_seconds",
            &[("model", "per-identity-kmeans")]
        ),
        Some(12.5)
    );
    assert_eq!(
        exposition.value("auditlens_catalog_scrape_ok", &[]),
        Some(1.0)
    );

    // A later scrape sees new rows.
    connection
        .execute_batch(
            "INSERT INTO anomalies (id, detector, kind, identity, cluster, window_start, window_end, severity, score, title, reasons, evidence_audit_ids, detected_at)
             VALUES ('late', 'rbac.wildcard_grant', 'rule', 'u', 'default', now()::TIMESTAMP, now()::TIMESTAMP, 'critical', 1.0, 't', [], [], now()::TIMESTAMP)",
        )
        .expect("late row");
    let exposition = parse_exposition(&http_get(address, "/metrics").2).expect("parses");
    assert_eq!(
        exposition.value(
            "auditlens_anomalies_total",
            &[
                ("detector", "rbac.wildcard_grant"),
                ("severity", "critical")
            ]
        ),
        Some(1.0)
    );

    let _ = shutdown_sender.send(());
    runtime
        .block_on(server)
        .expect("joined")
        .expect("served cleanly");
}

//! Live detection latency (issue 4's bar, goal 1 s): the real daemon tails an
//! audit folder that receives steady background traffic (kubelet lease
//! renewals and controller reads, AUDITLENS_BENCH_RATE lines/s, default 200);
//! every AUDITLENS_BENCH_INTERVAL_MS (default 250) a probe line is appended
//! that a rule must catch (a person execs into kube-system, a new person each
//! time so no habit or cooldown applies). A `WatchAnomalies` client receives
//! each probe's anomaly once the daemon has stored it in the `anomalies`
//! table; the latency is from the moment the line was written (flushed to the
//! file) to the moment the client holds the anomaly. Reports p50/p99/max over
//! AUDITLENS_BENCH_PROBES probes (default 200) and how many never arrived.
//!
//! Run: `cargo bench --bench live_latency` (figures go to docs/PERFORMANCE.md).

use auditlens::api::client::{ClientOptions, connect};
use auditlens::api::proto;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

use support::{setting, start_daemon};

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn event_line(
    audit_id: &str,
    user: &str,
    verb: &str,
    resource: &str,
    subresource: Option<&str>,
    namespace: &str,
    name: &str,
) -> String {
    let time = now_rfc3339();
    let mut object_ref = serde_json::json!({
        "resource": resource,
        "namespace": namespace,
        "name": name,
        "apiVersion": "v1",
    });
    if let Some(subresource) = subresource {
        object_ref["subresource"] = subresource.into();
    }
    let uri = match subresource {
        Some(subresource) => {
            format!("/api/v1/namespaces/{namespace}/{resource}/{name}/{subresource}?command=ls")
        }
        None => format!("/api/v1/namespaces/{namespace}/{resource}/{name}"),
    };
    let line = serde_json::json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.7"],
        "userAgent": "kubectl/v1.34.0 (linux/amd64)",
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": time,
        "stageTimestamp": time,
    });
    format!("{line}\n")
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open audit.log");
    file.write_all(text.as_bytes()).expect("append");
    file.flush().expect("flush");
}

fn main() {
    let rate = setting("AUDITLENS_BENCH_RATE", 200);
    let interval = Duration::from_millis(setting("AUDITLENS_BENCH_INTERVAL_MS", 250));
    let probes = setting("AUDITLENS_BENCH_PROBES", 200) as usize;

    let scratch = tempfile::tempdir().expect("temp dir");
    let audit = scratch.path().join("audit");
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&audit).expect("audit dir");
    let log = audit.join("audit.log");
    append(
        &log,
        &event_line(
            "warmup-0",
            "system:node:worker-0",
            "get",
            "nodes",
            None,
            "",
            "worker-0",
        ),
    );

    let (daemon, address) = start_daemon(&data, &audit, &["--quiet"]);

    // Background traffic from a writer thread, in 10 ms slices.
    let running = Arc::new(AtomicBool::new(true));
    let writer_lock = Arc::new(Mutex::new(()));
    let background = {
        let running = running.clone();
        let log = log.clone();
        let writer_lock = writer_lock.clone();
        std::thread::spawn(move || {
            let mut counter = 0u64;
            let per_slice = (rate / 100).max(1);
            while running.load(Ordering::Relaxed) {
                let mut text = String::new();
                for _ in 0..per_slice {
                    counter += 1;
                    let node = format!("worker-{}", counter % 12);
                    text.push_str(&if counter.is_multiple_of(3) {
                        event_line(
                            &format!("bg-{counter}"),
                            "system:serviceaccount:kube-system:replicaset-controller",
                            "list",
                            "pods",
                            None,
                            "default",
                            "",
                        )
                    } else {
                        event_line(
                            &format!("bg-{counter}"),
                            &format!("system:node:{node}"),
                            "update",
                            "leases",
                            None,
                            "kube-node-lease",
                            &node,
                        )
                    });
                }
                if let Ok(_guard) = writer_lock.lock() {
                    append(&log, &text);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let options = ClientOptions {
        server: format!("http://{address}"),
        ..ClientOptions::default()
    };
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let (latencies, missing) = runtime.block_on(async {
        let mut client = connect(&options).await.expect("connect");
        let mut stream = client
            .watch_anomalies(proto::WatchAnomaliesRequest {
                filter: Some(proto::AnomalyFilter::default()),
                after_seq: 0,
            })
            .await
            .expect("watch")
            .into_inner();
        // Give the daemon a moment to read the first traffic, then probe.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let prober = {
            let sent = sent.clone();
            let log = log.clone();
            let writer_lock = writer_lock.clone();
            tokio::task::spawn_blocking(move || {
                for index in 0..probes {
                    let user = format!("probe-{index}@example.com");
                    let line = event_line(
                        &format!("probe-{index}"),
                        &user,
                        "create",
                        "pods",
                        Some("exec"),
                        "kube-system",
                        "coredns-5d78c9869d-abcde",
                    );
                    if let Ok(_guard) = writer_lock.lock() {
                        append(&log, &line);
                        if let Ok(mut sent) = sent.lock() {
                            sent.insert(user, Instant::now());
                        }
                    }
                    std::thread::sleep(interval);
                }
            })
        };
        let mut latencies = Vec::new();
        let deadline =
            tokio::time::Instant::now() + interval * probes as u32 + Duration::from_secs(30);
        loop {
            let next = tokio::time::timeout_at(deadline, stream.message()).await;
            let Ok(Ok(Some(message))) = next else {
                break;
            };
            let Some(anomaly) = message.anomaly else {
                continue;
            };
            let received = Instant::now();
            let started = sent
                .lock()
                .ok()
                .and_then(|mut sent| sent.remove(&anomaly.identity));
            if let Some(started) = started {
                latencies.push(received - started);
                if latencies.len() == probes {
                    break;
                }
            }
        }
        prober.await.expect("prober");
        let missing = sent.lock().map(|sent| sent.len()).unwrap_or(probes);
        (latencies, missing)
    });
    running.store(false, Ordering::Relaxed);
    let _ = background.join();
    drop(daemon);

    let mut latencies = latencies;
    latencies.sort();
    let at = |fraction: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((latencies.len() as f64 - 1.0) * fraction).round() as usize;
        latencies[index.min(latencies.len() - 1)].as_secs_f64() * 1000.0
    };
    println!(
        "live_latency: {} probes every {:?} over {rate} lines/s of background traffic: arrived {}, missing {missing}; append → WatchAnomalies p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (goal: 1 s)",
        probes,
        interval,
        latencies.len(),
        at(0.50),
        at(0.99),
        at(1.0),
    );
}

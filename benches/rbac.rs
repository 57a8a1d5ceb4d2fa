//! RBAC benchmarks (harness = false; run with `cargo bench --bench rbac`):
//!
//! 1. `audit`: `audit_snapshot` over a generated snapshot of 5,000 roles and
//!    20,000 bindings (the CLI's time and peak RSS are measured with
//!    `/usr/bin/time -v`, see docs/RBAC.md).
//! 2. `webhook`: the guard over loopback HTTPS, open loop at a fixed rate
//!    (default 500 reviews/s for 10 s): each request's latency is measured
//!    from its *scheduled* send time, so queueing counts; then a closed-loop
//!    burst for the maximum rate. Bounded in time; loopback only.
//!
//! Environment: AUDITLENS_BENCH_RATE (reviews/s), AUDITLENS_BENCH_SECONDS.

use auditlens::rbac::config::{GuardConfig, RbacConfig};
use auditlens::rbac::guard::Guard;
use auditlens::rbac::guard_server::{serve, tls_config};
use auditlens::rbac::synthetic::generate_snapshot;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn audit_benchmark() {
    let started = Instant::now();
    let snapshot = generate_snapshot(5_000, 20_000, 1);
    println!(
        "audit: generated 5,000 roles / 20,000 bindings in {:?}",
        started.elapsed()
    );
    let config = RbacConfig::default();
    let mut timings = Vec::new();
    let mut count = 0;
    for _ in 0..5 {
        let started = Instant::now();
        count = auditlens::rbac::audit_snapshot(&snapshot, &config).len();
        timings.push(started.elapsed());
    }
    timings.sort();
    println!(
        "audit: audit_snapshot median {:?} (min {:?}, max {:?}) over 5 runs, {count} findings",
        timings[2], timings[0], timings[4]
    );
}

const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"group":"rbac.authorization.k8s.io","version":"v1","kind":"ClusterRole"},"resource":{"group":"rbac.authorization.k8s.io","version":"v1","resource":"clusterroles"},"name":"ops","operation":"CREATE","userInfo":{"username":"alice","groups":["system:authenticated"]},"object":{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"ops"},"rules":[{"apiGroups":[""],"resources":["pods","services","configmaps"],"verbs":["get","list","watch"]},{"apiGroups":["apps"],"resources":["deployments"],"verbs":["*"]},{"apiGroups":[""],"resources":["nodes/proxy"],"verbs":["get"]}]},"dryRun":false}}"#;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(address: std::net::SocketAddr, roots: Arc<rustls::ClientConfig>) -> Sender {
    let connector = tokio_rustls::TlsConnector::from(roots);
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("http");
    tokio::spawn(connection);
    sender
}

async fn send(sender: &mut Sender) {
    let request = hyper::Request::post("/validate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(REVIEW.as_bytes())))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await.expect("body");
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1)]
}

async fn webhook_benchmark(rate: u64, seconds: u64) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let der = certified.cert.der().clone();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let tls = tls_config(vec![der.clone()], key).expect("tls");
    let guard = Arc::new(Guard::new(
        GuardConfig::default(),
        RbacConfig::default(),
        None,
        "bench".into(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(guard.clone(), listener, tls, async {
        let _ = stopped.await;
    }));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).expect("root");
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );

    // Open loop: a fixed schedule; workers take the next due request.
    let workers = 16;
    let total = rate * seconds;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let (schedule_sender, schedule) = async_channel(total as usize);
    let schedule = Arc::new(tokio::sync::Mutex::new(schedule));
    let mut handles = Vec::new();
    for _ in 0..workers {
        let schedule = schedule.clone();
        let mut sender = connect(address, client.clone()).await;
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let due = { schedule.lock().await.recv().await };
                let Some(due) = due else { break };
                send(&mut sender).await;
                latencies.push(due.elapsed());
            }
            latencies
        }));
    }
    let started = Instant::now();
    for index in 0..total {
        let due = started + interval * index as u32;
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        schedule_sender.send(due).await.expect("schedule");
    }
    drop(schedule_sender);
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "webhook open loop: {} reviews at {rate}/s target in {:.2?} = {:.0}/s achieved; latency p50 {:?} p99 {:?} max {:?}",
        latencies.len(),
        elapsed,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );

    // Closed loop: as fast as 16 connections go, for 3 s.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let mut sender = connect(address, client.clone()).await;
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                send(&mut sender).await;
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let mut burst = Vec::new();
    for handle in handles {
        burst.extend(handle.await.expect("worker"));
    }
    burst.sort();
    println!(
        "webhook closed loop (16 connections, 3 s): {:.0} reviews/s; latency p50 {:?} p99 {:?}",
        burst.len() as f64 / 3.0,
        percentile(&burst, 0.50),
        percentile(&burst, 0.99)
    );
    println!(
        "webhook: guard counted {} reviews, {} denied",
        guard
            .metrics
            .reviews
            .load(std::sync::atomic::Ordering::Relaxed),
        guard
            .metrics
            .denied
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = stop.send(());
}

/// A bounded mpsc channel (tokio) shaped like async-channel's pair.
fn async_channel(
    capacity: usize,
) -> (
    tokio::sync::mpsc::Sender<Instant>,
    tokio::sync::mpsc::Receiver<Instant>,
) {
    tokio::sync::mpsc::channel(capacity.max(1))
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we use.
    let rate: u64 = std::env::var("AUDITLENS_BENCH_RATE")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(500);
    let seconds: u64 = std::env::var("AUDITLENS_BENCH_SECONDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10);
    audit_benchmark();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(webhook_benchmark(rate, seconds));
}

//! Load benchmark of the gRPC API: N concurrent clients run the canned
//! investigations (sql/investigations) against the real binary for a fixed
//! time over a day of synthetic events, and report errors, latency
//! percentiles and queries per second.
//!
//! Run: `cargo bench --bench api_load` (figures go to docs/API.md).
//! Knobs (environment): AUDITLENS_BENCH_SECONDS (60), AUDITLENS_BENCH_CLIENTS
//! (32), AUDITLENS_BENCH_ROWS_PER_HOUR (20000), AUDITLENS_BENCH_CONCURRENT
//! (server --max-concurrent-queries, default 2 = the machine's cores).

use auditlens::api::client::{ClientOptions, connect, run_query};
use auditlens::api::{investigations, proto};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// One day (24 hour partitions) of synthetic events: 200 identities, 12
/// namespaces, secrets reads, RBAC changes, 403s and exec sessions.
fn write_day(data_dir: &std::path::Path, rows_per_hour: u64) {
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    for hour in 0..24u32 {
        let columns: Vec<String> = auditlens::store::schema::duckdb_column_types()
            .into_iter()
            .map(|(name, sql_type)| {
                let expression = match name {
                    "ts" | "stage_ts" => format!(
                        "TIMESTAMP '2026-11-26 {hour:02}:00:00' + to_microseconds(CAST(i * 3600000000 // {rows_per_hour} AS BIGINT))"
                    ),
                    "audit_id" => format!("'audit-{hour:02}-' || i"),
                    "stage" => "'ResponseComplete'".into(),
                    "level" => "'Metadata'".into(),
                    "verb" => "['get','list','watch','create','delete','patch','update','get','get','list'][1 + CAST(hash(i) % 10 AS BIGINT)]".into(),
                    "username" => "CASE WHEN i % 3 = 0 THEN 'system:serviceaccount:ns-' || (i % 12) || ':sa-' || (i % 40) ELSE 'user-' || (hash(i * 7) % 160) END".into(),
                    "identity_kind" => "CASE WHEN i % 3 = 0 THEN 'service_account' ELSE 'user' END".into(),
                    "user_groups" => "['system:authenticated']".into(),
                    "source_ip" => "'10.' || (hash(i) % 4) || '.0.' || (hash(i * 13) % 50)".into(),
                    "source_ips" => "['10.' || (hash(i) % 4) || '.0.' || (hash(i * 13) % 50)]".into(),
                    "user_agent" => "['kubectl/v1.34.0','client-go/v1.34.0','helm/v3.16'][1 + i % 3]".into(),
                    "api_group" => "CASE WHEN i % 97 = 0 THEN 'rbac.authorization.k8s.io' ELSE NULL END".into(),
                    "api_version" => "'v1'".into(),
                    "resource" => "CASE WHEN i % 97 = 0 THEN 'rolebindings' ELSE ['pods','secrets','configmaps','services','deployments'][1 + i % 5] END".into(),
                    "subresource" => "CASE WHEN i % 500 = 0 THEN 'exec' ELSE NULL END".into(),
                    "namespace" => "'ns-' || (hash(i * 3) % 12)".into(),
                    "name" => "'object-' || (i % 100)".into(),
                    "response_code" => "CASE WHEN hash(i * 5) % 50 = 0 THEN 403 ELSE 200 END".into(),
                    "source_file" => "'/var/log/kubernetes/audit.log'".into(),
                    "source_fingerprint" => "'fingerprint-bench'".into(),
                    "source_offset" => format!("({hour} * 100000000 + i * 400)"),
                    _ => format!("CAST(NULL AS {sql_type})"),
                };
                format!("CAST({expression} AS {sql_type}) AS {name}")
            })
            .collect();
        let part = data_dir.join(format!(
            "events/cluster=default/date=2026-11-26/hour={hour:02}"
        ));
        std::fs::create_dir_all(&part).expect("mkdir");
        connection
            .execute_batch(&format!(
                "COPY (SELECT {} FROM range({rows_per_hour}) t(i) ORDER BY ts) TO '{}' (FORMAT parquet, COMPRESSION zstd)",
                columns.join(", "),
                part.join("part-01BENCH.parquet").display()
            ))
            .expect("write parquet");
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let seconds = setting("AUDITLENS_BENCH_SECONDS", 60);
    let clients = setting("AUDITLENS_BENCH_CLIENTS", 32) as usize;
    let rows_per_hour = setting("AUDITLENS_BENCH_ROWS_PER_HOUR", 20_000);
    let concurrent = setting("AUDITLENS_BENCH_CONCURRENT", 2);

    let data = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    write_day(data.path(), rows_per_hour);
    eprintln!(
        "wrote {} events in {:.1} s",
        rows_per_hour * 24,
        started.elapsed().as_secs_f64()
    );

    let mut server = Command::new(env!("CARGO_BIN_EXE_auditlens"))
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "api-serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--max-concurrent-queries",
        ])
        .arg(concurrent.to_string())
        .args(["--max-queued-queries", "256"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let address: serde_json::Value = serde_json::from_str(line.trim()).expect("json line");
    let options = ClientOptions {
        server: format!("http://{}", address["address"].as_str().expect("address")),
        ..ClientOptions::default()
    };

    // Each investigation with parameters a real analyst would give.
    let workload: Vec<(String, String, HashMap<String, String>)> = investigations::all()
        .into_iter()
        .map(|investigation| {
            let mut given = BTreeMap::new();
            for parameter in &investigation.parameters {
                let value = match parameter.name.as_str() {
                    "namespace" => Some("ns-3"),
                    "identity" => Some("user-42"),
                    "since" => Some("2026-11-26 06:00:00"),
                    "until" => Some("2026-11-26 18:00:00"),
                    _ => None,
                };
                if let Some(value) = value {
                    given.insert(parameter.name.clone(), value.to_string());
                }
            }
            let bound = investigation.bind(&given).expect("parameters");
            (
                investigation.name.clone(),
                investigation.sql.clone(),
                bound.into_iter().collect(),
            )
        })
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let results = runtime.block_on(async {
        let mut tasks = Vec::new();
        for client_index in 0..clients {
            let options = options.clone();
            let workload = workload.clone();
            tasks.push(tokio::spawn(async move {
                let mut client = connect(&options).await.expect("connect");
                let mut samples: Vec<(String, Duration, Option<String>)> = Vec::new();
                let mut turn = client_index;
                while Instant::now() < deadline {
                    let (name, sql, parameters) = &workload[turn % workload.len()];
                    turn += 1;
                    let began = Instant::now();
                    let request = proto::QueryRequest {
                        sql: sql.clone(),
                        parameters: parameters.clone(),
                        ..proto::QueryRequest::default()
                    };
                    let outcome = run_query(&mut client, request).await;
                    samples.push((
                        name.clone(),
                        began.elapsed(),
                        outcome.err().map(|error| error.to_string()),
                    ));
                }
                samples
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("client task"));
        }
        all
    });
    let elapsed = seconds as f64;
    let _ = server.kill();
    let _ = server.wait();

    let errors: Vec<&String> = results
        .iter()
        .filter_map(|(_, _, error)| error.as_ref())
        .collect();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, latency, _)| *latency).collect();
    latencies.sort();
    println!(
        "api_load: {clients} clients, {seconds} s, {} events over 24 h, server max-concurrent-queries {concurrent}",
        rows_per_hour * 24
    );
    println!(
        "queries {}  errors {}  queries/s {:.1}  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        results.len(),
        errors.len(),
        results.len() as f64 / elapsed,
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
    let mut by_name: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for (name, latency, _) in &results {
        by_name.entry(name.as_str()).or_default().push(*latency);
    }
    for (name, mut samples) in by_name {
        samples.sort();
        println!(
            "  {name:<22} n {:>5}  p50 {:>7.1} ms  p99 {:>7.1} ms",
            samples.len(),
            percentile(&samples, 0.50).as_secs_f64() * 1000.0,
            percentile(&samples, 0.99).as_secs_f64() * 1000.0
        );
    }
    if let Some(first) = errors.first() {
        println!("first error: {first}");
    }
}

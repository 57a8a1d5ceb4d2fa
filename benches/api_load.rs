//! Load benchmark of the gRPC API against the running daemon: a day of
//! simulated cluster history is ingested (the real `simulate` and `ingest`
//! commands), then `auditlens serve` tails a live simulated cluster while N
//! concurrent clients run the canned investigations (sql/investigations) for
//! a fixed time. Reports errors, latency percentiles, queries per second and
//! the ingest lag the daemon kept meanwhile (now − newest stored event time of
//! the live traffic, sampled every second straight from the Parquet folder,
//! as the soak test measures it).
//!
//! Run: `cargo bench --bench api_load` (figures go to docs/PERFORMANCE.md).
//! Knobs (environment): AUDITLENS_BENCH_SECONDS (60), AUDITLENS_BENCH_CLIENTS
//! (32), AUDITLENS_BENCH_HISTORY_RATE (events/s of the ingested day, 50),
//! AUDITLENS_BENCH_LIVE_RATE (events/s written while the clients run, 200),
//! AUDITLENS_BENCH_CONCURRENT (server --max-concurrent-queries, default 2 =
//! the machine's cores). The ingested day is kept in
//! <target>/auditlens-api-bench/<rate> and copied for every run.

use auditlens::api::client::{ClientOptions, connect, run_query};
use auditlens::api::{investigations, proto};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod support;

use support::{KillOnDrop, auditlens, setting, start_daemon};

fn run(command: &mut Command, what: &str) {
    let status = command.status().expect(what);
    assert!(status.success(), "{what} failed: {status}");
}

/// A day of simulated history, ingested once and kept for later runs.
fn history(rate: u64) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let root = PathBuf::from(target)
        .join("auditlens-api-bench")
        .join(rate.to_string());
    let data = root.join("data");
    if data.join("ready").exists() {
        eprintln!("reusing the ingested day in {}", data.display());
        return data;
    }
    let _ = std::fs::remove_dir_all(&root);
    let simulated = root.join("sim");
    let started = Instant::now();
    run(
        auditlens()
            .args([
                "simulate",
                "--days",
                "1",
                "--warmup-days",
                "1",
                "--gzip",
                "--quiet",
            ])
            .args(["--rate", &rate.to_string(), "--out"])
            .arg(&simulated),
        "simulate",
    );
    run(
        auditlens()
            .args(["ingest", "--no-progress", "--quiet", "--data-dir"])
            .arg(&data)
            .arg(&simulated),
        "ingest",
    );
    run(
        auditlens()
            .args([
                "train",
                "--quiet",
                "--until",
                "2026-11-02T00:00:00Z",
                "--data-dir",
            ])
            .arg(&data),
        "train",
    );
    let _ = std::fs::remove_dir_all(&simulated);
    std::fs::write(data.join("ready"), b"").expect("marker");
    eprintln!(
        "simulated, ingested and trained a day at {rate} events/s in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    data
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The busiest person and namespace of the ingested day: the parameters an
/// analyst would give the investigations.
fn busiest(data: &Path) -> (String, String) {
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    let events = data.join("events/*/*/*/*.parquet");
    let pick = |column: &str, filter: &str| -> String {
        connection
            .query_row(
                &format!(
                    "SELECT {column} FROM read_parquet('{}', hive_partitioning = true) WHERE {filter} GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
                    events.display()
                ),
                [],
                |row| row.get(0),
            )
            .expect("busiest")
    };
    (
        pick("username", "identity_kind = 'user'"),
        pick(
            "namespace",
            "namespace IS NOT NULL AND namespace <> 'kube-system'",
        ),
    )
}

/// Now minus the newest stored event of today's live traffic, seconds.
fn lag_seconds(connection: &duckdb::Connection, data: &Path) -> Option<f64> {
    let today = chrono::Utc::now().format("%Y-%m-%d");
    let glob = data.join(format!("events/*/date={today}/*/*.parquet"));
    let newest: Option<i64> = connection
        .query_row(
            &format!(
                "SELECT epoch_us(max(ts)) FROM read_parquet('{}', hive_partitioning = true)",
                glob.display()
            ),
            [],
            |row| row.get(0),
        )
        .ok()
        .flatten();
    newest.map(|newest| (chrono::Utc::now().timestamp_micros() - newest) as f64 / 1e6)
}

fn main() {
    let seconds = setting("AUDITLENS_BENCH_SECONDS", 60);
    let clients = setting("AUDITLENS_BENCH_CLIENTS", 32) as usize;
    let history_rate = setting("AUDITLENS_BENCH_HISTORY_RATE", 50);
    let live_rate = setting("AUDITLENS_BENCH_LIVE_RATE", 200);
    let concurrent = setting("AUDITLENS_BENCH_CONCURRENT", 2);

    let pristine = history(history_rate);
    let scratch = tempfile::tempdir().expect("temp dir");
    let data = scratch.path().join("data");
    copy_tree(&pristine, &data);
    let (identity, namespace) = busiest(&data);
    let stored_before = {
        let connection = duckdb::Connection::open_in_memory().expect("duckdb");
        let count: i64 = connection
            .query_row(
                &format!(
                    "SELECT count(*) FROM read_parquet('{}')",
                    data.join("events/*/*/*/*.parquet").display()
                ),
                [],
                |row| row.get(0),
            )
            .expect("count");
        count
    };

    // The live cluster, then the daemon tailing it.
    let audit = scratch.path().join("audit");
    std::fs::create_dir_all(&audit).expect("audit dir");
    let _writer = KillOnDrop(
        auditlens()
            .args([
                "simulate",
                "--live",
                "--days",
                "1",
                "--attacks",
                "none",
                "--gzip",
            ])
            .args([
                "--max-size-mb",
                "16",
                "--quiet",
                "--rate",
                &live_rate.to_string(),
            ])
            .arg("--out")
            .arg(&audit)
            .spawn()
            .expect("start the live simulation"),
    );
    let (server, address) = start_daemon(
        &data,
        &audit,
        &[
            "--max-concurrent-queries",
            &concurrent.to_string(),
            "--max-queued-queries",
            "256",
            "--quiet",
        ],
    );
    let options = ClientOptions {
        server: format!("http://{address}"),
        ..ClientOptions::default()
    };
    // Each investigation with parameters a real analyst would give.
    let workload: Vec<(String, String, HashMap<String, String>)> = investigations::all()
        .into_iter()
        .map(|investigation| {
            let mut given = BTreeMap::new();
            for parameter in &investigation.parameters {
                let value = match parameter.name.as_str() {
                    "namespace" => Some(namespace.as_str()),
                    "identity" => Some(identity.as_str()),
                    "since" => Some("2026-11-01 06:00:00"),
                    "until" => Some("2026-11-01 18:00:00"),
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

    // Wait until the daemon has stored live traffic, then sample its lag
    // every second while the clients run.
    let probe = duckdb::Connection::open_in_memory().expect("duckdb");
    let waited = Instant::now();
    while lag_seconds(&probe, &data).is_none_or(|lag| lag > 5.0) {
        assert!(
            waited.elapsed() < Duration::from_secs(300),
            "the daemon stored no live traffic within 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        let data = data.clone();
        std::thread::spawn(move || {
            let probe = duckdb::Connection::open_in_memory().expect("duckdb");
            let mut lags = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                if let Some(lag) = lag_seconds(&probe, &data) {
                    lags.push(lag);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            lags
        })
    };

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
    sampling.store(false, Ordering::Relaxed);
    let mut lags = sampler.join().expect("lag sampler");
    lags.sort_by(f64::total_cmp);
    drop(server);

    let errors: Vec<&String> = results
        .iter()
        .filter_map(|(_, _, error)| error.as_ref())
        .collect();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, latency, _)| *latency).collect();
    latencies.sort();
    println!(
        "api_load: {clients} clients, {seconds} s, {stored_before} events of history (a simulated day at {history_rate}/s), daemon ingesting {live_rate}/s live, server max-concurrent-queries {concurrent}; parameters identity={identity} namespace={namespace}"
    );
    println!(
        "ingest lag while loaded: {} samples, median {:.2} s, max {:.2} s (bar: < 5 s)",
        lags.len(),
        lags.get(lags.len() / 2).copied().unwrap_or(f64::NAN),
        lags.last().copied().unwrap_or(f64::NAN),
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

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

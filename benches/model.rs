//! Model-layer benchmarks (issue 4's bars), one run reporting:
//! 1. features for 24 h of a 200 events/s cluster (17.28M events) — bar: <= 5 s;
//! 2. k-means on that feature matrix: our Lloyd vs linfa's KMeans vs
//!    scikit-learn's KMeans (same k, k-means++ init, n_init, max_iter),
//!    the last through benches/kmeans_sklearn.py on the `--dump-features` file.
//!
//! `cargo bench --bench model`. The events are generated once by DuckDB from
//! benches/model_events.sql into $AUDITLENS_BENCH_DIR (default
//! <target>/auditlens-model-bench) and reused. Set AUDITLENS_BENCH_EVENTS_PER_SECOND
//! / AUDITLENS_BENCH_SECONDS for other sizes (delete the folder to regenerate).

use auditlens::model::features::{FeatureRange, FeatureTable, dump_features, open_feature_session};
use auditlens::model::kmeans::{self, KMeansConfig};
use chrono::{Duration, TimeZone, Utc};
use linfa::prelude::*;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::Array2;
use std::path::{Path, PathBuf};
use std::time::Instant;

const K: usize = 8;
const N_INIT: usize = 4;
const MAX_ITERATIONS: usize = 300;
const REPEATS: usize = 5;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn bench_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("AUDITLENS_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    PathBuf::from(target).join("auditlens-model-bench")
}

fn ensure_events(data_dir: &Path, events_per_second: u64, seconds: u64) {
    let events = data_dir.join("events");
    if auditlens::store::views::any_part_exists(&events) {
        println!("reusing events in {}", events.display());
        return;
    }
    std::fs::create_dir_all(&events).expect("bench folder");
    let sql = include_str!("model_events.sql")
        .replace("{{OUT_DIR}}", &events.to_string_lossy())
        .replace("{{START}}", "TIMESTAMP '2026-11-26 00:00:00'")
        .replace("{{EVENTS_PER_SECOND}}", &events_per_second.to_string())
        .replace("{{SECONDS}}", &seconds.to_string());
    let started = Instant::now();
    duckdb::Connection::open_in_memory()
        .expect("duckdb")
        .execute_batch(&sql)
        .expect("generating events");
    println!(
        "generated {} events in {:.1} s into {}",
        events_per_second * seconds,
        started.elapsed().as_secs_f64(),
        events.display()
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Mean 0 / deviation 1 per column (constant columns stay 0), as the Python side.
fn standardise(table: &FeatureTable) -> Array2<f64> {
    let mut matrix = table.values.clone();
    for mut column in matrix.columns_mut() {
        let mean = column.mean().unwrap_or(0.0);
        let deviation = column.std(0.0);
        let deviation = if deviation > 0.0 { deviation } else { 1.0 };
        column.mapv_inplace(|value| (value - mean) / deviation);
    }
    matrix
}

fn main() {
    let events_per_second = env_or("AUDITLENS_BENCH_EVENTS_PER_SECOND", 200);
    let seconds = env_or("AUDITLENS_BENCH_SECONDS", 86_400);
    let data_dir = bench_dir();
    ensure_events(&data_dir, events_per_second, seconds);

    // 1. Features.
    let session = open_feature_session(&data_dir).expect("session");
    let start = Utc
        .with_ymd_and_hms(2026, 11, 26, 0, 0, 0)
        .single()
        .expect("time");
    let range = FeatureRange {
        start,
        end: start + Duration::seconds(seconds as i64),
        window: Duration::hours(1),
        lookback: Duration::days(14),
    };
    let mut timings = Vec::new();
    let mut table = None;
    for _ in 0..3 {
        let started = Instant::now();
        table = Some(auditlens::model::compute_features(&session, &range).expect("features"));
        timings.push(started.elapsed().as_secs_f64());
    }
    let table = table.expect("ran");
    println!(
        "features (1 h windows, {} events): {} rows x {} features; median {:.3} s, min {:.3} s (bar: <= 5 s)",
        events_per_second * seconds,
        table.len(),
        table.names.len(),
        median(timings.clone()),
        timings.iter().copied().fold(f64::INFINITY, f64::min)
    );
    // The same query forced through the stage de-duplication (what a log
    // that keeps RequestReceived / ResponseStarted rows costs).
    let started = Instant::now();
    let forced = session
        .prepare(&range.select_sql(true))
        .expect("prepare")
        .query_arrow([])
        .expect("query")
        .map(|batch| batch.num_rows())
        .sum::<usize>();
    println!(
        "features with forced stage de-duplication: {forced} rows in {:.3} s",
        started.elapsed().as_secs_f64()
    );

    let dump = data_dir.join("features.parquet");
    dump_features(&session, &range, &dump).expect("dump");

    // 2. k-means on the same matrix.
    let matrix = standardise(&table);
    let mut ours = Vec::new();
    let mut ours_inertia = 0.0;
    let mut ours_iterations = 0;
    for repeat in 0..REPEATS {
        let config = KMeansConfig {
            k: K,
            n_init: N_INIT,
            max_iterations: MAX_ITERATIONS,
            tolerance: 1e-4,
            seed: repeat as u64,
            threads: 2,
        };
        let started = Instant::now();
        let fit = kmeans::fit(matrix.view(), &config).expect("fits");
        ours.push(started.elapsed().as_secs_f64());
        ours_inertia = fit.inertia;
        ours_iterations = fit.iterations;
    }
    let dataset = DatasetBase::from(matrix.clone());
    let mut linfa_timings = Vec::new();
    let mut linfa_inertia = 0.0;
    for _ in 0..REPEATS {
        let started = Instant::now();
        let model = KMeans::params(K)
            .n_runs(N_INIT)
            .max_n_iterations(MAX_ITERATIONS as u64)
            .tolerance(1e-4)
            .init_method(KMeansInit::KMeansPlusPlus)
            .fit(&dataset)
            .expect("linfa fits");
        linfa_timings.push(started.elapsed().as_secs_f64());
        linfa_inertia = model.inertia();
    }
    println!(
        "k-means k={K} n_init={N_INIT} max_iter={MAX_ITERATIONS} on {}x{}:",
        matrix.nrows(),
        matrix.ncols()
    );
    println!(
        "  auditlens Lloyd: median {:.4} s, min {:.4} s (inertia {ours_inertia:.1}, {ours_iterations} iterations)",
        median(ours.clone()),
        ours.iter().copied().fold(f64::INFINITY, f64::min)
    );
    println!(
        "  linfa KMeans:    median {:.4} s, min {:.4} s (inertia {linfa_inertia:.1})",
        median(linfa_timings.clone()),
        linfa_timings.iter().copied().fold(f64::INFINITY, f64::min)
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches")
        .join("kmeans_sklearn.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg(&dump)
        .args([K, N_INIT, MAX_ITERATIONS, REPEATS].map(|value| value.to_string()))
        // OpenBLAS's safe-mode variables slow numpy down (see docs/MODELS.md).
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output();
    match output {
        Ok(output) if output.status.success() => {
            println!(
                "  scikit-learn:    {}",
                String::from_utf8_lossy(&output.stdout).trim()
            )
        }
        Ok(output) => println!(
            "  scikit-learn: not run ({}); pip install scikit-learn pyarrow",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("failed")
        ),
        Err(error) => println!("  scikit-learn: python3 not runnable: {error}"),
    }
}

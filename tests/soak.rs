//! The soak: live audit traffic at a steady rate (default 2,000 events/s) with
//! rotation every minute (lumberjack style, gzip backups), `auditlens sql`
//! queries in a loop, for `SOAK_SECONDS` (default 300). Every 10 s it records
//! lines written, rows stored, lag (now − newest stored event time; events
//! carry their write time) and the daemon's RSS to `SOAK_CSV`. At the end:
//! zero loss and zero duplicates, lag under `SOAK_MAX_LAG_SECONDS` (default 5)
//! at every sample, RSS flat.
//!
//! Ignored by plain `cargo test` (it runs for minutes): `scripts/soak.sh
//! [minutes]` runs it; CI runs the five-minute version.

mod common;
mod harden;

use common::{Counts, binary, counts, wait_until};
use harden::{proc_status_kib, signal};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn environment_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn soak_line(index: u64) -> String {
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    harden::audit_line_at("soak", index, &now)
}

/// Writes `rate` lines a second in 10 batches, rotating every `rotate_every`.
fn generate(
    directory: PathBuf,
    rate: u64,
    rotate_every: Duration,
    running: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) {
    let live_path = directory.join("audit.log");
    let mut live = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&live_path)
        .expect("open live");
    let started = Instant::now();
    let mut last_rotation = Instant::now();
    let mut index = 0u64;
    let mut rotations = 0u64;
    while running.load(Ordering::SeqCst) {
        // Catch up to the schedule (rate per second since the start).
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        if due > index {
            let text: String = (index..due).map(|i| soak_line(i) + "\n").collect();
            live.write_all(text.as_bytes()).expect("append");
            index = due;
            written.store(index, Ordering::SeqCst);
        }
        if last_rotation.elapsed() >= rotate_every {
            last_rotation = Instant::now();
            rotations += 1;
            let backup = directory.join(format!(
                "audit-{}-{rotations:04}.log",
                chrono::Utc::now().format("%Y-%m-%dT%H-%M-%S")
            ));
            std::fs::rename(&live_path, &backup).expect("rotate");
            live = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&live_path)
                .expect("new live");
            // lumberjack compresses the backup after rotating, then deletes the plain copy.
            let content = std::fs::read(&backup).expect("read backup");
            let packed = backup.with_extension("log.gz");
            let mut encoder = flate2::write::GzEncoder::new(
                std::fs::File::create(&packed).expect("gz"),
                flate2::Compression::fast(),
            );
            encoder.write_all(&content).expect("compress");
            encoder.finish().expect("finish");
            std::fs::remove_file(&backup).expect("remove plain backup");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lag in seconds: now minus the newest stored event time.
fn lag_seconds(data_dir: &Path) -> f64 {
    if counts(data_dir).rows == 0 {
        return f64::NAN;
    }
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    let sql = format!(
        "SELECT epoch_us(max(ts)) FROM read_parquet('{}', hive_partitioning = true)",
        data_dir.join("events/*/*/*/*.parquet").display()
    );
    let newest: i64 = connection
        .query_row(&sql, [], |row| row.get(0))
        .unwrap_or(0);
    (chrono::Utc::now().timestamp_micros() - newest) as f64 / 1e6
}

#[test]
#[ignore = "runs for minutes: scripts/soak.sh"]
fn soak() {
    let seconds = environment_number("SOAK_SECONDS", 300);
    let rate = environment_number("SOAK_RATE", 2000);
    let max_lag = environment_number("SOAK_MAX_LAG_SECONDS", 5) as f64;
    let csv_path = std::env::var("SOAK_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("auditlens-soak.csv"));
    let audit = tempfile::tempdir().expect("audit");
    let data = tempfile::tempdir().expect("data");
    let log_path = csv_path.with_extension("daemon.log");
    let daemon = harden::daemon_command(
        &binary(),
        data.path(),
        audit.path(),
        &[
            ("AUDITLENS_STORE__FLUSH_INTERVAL_MS", "1000"),
            ("AUDITLENS_INGEST__SCAN_INTERVAL_MS", "250"),
            ("AUDITLENS_LOG", "auditlens=warn"),
        ],
    )
    .stderr(std::fs::File::create(&log_path).expect("daemon log"))
    .spawn()
    .expect("start daemon");
    let pid = daemon.id();

    let running = Arc::new(AtomicBool::new(true));
    let written = Arc::new(AtomicU64::new(0));
    let generator = {
        let (running, written, directory) =
            (running.clone(), written.clone(), audit.path().to_path_buf());
        std::thread::spawn(move || {
            generate(directory, rate, Duration::from_secs(60), running, written)
        })
    };
    let (queries_ok, queries_failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let querier = {
        let (running, ok, failed, data_dir) = (
            running.clone(),
            queries_ok.clone(),
            queries_failed.clone(),
            data.path().to_path_buf(),
        );
        std::thread::spawn(move || {
            while running.load(Ordering::SeqCst) {
                let output = common::run(
                    &data_dir,
                    &[
                        "sql",
                        "SELECT verb, identity_kind, count(*) FROM events GROUP BY ALL ORDER BY 3 DESC LIMIT 5",
                    ],
                );
                let counter = if output.status.success() {
                    &ok
                } else {
                    &failed
                };
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(2));
            }
        })
    };

    let mut csv = std::fs::File::create(&csv_path).expect("csv");
    writeln!(
        csv,
        "seconds,written,stored,lag_seconds,rss_kib,hwm_kib,queries_ok,queries_failed"
    )
    .expect("csv header");
    let started = Instant::now();
    let mut samples: Vec<(f64, f64, u64)> = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(10));
        let stored = counts(data.path()).rows;
        let lag = lag_seconds(data.path());
        let rss = proc_status_kib(pid, "VmRSS").unwrap_or(0);
        let hwm = proc_status_kib(pid, "VmHWM").unwrap_or(0);
        let elapsed = started.elapsed().as_secs_f64();
        writeln!(
            csv,
            "{elapsed:.0},{},{stored},{lag:.2},{rss},{hwm},{},{}",
            written.load(Ordering::SeqCst),
            queries_ok.load(Ordering::SeqCst),
            queries_failed.load(Ordering::SeqCst)
        )
        .expect("csv row");
        eprintln!(
            "soak t={elapsed:.0}s written={} stored={stored} lag={lag:.2}s rss={rss}KiB",
            written.load(Ordering::SeqCst)
        );
        samples.push((elapsed, lag, rss));
    }
    running.store(false, Ordering::SeqCst);
    generator.join().expect("generator");
    querier.join().expect("querier");
    let total = written.load(Ordering::SeqCst) as i64;
    let caught_up = wait_until(Duration::from_secs(120), || {
        counts(data.path()).rows >= total
    });
    signal(&daemon, libc::SIGTERM);
    let mut daemon = daemon;
    let status = daemon.wait().expect("daemon exits");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.success(), "daemon failed: {log}");
    assert!(caught_up, "{:?} of {total}", counts(data.path()));
    assert_eq!(
        counts(data.path()),
        Counts {
            rows: total,
            distinct_events: total,
            distinct_lines: total
        }
    );

    // Lag: every sample after the first under the bound.
    let worst_lag = samples
        .iter()
        .skip(1)
        .map(|sample| sample.1)
        .fold(0.0f64, f64::max);
    // RSS flat: the last quarter's peak against the first quarter's peak.
    let quarter = (samples.len() / 4).max(1);
    let early = samples
        .iter()
        .take(quarter)
        .map(|sample| sample.2)
        .max()
        .unwrap_or(0);
    let late = samples
        .iter()
        .rev()
        .take(quarter)
        .map(|sample| sample.2)
        .max()
        .unwrap_or(0);
    eprintln!(
        "soak done: {total} lines, worst lag {worst_lag:.2} s, RSS early {early} KiB late {late} KiB, queries ok {} failed {}; CSV {}",
        queries_ok.load(Ordering::SeqCst),
        queries_failed.load(Ordering::SeqCst),
        csv_path.display()
    );
    assert!(
        worst_lag < max_lag,
        "lag reached {worst_lag:.2} s (bound {max_lag} s)"
    );
    assert!(
        late < early + early / 2 + 64 * 1024,
        "RSS grew: {early} → {late} KiB"
    );
    assert!(queries_ok.load(Ordering::SeqCst) > 0, "no query succeeded");
}

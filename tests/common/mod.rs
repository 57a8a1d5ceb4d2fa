//! Helpers shared by the end-to-end tests: the real binary, real files, and a
//! real DuckDB reading the Parquet folder the way an analyst would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_auditlens"))
}

pub fn testdata(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(relative)
}

/// Runs `auditlens ARGS --data-dir DATA` to completion.
pub fn run(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("AUDITLENS_LOG", "auditlens=warn")
        .output()
        .expect("run auditlens")
}

/// [`run`] as the user `tester` (verdicts and RBAC acceptances record
/// `$USER` as their actor).
pub fn run_as_tester(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("AUDITLENS_LOG", "auditlens=warn")
        .env("USER", "tester")
        .output()
        .expect("run auditlens")
}

/// [`run_as_tester`] that must succeed; its standard output.
pub fn succeed(data_dir: &Path, args: &[&str]) -> String {
    let output = run_as_tester(data_dir, args);
    assert!(
        output.status.success(),
        "auditlens {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Starts `auditlens serve` over `audit_dir` with fast flushes and scans.
pub fn start_daemon(data_dir: &Path, audit_dir: &Path, extra: &[&str]) -> Child {
    Command::new(binary())
        .arg("serve")
        .arg("--audit-dir")
        .arg(audit_dir)
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env("AUDITLENS_STORE__FLUSH_INTERVAL_MS", "200")
        .env("AUDITLENS_INGEST__SCAN_INTERVAL_MS", "50")
        .env("AUDITLENS_INGEST__PARTIAL_LINE_GRACE_MS", "500")
        .env("AUDITLENS_API__GRPC_LISTEN", "127.0.0.1:0")
        .env("AUDITLENS_GRPC_LISTEN", "127.0.0.1:0")
        .env("AUDITLENS_API__METRICS_LISTEN", "127.0.0.1:0")
        .env("AUDITLENS_LOG", "auditlens=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start daemon")
}

/// Sends SIGTERM and waits; panics if the daemon does not exit cleanly.
pub fn stop_daemon(child: Child) -> String {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let output = child.wait_with_output().expect("daemon exits");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "daemon failed: {stderr}");
    stderr
}

pub fn kill_daemon(mut child: Child) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Row counts over every committed part, read with DuckDB directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub rows: i64,
    pub distinct_events: i64,
    pub distinct_lines: i64,
}

/// Like any reader of the folder, these tolerate the daemon's compaction or
/// retention deleting a part between DuckDB listing the folder and opening
/// the file: the query is run again (`auditlens::store::views::retry_if_parts_vanish`,
/// what `auditlens sql` does). A count that succeeds read every part it listed.
pub fn counts(data_dir: &Path) -> Counts {
    auditlens::store::views::retry_if_parts_vanish(|| counts_once(data_dir)).expect("count rows")
}

fn counts_once(data_dir: &Path) -> duckdb::Result<Counts> {
    let glob = data_dir.join("events/*/*/*/*.parquet");
    let any = glob::glob(&glob.to_string_lossy())
        .map(|mut paths| paths.next().is_some())
        .unwrap_or(false);
    if !any {
        return Ok(Counts {
            rows: 0,
            distinct_events: 0,
            distinct_lines: 0,
        });
    }
    let connection = duckdb::Connection::open_in_memory()?;
    let sql = format!(
        "SELECT count(*), count(DISTINCT (audit_id, stage)), count(DISTINCT (source_fingerprint, source_offset)) \
         FROM read_parquet('{}', hive_partitioning = true)",
        glob.display()
    );
    connection.query_row(&sql, [], |row| {
        Ok(Counts {
            rows: row.get(0)?,
            distinct_events: row.get(1)?,
            distinct_lines: row.get(2)?,
        })
    })
}

pub fn query_strings(data_dir: &Path, sql_over_events: &str) -> Vec<Vec<Option<String>>> {
    auditlens::store::views::retry_if_parts_vanish(|| query_strings_once(data_dir, sql_over_events))
        .expect("query")
}

fn query_strings_once(
    data_dir: &Path,
    sql_over_events: &str,
) -> Result<Vec<Vec<Option<String>>>, String> {
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    auditlens::store::views::install_views(&connection, data_dir)
        .map_err(|error| format!("views: {error}"))?;
    let mut statement = connection
        .prepare(sql_over_events)
        .map_err(|error| format!("prepare: {error}"))?;
    let columns = statement.column_count();
    let mut rows = statement
        .query([])
        .map_err(|error| format!("query: {error}"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|error| format!("row: {error}"))? {
        out.push(
            (0..columns)
                .map(|index| row.get::<_, Option<String>>(index).ok().flatten())
                .collect(),
        );
    }
    Ok(out)
}

pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    condition()
}

/// A realistic audit line with a unique audit ID (`<prefix>-<index>`).
pub fn audit_line(prefix: &str, index: u64) -> String {
    let users = [
        "alice@example.com",
        "system:serviceaccount:ci:deployer",
        "system:node:worker-1",
        "system:kube-scheduler",
    ];
    let user = users[(index % users.len() as u64) as usize];
    let verbs = [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ];
    let verb = verbs[(index % verbs.len() as u64) as usize];
    let second = index % 3600;
    format!(
        concat!(
            "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"{prefix}-{index}\",",
            "\"stage\":\"ResponseComplete\",\"requestURI\":\"/api/v1/namespaces/team-{ns}/configmaps/app-{index}\",\"verb\":\"{verb}\",",
            "\"user\":{{\"username\":\"{user}\",\"groups\":[\"system:authenticated\"]}},\"sourceIPs\":[\"10.0.{a}.{b}\"],",
            "\"userAgent\":\"kubectl/v1.31.0 (linux/amd64) kubernetes/abcdef\",",
            "\"objectRef\":{{\"resource\":\"configmaps\",\"namespace\":\"team-{ns}\",\"name\":\"app-{index}\",\"apiVersion\":\"v1\"}},",
            "\"responseStatus\":{{\"metadata\":{{}},\"code\":200}},",
            "\"requestReceivedTimestamp\":\"2026-11-27T09:{minute:02}:{sec:02}.{micros:06}Z\",\"stageTimestamp\":\"2026-11-27T09:{minute:02}:{sec:02}.{micros:06}Z\",",
            "\"annotations\":{{\"authorization.k8s.io/decision\":\"allow\",\"authorization.k8s.io/reason\":\"RBAC: allowed\"}}}}"
        ),
        prefix = prefix,
        index = index,
        ns = index % 7,
        verb = verb,
        user = user,
        a = index % 250,
        b = (index / 250) % 250,
        minute = second / 60,
        sec = second % 60,
        micros = index % 1_000_000,
    )
}

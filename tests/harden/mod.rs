//! Helpers of the fault-injection and soak tests (`tests/fault_*.rs`,
//! `tests/soak.rs`): a daemon started with extra environment, an audit-log
//! writer that rotates like kube-apiserver, and memory readings from /proc.
//! Everything runs the real binary on real files.
#![allow(dead_code)]

use crate::common::{audit_line, binary, counts};
use rand::Rng;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `auditlens serve` with the test defaults of `common::start_daemon` plus `environment`.
pub fn start_daemon_with(data_dir: &Path, audit_dir: &Path, environment: &[(&str, &str)]) -> Child {
    daemon_command(&binary(), data_dir, audit_dir, environment)
        .spawn()
        .expect("start daemon")
}

/// The command `start_daemon_with` runs, for callers that wrap it (setpriv).
pub fn daemon_command(
    program: &Path,
    data_dir: &Path,
    audit_dir: &Path,
    environment: &[(&str, &str)],
) -> Command {
    let mut command = Command::new(program);
    command
        .arg("serve")
        .arg("--audit-dir")
        .arg(audit_dir)
        .arg("--data-dir")
        .arg(data_dir)
        .env("AUDITLENS_STORE__FLUSH_INTERVAL_MS", "200")
        .env("AUDITLENS_INGEST__SCAN_INTERVAL_MS", "50")
        .env("AUDITLENS_INGEST__PARTIAL_LINE_GRACE_MS", "500")
        .env("AUDITLENS_API__GRPC_LISTEN", "127.0.0.1:0")
        .env("AUDITLENS_API__METRICS_LISTEN", "127.0.0.1:0")
        .env("AUDITLENS_LOG", "auditlens=info");
    for (name, value) in environment {
        command.env(name, value);
    }
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    command
}

/// Sends a signal to a child we started.
pub fn signal(child: &Child, signal: i32) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Rows of the folder's committed parts per (date, hour) partition.
pub fn stored_audit_ids(data_dir: &Path, where_clause: &str) -> i64 {
    if counts(data_dir).rows == 0 {
        return 0;
    }
    let sql = format!(
        "SELECT count(*) FROM read_parquet('{}', hive_partitioning = true) WHERE {where_clause}",
        data_dir.join("events/*/*/*/*.parquet").display()
    );
    // Maintenance may delete parts under the query, or all of them: see `common::counts`.
    auditlens::store::views::retry_if_parts_vanish(|| {
        let connection = duckdb::Connection::open_in_memory()?;
        match connection.query_row(&sql, [], |row| row.get(0)) {
            Err(error)
                if error
                    .to_string()
                    .contains("No files found that match the pattern") =>
            {
                Ok(0)
            }
            other => other,
        }
    })
    .expect("count")
}

/// An audit-log writer with the API server's rotation behaviour (lumberjack:
/// rename + gzip backups; logrotate: copy-truncate), as in tests/rotation.rs.
pub struct RotatingWriter {
    pub directory: PathBuf,
    live: File,
    pub written: u64,
    rotations: u64,
    pub backups: Vec<PathBuf>,
    prefix: String,
    /// Makes line `index`; default `common::audit_line`.
    pub line: fn(&str, u64) -> String,
}

impl RotatingWriter {
    pub fn new(directory: &Path, prefix: &str) -> RotatingWriter {
        let live = OpenOptions::new()
            .create(true)
            .append(true)
            .open(directory.join("audit.log"))
            .expect("open live");
        RotatingWriter {
            directory: directory.to_path_buf(),
            live,
            written: 0,
            rotations: 0,
            backups: Vec::new(),
            prefix: prefix.to_string(),
            line: audit_line,
        }
    }

    pub fn append(&mut self, lines: u64, rng: &mut impl Rng) {
        let mut text = String::new();
        for _ in 0..lines {
            text.push_str(&(self.line)(&self.prefix, self.written));
            text.push('\n');
            self.written += 1;
        }
        // Sometimes split a line across two writes, like a buffered writer.
        let bytes = text.as_bytes();
        let split = if rng.random_bool(0.3) && bytes.len() > 10 {
            rng.random_range(1..bytes.len())
        } else {
            bytes.len()
        };
        self.live.write_all(&bytes[..split]).expect("write");
        self.live.flush().expect("flush");
        if split < bytes.len() {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..30)));
            self.live.write_all(&bytes[split..]).expect("write rest");
        }
    }

    /// lumberjack: rename the live file to a timestamped backup (gzip it and
    /// delete the plain copy if asked), create a new live file.
    pub fn rotate(&mut self, gzip: bool) {
        self.rotations += 1;
        let name = format!(
            "audit-2026-11-27T09-{:02}-{:02}.{:03}.log",
            self.rotations / 60 % 60,
            self.rotations % 60,
            self.rotations % 1000
        );
        let backup = self.directory.join(&name);
        std::fs::rename(self.directory.join("audit.log"), &backup).expect("rename");
        self.live = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.directory.join("audit.log"))
            .expect("new live");
        if gzip {
            let compressed = self.directory.join(format!("{name}.gz"));
            let content = std::fs::read(&backup).expect("read backup");
            let mut encoder = flate2::write::GzEncoder::new(
                File::create(&compressed).expect("gz"),
                flate2::Compression::fast(),
            );
            encoder.write_all(&content).expect("compress");
            encoder.finish().expect("finish gz");
            std::fs::remove_file(&backup).expect("remove plain backup");
            self.backups.push(compressed);
        } else {
            self.backups.push(backup);
        }
    }

    /// logrotate copytruncate: copy the live file aside, then truncate it.
    pub fn copy_truncate(&mut self) {
        self.rotations += 1;
        let copy = self.directory.join(format!("audit.log.{}", self.rotations));
        std::fs::copy(self.directory.join("audit.log"), &copy).expect("copy");
        self.live.set_len(0).expect("truncate");
        self.backups.push(copy);
    }
}

/// An audit line like `common::audit_line` but with its own timestamp.
pub fn audit_line_at(prefix: &str, index: u64, timestamp: &str) -> String {
    let line = audit_line(prefix, index);
    let value: serde_json::Value = serde_json::from_str(&line).expect("valid line");
    let mut value = value;
    value["requestReceivedTimestamp"] = serde_json::Value::String(timestamp.to_string());
    value["stageTimestamp"] = serde_json::Value::String(timestamp.to_string());
    value.to_string()
}

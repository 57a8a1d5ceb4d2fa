//! The rotation model test and the crash test: a writer that behaves like
//! kube-apiserver's lumberjack (append, rotate by rename, gzip backups and
//! delete the plain copy, delete old backups) plus logrotate's copy-truncate,
//! at random points, while the real daemon runs, is killed and restarted.
//! Afterwards every line written is stored exactly once.

mod common;

use common::{Counts, audit_line, counts, kill_daemon, start_daemon, stop_daemon, wait_until};
use rand::{Rng, SeedableRng};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An audit-log writer with the API server's rotation behaviour.
struct RotatingWriter {
    directory: PathBuf,
    live: File,
    written: u64,
    rotations: u64,
    backups: Vec<PathBuf>,
    prefix: String,
}

impl RotatingWriter {
    fn new(directory: &Path, prefix: &str) -> RotatingWriter {
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
        }
    }

    fn append(&mut self, lines: u64, rng: &mut impl Rng) {
        let mut text = String::new();
        for _ in 0..lines {
            text.push_str(&audit_line(&self.prefix, self.written));
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

    /// lumberjack: rename the live file to a timestamped backup, create a new live file.
    fn rotate(&mut self, gzip: bool) {
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
    fn copy_truncate(&mut self) {
        self.rotations += 1;
        let copy = self.directory.join(format!("audit.log.{}", self.rotations));
        std::fs::copy(self.directory.join("audit.log"), &copy).expect("copy");
        self.live.set_len(0).expect("truncate");
        self.backups.push(copy);
    }

    /// maxbackup: delete the oldest backup, but only once the daemon stored
    /// all of it (a real API server deletes backups long after they were read).
    fn delete_oldest_backup_if_stored(&mut self, data_dir: &Path) {
        let Some(oldest) = self.backups.first().cloned() else {
            return;
        };
        let lines = read_lines(&oldest);
        if lines.is_empty() {
            return;
        }
        let ids: Vec<String> = lines
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|value| value["auditID"].as_str().map(str::to_string))
            .collect();
        let stored = stored_audit_ids(data_dir, &ids);
        if stored == ids.len() as i64 {
            std::fs::remove_file(&oldest).expect("delete backup");
            self.backups.remove(0);
        }
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = if path.extension().is_some_and(|extension| extension == "gz") {
        let mut decoded = String::new();
        let _ = flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_string(&mut decoded);
        decoded
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    text.lines()
        .filter(|line| line.ends_with('}'))
        .map(str::to_string)
        .collect()
}

fn stored_audit_ids(data_dir: &Path, ids: &[String]) -> i64 {
    if ids.is_empty() || counts(data_dir).rows == 0 {
        return 0;
    }
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    let list = ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT count(DISTINCT audit_id) FROM read_parquet('{}') WHERE audit_id IN ({list})",
        data_dir.join("events/*/*/*/*.parquet").display()
    );
    connection
        .query_row(&sql, [], |row| row.get(0))
        .unwrap_or(0)
}

fn assert_exactly_once(data_dir: &Path, written: u64) {
    let expected = written as i64;
    let caught_up = wait_until(Duration::from_secs(90), || {
        counts(data_dir).rows >= expected
    });
    let final_counts = counts(data_dir);
    assert!(
        caught_up,
        "daemon did not catch up: {final_counts:?}, written {written}"
    );
    assert_eq!(
        final_counts,
        Counts {
            rows: expected,
            distinct_events: expected,
            distinct_lines: expected
        }
    );
}

#[test]
fn rotation_model_stores_every_line_exactly_once() {
    let audit = tempfile::tempdir().expect("audit dir");
    let data = tempfile::tempdir().expect("data dir");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut writer = RotatingWriter::new(audit.path(), "rotation");
    let daemon = start_daemon(data.path(), audit.path(), &[]);
    for step in 0..120 {
        writer.append(rng.random_range(1..200), &mut rng);
        match rng.random_range(0..100) {
            0..=9 => writer.rotate(false),
            10..=19 => writer.rotate(true),
            20..=24 => writer.copy_truncate(),
            25..=34 => writer.delete_oldest_backup_if_stored(data.path()),
            _ => {}
        }
        if step % 10 == 0 {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        }
    }
    assert_exactly_once(data.path(), writer.written);
    let stderr = stop_daemon(daemon);
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
    // A restart over the same files reads nothing twice.
    let daemon = start_daemon(data.path(), audit.path(), &[]);
    std::thread::sleep(Duration::from_secs(2));
    stop_daemon(daemon);
    assert_eq!(counts(data.path()).rows, writer.written as i64);
}

#[test]
fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let audit = tempfile::tempdir().expect("audit dir");
    let data = tempfile::tempdir().expect("data dir");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut writer = RotatingWriter::new(audit.path(), "crash");
    let kills = 25;
    for _ in 0..kills {
        let daemon = start_daemon(data.path(), audit.path(), &[]);
        let pauses = rng.random_range(1..6);
        for _ in 0..pauses {
            writer.append(rng.random_range(50..800), &mut rng);
            match rng.random_range(0..10) {
                0..=1 => writer.rotate(true),
                2 => writer.rotate(false),
                3 => writer.copy_truncate(),
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(20..250)));
        }
        kill_daemon(daemon);
    }
    let daemon = start_daemon(data.path(), audit.path(), &[]);
    assert_exactly_once(data.path(), writer.written);
    stop_daemon(daemon);
}

//! Counters of the ingest path, shared by the pipeline threads and read by the
//! status API and the metrics endpoint. Labels are low-cardinality: reasons are
//! the fixed `DecodeError` codes; per-file status is keyed by path, bounded by
//! the files in the audit folder.

use crate::store::writer::WrittenPart;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where reading of one file stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileStatus {
    pub path: String,
    pub source_id: String,
    /// Decompressed bytes committed.
    pub committed_offset: u64,
    /// Bytes on disk now (compressed size for `.gz`).
    pub file_bytes: u64,
    /// Plain files: bytes on disk not yet committed.
    pub lag_bytes: u64,
    /// Seconds since the file last grew while not fully committed.
    pub lag_seconds: f64,
    /// When the file was last committed (UTC µs).
    pub last_commit_micros: i64,
}

#[derive(Debug, Default)]
pub struct IngestStats {
    pub lines: AtomicU64,
    pub events_stored: AtomicU64,
    pub quarantined: AtomicU64,
    pub parts_written: AtomicU64,
    pub part_bytes: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_errors: AtomicU64,
    pub flush_micros_total: AtomicU64,
    pub flush_micros_last: AtomicU64,
    pub compactions: AtomicU64,
    pub read_errors: AtomicU64,
    pub bytes_read: AtomicU64,
    /// Corrupt parts found at start (moved to `data/corrupt/`); an alert for
    /// the metrics endpoint: any value above zero needs a person.
    pub corrupt_parts: AtomicU64,
    /// Rows of corrupt parts that could not be read again from their source.
    pub corrupt_rows_lost: AtomicU64,
    quarantine_reasons: Mutex<BTreeMap<String, u64>>,
    files: Mutex<BTreeMap<String, FileStatus>>,
}

impl IngestStats {
    pub fn record_corrupt_parts(&self, corrupt: &[super::recovery::CorruptPart]) {
        for part in corrupt {
            self.corrupt_parts.fetch_add(1, Ordering::Relaxed);
            self.corrupt_rows_lost.fetch_add(
                part.rows_expected.saturating_sub(part.rows_recovered),
                Ordering::Relaxed,
            );
        }
    }

    pub fn record_decoded<'a>(
        &self,
        lines: u64,
        quarantine_reasons: impl Iterator<Item = &'a str>,
    ) {
        self.lines.fetch_add(lines, Ordering::Relaxed);
        let mut count = 0;
        if let Ok(mut reasons) = self.quarantine_reasons.lock() {
            for reason in quarantine_reasons {
                *reasons.entry(reason.to_string()).or_default() += 1;
                count += 1;
            }
        }
        self.quarantined.fetch_add(count, Ordering::Relaxed);
    }

    pub fn record_flush(&self, parts: &[WrittenPart], took: Duration) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.parts_written
            .fetch_add(parts.len() as u64, Ordering::Relaxed);
        let rows: u64 = parts.iter().map(|part| part.metadata.rows).sum();
        let bytes: u64 = parts.iter().map(|part| part.bytes).sum();
        self.events_stored.fetch_add(rows, Ordering::Relaxed);
        self.part_bytes.fetch_add(bytes, Ordering::Relaxed);
        let micros = took.as_micros() as u64;
        self.flush_micros_total.fetch_add(micros, Ordering::Relaxed);
        self.flush_micros_last.store(micros, Ordering::Relaxed);
    }

    pub fn record_committed(&self, source_id: &str, path: &str, offset: u64) {
        if let Ok(mut files) = self.files.lock() {
            let status = files.entry(path.to_string()).or_default();
            status.path = path.to_string();
            status.source_id = source_id.to_string();
            status.committed_offset = offset;
            status.last_commit_micros = chrono::Utc::now().timestamp_micros();
        }
    }

    /// Called by the tailer after each scan with what is on disk.
    pub fn record_file_size(&self, path: &str, file_bytes: u64, plain: bool, idle: Duration) {
        if let Ok(mut files) = self.files.lock() {
            let status = files.entry(path.to_string()).or_default();
            status.path = path.to_string();
            status.file_bytes = file_bytes;
            status.lag_bytes = if plain {
                file_bytes.saturating_sub(status.committed_offset)
            } else {
                0
            };
            status.lag_seconds = if status.lag_bytes > 0 {
                idle.as_secs_f64()
            } else {
                0.0
            };
        }
    }

    pub fn forget_file(&self, path: &str) {
        if let Ok(mut files) = self.files.lock() {
            files.remove(path);
        }
    }

    pub fn quarantine_reasons(&self) -> BTreeMap<String, u64> {
        self.quarantine_reasons
            .lock()
            .map(|reasons| reasons.clone())
            .unwrap_or_default()
    }

    pub fn files(&self) -> Vec<FileStatus> {
        self.files
            .lock()
            .map(|files| files.values().cloned().collect())
            .unwrap_or_default()
    }
}

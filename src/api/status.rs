//! Ingest status as the API reports it: a plain struct the ingest side
//! updates and the API reads.
//!
//! The daemon owns the numbers; the API only copies them out under a read
//! lock, so a slow client never holds up ingestion.

use chrono::{DateTime, Utc};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// One source file being tailed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestFileStatus {
    pub path: String,
    pub fingerprint: String,
    pub committed_offset: u64,
    pub size_bytes: u64,
    /// Seconds between the newest event written to the file and the newest committed.
    pub lag_seconds: f64,
}

impl IngestFileStatus {
    pub fn lag_bytes(&self) -> u64 {
        self.size_bytes.saturating_sub(self.committed_offset)
    }
}

/// Everything `GetIngestStatus` returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestStatus {
    pub files: Vec<IngestFileStatus>,
    pub events_stored: u64,
    pub quarantined_lines: u64,
    pub last_commit: Option<DateTime<Utc>>,
}

impl IngestStatus {
    pub fn lag_bytes(&self) -> u64 {
        self.files.iter().map(IngestFileStatus::lag_bytes).sum()
    }

    pub fn lag_seconds(&self) -> f64 {
        self.files
            .iter()
            .map(|file| file.lag_seconds)
            .fold(0.0, f64::max)
    }

    /// What can be known from the data folder alone (no tailer running):
    /// quarantined lines in `quarantine/*.jsonl`. Used by `auditlens api-serve`.
    pub fn from_data_dir(data_dir: &Path) -> IngestStatus {
        let mut quarantined_lines = 0u64;
        if let Ok(entries) = std::fs::read_dir(data_dir.join("quarantine")) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path
                    .extension()
                    .is_some_and(|extension| extension == "jsonl")
                    && let Ok(bytes) = std::fs::read(&path)
                {
                    quarantined_lines += bytes.iter().filter(|byte| **byte == b'\n').count() as u64;
                }
            }
        }
        IngestStatus {
            quarantined_lines,
            ..IngestStatus::default()
        }
    }
}

/// The shared handle: the daemon writes, the API reads.
pub type SharedIngestStatus = Arc<RwLock<IngestStatus>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_adds_bytes_and_takes_the_worst_seconds() {
        let status = IngestStatus {
            files: vec![
                IngestFileStatus {
                    committed_offset: 10,
                    size_bytes: 30,
                    lag_seconds: 1.5,
                    ..Default::default()
                },
                IngestFileStatus {
                    committed_offset: 5,
                    size_bytes: 5,
                    lag_seconds: 0.2,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(status.lag_bytes(), 20);
        assert_eq!(status.lag_seconds(), 1.5);
    }

    #[test]
    fn counts_quarantined_lines_on_disk() {
        let folder = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(folder.path().join("quarantine")).expect("mkdir");
        std::fs::write(
            folder.path().join("quarantine/2026-11-27.jsonl"),
            "{}\n{}\n{}\n",
        )
        .expect("write");
        assert_eq!(
            IngestStatus::from_data_dir(folder.path()).quarantined_lines,
            3
        );
    }
}

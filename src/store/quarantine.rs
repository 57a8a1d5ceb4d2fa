//! Lines that did not decode: `data/quarantine/YYYY-MM-DD.jsonl`, one JSON
//! object per line with the file, offset, reason and the raw line.
//!
//! Quarantine entries are appended and fsynced before the checkpoint that
//! moves past their lines is committed, so a bad line is never lost: it is
//! either in quarantine or will be read again.

use super::{Result, StoreError};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The longest raw line kept in a quarantine entry; the rest is cut and said so.
pub const QUARANTINE_RAW_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// When it was quarantined (RFC 3339 UTC).
    pub quarantined_at: String,
    pub source_file: String,
    pub source_id: String,
    pub offset: u64,
    /// A stable code (`not_json`, `missing_timestamp`, ...).
    pub reason: String,
    pub error: String,
    /// The line as text (invalid UTF-8 replaced), at most [`QUARANTINE_RAW_LIMIT`] bytes.
    pub raw: String,
    pub raw_truncated: bool,
    pub line_bytes: u64,
}

impl QuarantineEntry {
    pub fn new(
        source_file: &str,
        source_id: &str,
        offset: u64,
        reason: &str,
        error: String,
        raw: &[u8],
        line_bytes: u64,
    ) -> QuarantineEntry {
        let kept = &raw[..raw.len().min(QUARANTINE_RAW_LIMIT)];
        QuarantineEntry {
            quarantined_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            source_file: source_file.to_string(),
            source_id: source_id.to_string(),
            offset,
            reason: reason.to_string(),
            error,
            raw: String::from_utf8_lossy(kept).into_owned(),
            raw_truncated: (kept.len() as u64) < line_bytes,
            line_bytes,
        }
    }
}

/// Appends quarantine entries to the day's file.
#[derive(Debug, Clone)]
pub struct Quarantine {
    directory: PathBuf,
}

impl Quarantine {
    pub fn new(data_dir: &Path) -> Quarantine {
        Quarantine {
            directory: data_dir.join("quarantine"),
        }
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Appends and fsyncs `entries`.
    pub fn append(&self, entries: &[QuarantineEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.directory).map_err(|source| StoreError::Io {
            path: self.directory.clone(),
            source,
        })?;
        let path = self
            .directory
            .join(format!("{}.jsonl", chrono::Utc::now().format("%Y-%m-%d")));
        let mut text = Vec::new();
        for entry in entries {
            // Serializing plain strings and numbers cannot fail.
            if serde_json::to_writer(&mut text, entry).is_ok() {
                text.push(b'\n');
            }
        }
        let result = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| {
                file.write_all(&text)?;
                file.sync_all()
            });
        result.map_err(|source| StoreError::Io { path, source })
    }

    /// Every entry in every quarantine file, oldest file first.
    pub fn read_all(&self) -> Result<Vec<QuarantineEntry>> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&self.directory) {
            Ok(entries) => entries.flatten().map(|entry| entry.path()).collect(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.directory.clone(),
                    source,
                });
            }
        };
        files.retain(|path| {
            path.extension()
                .is_some_and(|extension| extension == "jsonl")
        });
        files.sort();
        let mut entries = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
            for line in text.lines().filter(|line| !line.trim().is_empty()) {
                let entry = serde_json::from_str(line)
                    .map_err(|error| StoreError::Invalid(format!("{}: {error}", path.display())))?;
                entries.push(entry);
            }
        }
        Ok(entries)
    }
}

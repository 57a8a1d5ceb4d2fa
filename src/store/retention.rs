//! Retention: whole `date=` partitions older than the configured number of days
//! are deleted. Deleting a part is idempotent, so a crash half-way simply
//! leaves the rest for the next run.

use super::compaction::read_dir_sorted;
use super::writer::flush_seq_of_file_name;
use super::{Result, StoreError};
use std::path::Path;

/// Removes every part in a `date=` folder strictly before `cutoff`; returns
/// the removed part ids.
pub fn remove_expired(events_dir: &Path, cutoff: chrono::NaiveDate) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for cluster in read_dir_sorted(events_dir)? {
        for date_dir in read_dir_sorted(&cluster)? {
            let Some(date) = date_dir
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_prefix("date="))
                .and_then(|text| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
            else {
                continue;
            };
            if date >= cutoff {
                continue;
            }
            for hour in read_dir_sorted(&date_dir)? {
                for file in read_dir_sorted(&hour)? {
                    let name = file
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if flush_seq_of_file_name(&name).is_some() {
                        std::fs::remove_file(&file).map_err(|source| StoreError::Io {
                            path: file.clone(),
                            source,
                        })?;
                        removed.push(name.trim_end_matches(".parquet").to_string());
                    }
                }
                let _ = std::fs::remove_dir(&hour);
            }
            let _ = std::fs::remove_dir(&date_dir);
        }
    }
    Ok(removed)
}

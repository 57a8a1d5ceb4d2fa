//! Compaction: a closed hour's small parts become one part.
//!
//! The compacted part lists the parts it replaces in its metadata and gets a
//! new flush sequence, committed through the checkpoint like any flush. Only
//! then are the replaced parts deleted; if the daemon dies in between, start-up
//! deletes them (they are named in a committed part), and if it dies before the
//! commit, the compacted part is an orphan that start-up deletes instead. Either
//! way no row is lost or counted twice.

use super::builder::PartitionKey;
use super::writer::{
    PartWriter, SourceSpan, WrittenPart, flush_seq_of_file_name, read_part_batches,
    read_part_metadata,
};
use super::{Result, StoreError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A partition folder and its parts.
#[derive(Debug, Clone)]
pub struct CompactionCandidate {
    pub directory: PathBuf,
    pub cluster: String,
    pub partition: PartitionKey,
    pub parts: Vec<PathBuf>,
}

/// Every `cluster=*/date=*/hour=*` folder under the events folder.
pub fn partition_dirs(events_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut partitions = Vec::new();
    for cluster in read_dir_sorted(events_dir)? {
        for date in read_dir_sorted(&cluster)? {
            partitions.extend(read_dir_sorted(&date)?);
        }
    }
    Ok(partitions)
}

/// Every committed part file (`part-*.parquet`) under the events folder.
pub fn list_part_files(events_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut parts = Vec::new();
    for hour in partition_dirs(events_dir)? {
        for file in read_dir_sorted(&hour)? {
            let name = file
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            if flush_seq_of_file_name(&name).is_some() {
                parts.push(file);
            }
        }
    }
    Ok(parts)
}

pub fn read_dir_sorted(directory: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StoreError::Io {
                path: directory.to_path_buf(),
                source,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    paths.sort();
    Ok(paths)
}

/// Parses `cluster=C/date=D/hour=H` from a partition folder.
pub fn partition_of_dir(directory: &Path) -> Option<(String, PartitionKey)> {
    let hour_text = directory.file_name()?.to_str()?.strip_prefix("hour=")?;
    let date_dir = directory.parent()?;
    let date_text = date_dir.file_name()?.to_str()?.strip_prefix("date=")?;
    let cluster = date_dir
        .parent()?
        .file_name()?
        .to_str()?
        .strip_prefix("cluster=")?;
    let date = chrono::NaiveDate::parse_from_str(date_text, "%Y-%m-%d").ok()?;
    let days = (date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days();
    let hour: u8 = hour_text.parse().ok().filter(|hour| *hour < 24)?;
    Some((
        cluster.to_string(),
        PartitionKey {
            days_since_epoch: days as i32,
            hour,
        },
    ))
}

/// The date of a partition.
pub fn partition_date(partition: PartitionKey) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(
        i64::from(partition.days_since_epoch),
    ))
}

/// Partitions whose hour ended before `closed_before` (UTC µs) and that hold
/// at least `min_parts` parts.
pub fn partitions_to_compact(
    events_dir: &Path,
    min_parts: usize,
    closed_before: i64,
) -> Result<Vec<CompactionCandidate>> {
    let mut by_dir: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for part in list_part_files(events_dir)? {
        if let Some(parent) = part.parent() {
            by_dir.entry(parent.to_path_buf()).or_default().push(part);
        }
    }
    let mut candidates = Vec::new();
    for (directory, parts) in by_dir {
        let Some((cluster, partition)) = partition_of_dir(&directory) else {
            continue;
        };
        let hour_end = partition.start_micros() + 3_600_000_000;
        if parts.len() >= min_parts.max(2) && hour_end <= closed_before {
            candidates.push(CompactionCandidate {
                directory,
                cluster,
                partition,
                parts,
            });
        }
    }
    Ok(candidates)
}

/// Writes one part holding every row of `candidate`'s parts, under flush `seq`.
/// The replaced parts are not deleted here: the caller commits first.
pub fn compact(
    writer: &PartWriter,
    candidate: &CompactionCandidate,
    seq: u64,
) -> Result<WrittenPart> {
    let mut batches = Vec::new();
    let mut spans: BTreeMap<String, SourceSpan> = BTreeMap::new();
    let mut replaces = Vec::new();
    for path in &candidate.parts {
        let metadata = read_part_metadata(path)?;
        for span in metadata.sources {
            spans
                .entry(span.source_id.clone())
                .and_modify(|existing| {
                    existing.min_offset = existing.min_offset.min(span.min_offset);
                    existing.end_offset = existing.end_offset.max(span.end_offset);
                    existing.rows += span.rows;
                })
                .or_insert(span);
        }
        replaces.push(metadata.part_id);
        batches.extend(read_part_batches(path)?);
    }
    writer.write_part(
        &candidate.cluster,
        candidate.partition,
        seq,
        &batches,
        spans.into_values().collect(),
        replaces,
    )
}

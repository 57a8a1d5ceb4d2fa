//! Compaction: a closed hour's small parts become one part, and an open
//! hour's many small parts become fewer while it still receives events.
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

/// Every partition folder with its committed parts, as candidates holding all
/// of them.
fn all_partitions(events_dir: &Path) -> Result<Vec<CompactionCandidate>> {
    let mut by_dir: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for part in list_part_files(events_dir)? {
        if let Some(parent) = part.parent() {
            by_dir.entry(parent.to_path_buf()).or_default().push(part);
        }
    }
    Ok(by_dir
        .into_iter()
        .filter_map(|(directory, parts)| {
            let (cluster, partition) = partition_of_dir(&directory)?;
            Some(CompactionCandidate {
                directory,
                cluster,
                partition,
                parts,
            })
        })
        .collect())
}

impl CompactionCandidate {
    /// Whether the partition's hour ended before `closed_before` (UTC µs).
    fn closed_before(&self, closed_before: i64) -> bool {
        self.partition.start_micros() + 3_600_000_000 <= closed_before
    }
}

/// Partitions whose hour ended before `closed_before` (UTC µs) and that hold
/// at least `min_parts` parts: all their parts become one.
pub fn partitions_to_compact(
    events_dir: &Path,
    min_parts: usize,
    closed_before: i64,
) -> Result<Vec<CompactionCandidate>> {
    Ok(all_partitions(events_dir)?
        .into_iter()
        .filter(|candidate| closed_to_compact(candidate, min_parts, closed_before))
        .collect())
}

fn closed_to_compact(
    candidate: &CompactionCandidate,
    min_parts: usize,
    closed_before: i64,
) -> bool {
    candidate.parts.len() >= min_parts.max(2) && candidate.closed_before(closed_before)
}

/// What one maintenance pass compacts, from one listing of the folder: first
/// the partitions still receiving events (their hour ended at or after
/// `closed_before`) that hold at least `open_min_small_parts` parts smaller
/// than `small_part_bytes` (those small parts become one), then the closed
/// ones as [`partitions_to_compact`] picks them.
///
/// Without the first kind an open hour gathers one part per flush (1,800 an
/// hour at the default 2 s) until it closes, and every query opens all of
/// them. Leaving the larger parts alone bounds the rewriting: a part is
/// rewritten only while it is small, and the hour's parts are merged whole
/// once it closes. Open hours come first because their part count is what
/// queries of the last hour pay for.
pub fn maintenance_candidates(
    events_dir: &Path,
    closed_min_parts: usize,
    open_min_small_parts: usize,
    small_part_bytes: u64,
    closed_before: i64,
) -> Result<Vec<CompactionCandidate>> {
    let (open, closed): (Vec<_>, Vec<_>) = all_partitions(events_dir)?
        .into_iter()
        .partition(|candidate| !candidate.closed_before(closed_before));
    let open = open.into_iter().filter_map(|mut candidate| {
        candidate.parts.retain(|part| {
            std::fs::metadata(part).is_ok_and(|metadata| metadata.len() < small_part_bytes)
        });
        (candidate.parts.len() >= open_min_small_parts.max(2)).then_some(candidate)
    });
    let closed = closed
        .into_iter()
        .filter(|candidate| closed_to_compact(candidate, closed_min_parts, closed_before));
    Ok(open.chain(closed).collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::writer::part_id;

    fn part(directory: &Path, seq: u64, bytes: u64) -> PathBuf {
        std::fs::create_dir_all(directory).expect("partition folder");
        let path = directory.join(format!("{}.parquet", part_id(seq)));
        let file = std::fs::File::create(&path).expect("part");
        file.set_len(bytes).expect("size");
        path
    }

    #[test]
    fn closed_hours_merge_whole_and_open_hours_merge_their_small_parts() {
        let events = tempfile::tempdir().expect("temp dir");
        let closed = events.path().join("cluster=c/date=2026-01-01/hour=10");
        let open = events.path().join("cluster=c/date=2026-01-01/hour=11");
        let mut seq = 0;
        let mut next = || {
            seq += 1;
            seq
        };
        for _ in 0..3 {
            part(&closed, next(), 10);
        }
        let large = part(&open, next(), 40 * 1024 * 1024);
        let small: Vec<PathBuf> = (0..5).map(|_| part(&open, next(), 10)).collect();
        let hour_11_start =
            crate::audit::parse_rfc3339_micros("2026-01-01T11:00:00Z").expect("time");

        let whole = partitions_to_compact(events.path(), 2, hour_11_start).expect("list");
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].directory, closed);
        assert_eq!(whole[0].parts.len(), 3);

        let candidates =
            maintenance_candidates(events.path(), 2, 4, 32 * 1024 * 1024, hour_11_start)
                .expect("list");
        assert_eq!(candidates.len(), 2, "the open hour, then the closed one");
        assert_eq!(candidates[0].directory, open);
        assert_eq!(candidates[0].parts, small, "the large part is left alone");
        assert!(!candidates[0].parts.contains(&large));
        assert_eq!(candidates[1].directory, closed);
        assert_eq!(candidates[1].parts.len(), 3);

        // Fewer small parts than asked for: the open hour waits.
        let candidates =
            maintenance_candidates(events.path(), 2, 6, 32 * 1024 * 1024, hour_11_start)
                .expect("list");
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].directory, closed);
    }
}

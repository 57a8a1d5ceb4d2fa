//! Compaction: a closed hour's small parts become fewer, larger ones, and an
//! open hour's many small parts become fewer while it still receives events.
//!
//! The compacted part lists the parts it replaces in its metadata and gets a
//! new flush sequence, committed through the checkpoint like any flush. Only
//! then are the replaced parts deleted; if the daemon dies in between, start-up
//! deletes them (they are named in a committed part), and if it dies before the
//! commit, the compacted part is an orphan that start-up deletes instead. Either
//! way no row is lost or counted twice.
//!
//! Design decision: one compaction is bounded by [`CompactionLimits`] (rows
//! and uncompressed bytes, read from the parts' footers), because it holds its
//! input in memory and runs on the committer thread. Merging a whole hour at
//! once held 6.5 million rows (1.7 GB) and stopped flushes for seconds in the
//! one-hour soak; bounded, an hour becomes several parts of at most
//! `max_rows` rows each, and a part is rewritten only while it is under half
//! the limits.
use super::builder::PartitionKey;
use super::writer::{
    PartSize, PartWriter, SourceSpan, WrittenPart, flush_seq_of_file_name, read_part_batches,
    read_part_metadata, read_part_size,
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

/// How much one compaction may take in: it holds its input in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionLimits {
    pub max_rows: u64,
    /// Uncompressed Parquet bytes (the footers' row-group sizes).
    pub max_bytes: u64,
}

impl CompactionLimits {
    /// A part at or over half the limits is left alone: it is not rewritten again.
    fn is_small(&self, size: PartSize) -> bool {
        size.rows < self.max_rows / 2 && size.bytes < self.max_bytes / 2
    }
}

/// Partitions whose hour ended before `closed_before` (UTC µs) and that hold
/// at least `min_parts` parts, with every part: all of them become one,
/// whatever their size (start-up tests and tools; the daemon uses the bounded
/// [`maintenance_candidates`]).
pub fn partitions_to_compact(
    events_dir: &Path,
    min_parts: usize,
    closed_before: i64,
) -> Result<Vec<CompactionCandidate>> {
    Ok(all_partitions(events_dir)?
        .into_iter()
        .filter(|candidate| {
            candidate.parts.len() >= min_parts.max(2) && candidate.closed_before(closed_before)
        })
        .collect())
}

/// The oldest small parts of `parts` (in flush order) that fit the limits
/// together, if at least two do and `at_least` small parts exist. Parts whose
/// footer cannot be read are left out (start-up deals with corrupt parts).
fn bounded_merge(parts: &[PathBuf], limits: CompactionLimits, at_least: usize) -> Vec<PathBuf> {
    let small: Vec<(PathBuf, PartSize)> = parts
        .iter()
        .filter_map(|part| {
            read_part_size(part)
                .ok()
                .filter(|size| limits.is_small(*size))
                .map(|size| (part.clone(), size))
        })
        .collect();
    if small.len() < at_least.max(2) {
        return Vec::new();
    }
    let mut total = PartSize::default();
    let mut chosen = Vec::new();
    for (part, size) in small {
        if chosen.len() >= 2
            && (total.rows + size.rows > limits.max_rows
                || total.bytes + size.bytes > limits.max_bytes)
        {
            break;
        }
        total.rows += size.rows;
        total.bytes += size.bytes;
        chosen.push(part);
    }
    chosen
}

/// What one maintenance pass compacts, from one listing of the folder: first
/// the partitions still receiving events (their hour ended at or after
/// `closed_before`) that hold at least `open_min_small_parts` small parts,
/// then the closed ones that hold at least `closed_min_parts` parts of which
/// two or more are small. Each candidate is the partition's oldest small
/// parts that fit `limits` together; what does not fit waits for the next pass.
///
/// Without the first kind an open hour gathers one part per flush (1,800 an
/// hour at the default 2 s) until it closes, and every query opens all of
/// them. Open hours come first because their part count is what queries of
/// the last hour pay for.
pub fn maintenance_candidates(
    events_dir: &Path,
    closed_min_parts: usize,
    open_min_small_parts: usize,
    limits: CompactionLimits,
    closed_before: i64,
) -> Result<Vec<CompactionCandidate>> {
    let (open, closed): (Vec<_>, Vec<_>) = all_partitions(events_dir)?
        .into_iter()
        .partition(|candidate| !candidate.closed_before(closed_before));
    let open = open.into_iter().filter_map(|mut candidate| {
        candidate.parts = bounded_merge(&candidate.parts, limits, open_min_small_parts);
        (!candidate.parts.is_empty()).then_some(candidate)
    });
    let closed = closed.into_iter().filter_map(|mut candidate| {
        if candidate.parts.len() < closed_min_parts.max(2) {
            return None;
        }
        candidate.parts = bounded_merge(&candidate.parts, limits, 2);
        (!candidate.parts.is_empty()).then_some(candidate)
    });
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
    use crate::test_support::write_part;

    #[test]
    fn compactions_take_the_oldest_small_parts_within_the_limits() {
        let events = tempfile::tempdir().expect("temp dir");
        let writer = PartWriter::new(events.path(), 1000, 1);
        // Hour 09 is closed: five parts of 10 rows. Hour 10 still receives
        // events: one part of 60 rows, then five of 10.
        let closed: Vec<PathBuf> = (1..=5)
            .map(|seq| write_part(&writer, seq, seq * 100, 10, 9).path)
            .collect();
        let large = write_part(&writer, 6, 600, 60, 10).path;
        let small: Vec<PathBuf> = (7..=11)
            .map(|seq| write_part(&writer, seq, seq * 100, 10, 10).path)
            .collect();
        let hour_10 = crate::audit::parse_rfc3339_micros("2020-01-01T10:00:00Z").expect("time");
        let limits = CompactionLimits {
            max_rows: 100,
            max_bytes: u64::MAX,
        };

        // Small means under 50 rows: the 60-row part is never rewritten.
        let candidates =
            maintenance_candidates(events.path(), 4, 4, limits, hour_10).expect("list");
        assert_eq!(candidates.len(), 2, "the open hour, then the closed one");
        assert_eq!(candidates[0].parts, small);
        assert!(!candidates[0].parts.contains(&large));
        assert_eq!(candidates[1].parts, closed);

        // A tighter limit: the oldest parts that fit together, the rest later.
        let tight = CompactionLimits {
            max_rows: 30,
            ..limits
        };
        let candidates = maintenance_candidates(events.path(), 4, 4, tight, hour_10).expect("list");
        assert_eq!(candidates[0].parts, small[..3].to_vec());
        assert_eq!(candidates[1].parts, closed[..3].to_vec());

        // Too few parts: the closed hour waits for 6, the open one for 6 small ones.
        assert!(
            maintenance_candidates(events.path(), 6, 6, limits, hour_10)
                .expect("list")
                .is_empty()
        );
        // The byte limit counts too: with room for no part, nothing is small.
        let no_room = CompactionLimits {
            max_rows: 100,
            max_bytes: 1,
        };
        assert!(
            maintenance_candidates(events.path(), 4, 4, no_room, hour_10)
                .expect("list")
                .is_empty()
        );

        // Merged, the closed hour's parts are one part of 50 rows: one small
        // part is left and nothing more is done.
        let merged = compact(&writer, &candidates_for(&events, &closed), 12).expect("compact");
        for path in &closed {
            std::fs::remove_file(path).expect("replaced part deleted");
        }
        assert_eq!(merged.metadata.rows, 50);
        let candidates =
            maintenance_candidates(events.path(), 1, 4, limits, hour_10).expect("list");
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].parts, small, "only the open hour");
    }

    fn candidates_for(events: &tempfile::TempDir, parts: &[PathBuf]) -> CompactionCandidate {
        let mut candidate = partitions_to_compact(events.path(), 2, i64::MAX)
            .expect("list")
            .into_iter()
            .find(|candidate| candidate.parts.contains(&parts[0]))
            .expect("the partition");
        candidate.parts = parts.to_vec();
        candidate
    }
}

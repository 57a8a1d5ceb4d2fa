//! Start-up reconciliation of parts, checkpoints and manifest.
//!
//! The rule: a part whose flush sequence is at most `last_flush_seq` of
//! `checkpoints.json` is committed; a higher one is an orphan of a flush that
//! died before its commit and is deleted (its lines are read again). Parts a
//! committed compaction replaced are deleted too. If `checkpoints.json` is
//! missing or unreadable while parts exist, it is rebuilt from the parts' own
//! metadata (then every part counts as committed; the prefix confirmations are
//! lost, so a fingerprint match then rests on the first line alone).
//!
//! A committed part whose footer cannot be read is corrupt: it would break
//! every query over the folder, so it is moved to `data/corrupt/` and its rows
//! are read again from their source, if the source still exists
//! ([`repair_corrupt_parts`]). Which source ranges it held comes from the
//! catalog's `part_sources` (its own footer is unreadable); the rows re-read
//! are exactly the lines of those ranges that fall in the part's partition.
//! The new part records the corrupt one in `replaces`, so a crash between
//! committing the new part and moving the old one aside finishes at the next
//! start instead of reading the range twice.

use super::checkpoint::{Checkpointer, Checkpoints, SourceCheckpoint};
use super::fingerprint::{Fingerprint, PrefixCheck, first_line};
use super::reader::{LineReader, read_file_prefix};
use super::{IngestError, PipelineSettings, Result};
use crate::audit::EventView;
use crate::store::builder::{LineOrigin, PartitionKey, PartitionedColumns};
use crate::store::catalog::Catalog;
use crate::store::compaction::{list_part_files, partition_dirs, read_dir_sorted};
use crate::store::writer::{PartWriter, SourceSpan};
use crate::store::writer::{WrittenPart, flush_seq_of_file_name, read_part_metadata};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Default)]
pub struct Recovery {
    pub checkpoints: Checkpoints,
    /// The committed parts on disk, with their metadata.
    pub parts: Vec<WrittenPart>,
    pub orphans_removed: usize,
    pub replaced_removed: usize,
    pub temporary_removed: usize,
    /// Committed parts whose footer cannot be read (their original paths;
    /// already moved to `data/corrupt/`): [`repair_corrupt_parts`] re-reads their rows.
    pub unreadable_parts: Vec<PathBuf>,
    pub checkpoints_rebuilt: bool,
    /// What [`repair_corrupt_parts`] did, one entry per corrupt part.
    pub corrupt_parts: Vec<CorruptPart>,
}

/// A corrupt part found at start: where it went and what became of its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptPart {
    pub part_id: String,
    pub moved_to: PathBuf,
    /// Rows the manifest says it held (0 if the manifest did not know it).
    pub rows_expected: u64,
    /// Rows read again from the source and committed in a new part.
    pub rows_recovered: u64,
    /// Why some rows could not be recovered (source gone, manifest lost...).
    pub problem: Option<String>,
}

pub fn recover(data_dir: &Path) -> Result<Recovery> {
    let events_dir = crate::store::views::events_dir(data_dir);
    let store_error = |error: crate::store::StoreError| IngestError::Store(error.to_string());
    let mut recovery = Recovery {
        temporary_removed: remove_temporary_files(&events_dir).map_err(store_error)?,
        ..Recovery::default()
    };
    let checkpointer = Checkpointer::new(data_dir);
    let loaded = match checkpointer.load() {
        Ok(loaded) => loaded,
        Err(IngestError::CorruptCheckpoint { path, message }) => {
            let aside = path.with_extension(format!(
                "json.corrupt-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S")
            ));
            tracing::error!(%message, aside = %aside.display(), "checkpoints.json unreadable; rebuilding it from the parts");
            let _ = std::fs::rename(&path, &aside);
            None
        }
        Err(error) => return Err(error),
    };
    let part_files = list_part_files(&events_dir).map_err(store_error)?;
    let mut committed_files = Vec::new();
    match &loaded {
        Some(checkpoints) => {
            for path in part_files {
                let seq = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .and_then(flush_seq_of_file_name)
                    .unwrap_or(u64::MAX);
                if seq > checkpoints.last_flush_seq {
                    tracing::warn!(part = %path.display(), seq, committed = checkpoints.last_flush_seq, "removing orphan part of an uncommitted flush");
                    std::fs::remove_file(&path).map_err(|source| IngestError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    recovery.orphans_removed += 1;
                } else {
                    committed_files.push(path);
                }
            }
        }
        None => committed_files = part_files,
    }
    let mut parts = Vec::new();
    for path in committed_files {
        match read_part_metadata(&path) {
            Ok(metadata) => {
                let bytes = std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
                parts.push(WrittenPart {
                    path,
                    bytes,
                    metadata,
                });
            }
            Err(error) => {
                tracing::error!(%error, part = %path.display(), "unreadable part (corrupt?); repaired before ingest starts");
                recovery.unreadable_parts.push(path);
            }
        }
    }
    let replaced: HashSet<String> = parts
        .iter()
        .flat_map(|part| part.metadata.replaces.iter().cloned())
        .collect();
    // A corrupt part already re-read into a committed part (the crash came
    // before it was moved aside) only needs moving aside.
    let mut still_unreadable = Vec::new();
    for path in std::mem::take(&mut recovery.unreadable_parts) {
        // Moved aside now, before anything opens the catalog: its views read
        // every part, and one corrupt part makes them fail.
        move_aside(data_dir, &path)?;
        if replaced.contains(&part_id_of_path(&path)) {
            recovery.replaced_removed += 1;
        } else {
            still_unreadable.push(path);
        }
    }
    recovery.unreadable_parts = still_unreadable;
    let mut kept = Vec::new();
    for part in parts {
        if replaced.contains(&part.metadata.part_id) {
            tracing::info!(part = %part.path.display(), "removing a part already compacted into another");
            std::fs::remove_file(&part.path).map_err(|source| IngestError::Io {
                path: part.path.clone(),
                source,
            })?;
            recovery.replaced_removed += 1;
        } else {
            kept.push(part);
        }
    }
    recovery.checkpoints = match loaded {
        Some(checkpoints) => checkpoints,
        None => {
            let rebuilt = rebuild_checkpoints(&kept);
            if !kept.is_empty() {
                recovery.checkpoints_rebuilt = true;
            }
            checkpointer.store(&rebuilt)?;
            rebuilt
        }
    };
    recovery.parts = kept;
    Ok(recovery)
}

fn rebuild_checkpoints(parts: &[WrittenPart]) -> Checkpoints {
    let mut checkpoints = Checkpoints::default();
    for part in parts {
        checkpoints.last_flush_seq = checkpoints.last_flush_seq.max(part.metadata.flush_seq);
        for span in &part.metadata.sources {
            let entry = checkpoints
                .sources
                .entry(span.source_id.clone())
                .or_insert_with(|| SourceCheckpoint {
                    fingerprint: span.fingerprint.clone(),
                    prefix: PrefixCheck {
                        length: 0,
                        hash: xxhash_rust::xxh3::xxh3_64(b""),
                    },
                    committed_offset: 0,
                    last_path: PathBuf::from(&span.source_file),
                    lines: 0,
                    updated_at: chrono::Utc::now().timestamp_micros(),
                });
            entry.committed_offset = entry.committed_offset.max(span.end_offset);
            entry.lines += span.rows;
        }
    }
    checkpoints
}

fn part_id_of_path(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Moves a part to `data/corrupt/<cluster=..>/<date=..>/<hour=..>/`, keeping it
/// for inspection while taking it out of every query.
fn move_aside(data_dir: &Path, path: &Path) -> Result<PathBuf> {
    let events_dir = crate::store::views::events_dir(data_dir);
    let relative = path
        .strip_prefix(&events_dir)
        .unwrap_or(path.file_name().map(Path::new).unwrap_or(path));
    let destination = data_dir.join("corrupt").join(relative);
    if let Some(parent) = destination.parent() {
        std::fs::create_dir_all(parent).map_err(|source| IngestError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::rename(path, &destination).map_err(|source| IngestError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(parent) = path.parent() {
        let _ = crate::store::writer::sync_dir(parent);
    }
    tracing::error!(part = %path.display(), moved_to = %destination.display(), "corrupt part moved aside");
    Ok(destination)
}

/// `cluster`, `date` and `hour` from a part's folder names.
fn partition_of_path(path: &Path) -> Option<(String, String, u8)> {
    let hour_dir = path.parent()?;
    let date_dir = hour_dir.parent()?;
    let cluster_dir = date_dir.parent()?;
    let value = |directory: &Path, key: &str| -> Option<String> {
        directory
            .file_name()?
            .to_str()?
            .strip_prefix(key)
            .map(str::to_string)
    };
    Some((
        value(cluster_dir, "cluster=")?,
        value(date_dir, "date=")?,
        value(hour_dir, "hour=")?.parse().ok()?,
    ))
}

/// Finds the file that is source `source_id` now: its last known path, or a
/// sibling (it may have been rotated or gzipped since) whose first line has the
/// same fingerprint and whose prefix matches the committed prefix check.
fn locate_source(source_id: &str, checkpoints: &Checkpoints) -> Option<PathBuf> {
    let checkpoint = checkpoints.sources.get(source_id)?;
    let matches = |path: &Path| -> bool {
        let Ok(prefix) = read_file_prefix(path, super::fingerprint::CONFIRM_PREFIX_LIMIT) else {
            return false;
        };
        let Some(line) = first_line(&prefix) else {
            return false;
        };
        if Fingerprint::of_first_line(line).to_hex() != checkpoint.fingerprint {
            return false;
        }
        let length = checkpoint.prefix.length as usize;
        length == 0
            || (prefix.len() >= length && PrefixCheck::of(&prefix[..length]) == checkpoint.prefix)
    };
    if matches(&checkpoint.last_path) {
        return Some(checkpoint.last_path.clone());
    }
    let folder = checkpoint.last_path.parent()?;
    let mut siblings: Vec<PathBuf> = std::fs::read_dir(folder)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .collect();
    siblings.sort();
    siblings
        .into_iter()
        .find(|path| path.is_file() && matches(path))
}

/// Re-reads the lines of `span` that fall in partition (`date`, `hour`) into `columns`.
/// Returns the rows read and the span they cover.
fn reread_span(
    source: &Path,
    span: &SourceSpan,
    date: &str,
    hour: u8,
    settings: &PipelineSettings,
    columns: &mut PartitionedColumns,
) -> std::io::Result<SourceSpan> {
    let mut reader = LineReader::open(source, span.min_offset, super::tail::CHUNK_BYTES)?;
    let source_file = source.to_string_lossy().into_owned();
    let mut reread = SourceSpan {
        source_file: source_file.clone(),
        rows: 0,
        ..span.clone()
    };
    while reader.position() < span.end_offset {
        let outcome = reader.read_chunk(true)?;
        if let Some(chunk) = outcome.chunk {
            let mut position = 0usize;
            while position < chunk.data.len() {
                let offset = chunk.start + position as u64;
                let end = memchr::memchr(b'\n', &chunk.data[position..])
                    .map_or(chunk.data.len(), |index| position + index + 1);
                let line = chunk.data[position..end].trim_ascii_end();
                position = end;
                if offset >= span.end_offset {
                    break;
                }
                // Lines too long or that did not decode were quarantined the
                // first time (the same reader buffer and limit as the tailer).
                if line.len() > settings.max_line_bytes {
                    continue;
                }
                let Ok(event) = EventView::parse(line) else {
                    continue;
                };
                let key = PartitionKey::of_micros(event.ts);
                if key.hour != hour || key.date_text() != date {
                    continue;
                }
                let origin = LineOrigin {
                    source_file: &source_file,
                    source_fingerprint: &span.fingerprint,
                    offset,
                };
                columns.append(&event, origin, &settings.object_retention);
                reread.rows += 1;
            }
        }
        if outcome.at_end {
            break;
        }
    }
    Ok(reread)
}

/// Moves every corrupt part aside and commits its rows again from their
/// sources (see the module doc). Parts the catalog does not describe, or whose
/// source is gone, are moved aside and reported with the rows lost.
pub fn repair_corrupt_parts(
    data_dir: &Path,
    recovery: &mut Recovery,
    catalog: &Catalog,
    settings: &PipelineSettings,
) -> Result<()> {
    let store_error = |error: crate::store::StoreError| IngestError::Store(error.to_string());
    let writer = PartWriter::new(
        crate::store::views::events_dir(data_dir),
        settings.row_group_rows,
        settings.zstd_level,
    );
    for path in std::mem::take(&mut recovery.unreadable_parts) {
        let part_id = part_id_of_path(&path);
        let known = catalog.part_sources(&part_id).map_err(store_error)?;
        let rows_expected: u64 = known.iter().map(|span| span.rows).sum();
        let mut problem = None;
        let mut columns = PartitionedColumns::default();
        let mut spans = Vec::new();
        match partition_of_path(&path) {
            None => problem = Some("not inside a cluster=/date=/hour= folder".to_string()),
            Some(_) if known.is_empty() => problem = Some("the catalog does not know which source ranges it held".to_string()),
            // Rebuilt offsets stop at the readable parts: whatever this part
            // held past them is read again by the tailer, so re-reading here
            // could store it twice.
            Some(_) if recovery.checkpoints_rebuilt => {
                problem = Some("checkpoints were rebuilt without it; only lines past the other parts are read again".to_string())
            }
            Some((_, date, hour)) => {
                for span in &known {
                    let Some(source) = locate_source(&span.source_id, &recovery.checkpoints) else {
                        problem = Some(format!("source {} is gone", span.source_id));
                        continue;
                    };
                    match reread_span(&source, span, &date, hour, settings, &mut columns) {
                        Ok(reread) if reread.rows == span.rows => spans.push(reread),
                        Ok(reread) => {
                            problem = Some(format!("{} holds {} rows of the range, the part held {}", source.display(), reread.rows, span.rows));
                            spans.push(reread);
                        }
                        Err(error) => problem = Some(format!("{}: {error}", source.display())),
                    }
                }
            }
        }
        let cluster = partition_of_path(&path)
            .map(|(cluster, _, _)| cluster)
            .unwrap_or_else(|| settings.cluster.clone());
        let rows_recovered: u64 = spans.iter().map(|span| span.rows).sum();
        // Commit the re-read rows first (a part that replaces the corrupt one,
        // then checkpoints.json), and only then move the corrupt part aside.
        if rows_recovered > 0 {
            let seq = recovery.checkpoints.last_flush_seq + 1;
            let batches = columns.finish().map_err(store_error)?;
            let mut written = Vec::new();
            for (key, batch) in batches {
                let part = writer
                    .write_part(
                        &cluster,
                        key,
                        seq,
                        &[batch],
                        spans.clone(),
                        vec![part_id.clone()],
                    )
                    .map_err(store_error)?;
                written.push(part);
            }
            recovery.checkpoints.last_flush_seq = seq;
            Checkpointer::new(data_dir).store(&recovery.checkpoints)?;
            recovery.parts.extend(written);
        }
        let events_dir = crate::store::views::events_dir(data_dir);
        let moved_to = data_dir
            .join("corrupt")
            .join(path.strip_prefix(&events_dir).unwrap_or(&path));
        let reason = match &problem {
            None => "corrupt; re-read from its source".to_string(),
            Some(problem) => format!("corrupt; {problem}"),
        };
        let _ = catalog.mark_removed(std::slice::from_ref(&part_id), &reason);
        let rows_lost = rows_expected.saturating_sub(rows_recovered);
        tracing::error!(part = %part_id, rows_expected, rows_recovered, rows_lost, problem = problem.as_deref().unwrap_or("none"), "corrupt part repaired");
        recovery.corrupt_parts.push(CorruptPart {
            part_id,
            moved_to,
            rows_expected,
            rows_recovered,
            problem,
        });
    }
    Ok(())
}

fn remove_temporary_files(events_dir: &Path) -> crate::store::Result<usize> {
    let mut removed = 0;
    for hour in partition_dirs(events_dir)? {
        for file in read_dir_sorted(&hour)? {
            let name = file
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&file);
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::writer::PartWriter;
    use crate::test_support::write_part;

    #[test]
    fn orphans_are_removed_and_committed_parts_kept() {
        let data = tempfile::tempdir().expect("tempdir");
        let writer = PartWriter::new(crate::store::views::events_dir(data.path()), 1000, 1);
        let checkpointer = Checkpointer::new(data.path());
        let committed = write_part(&writer, 1, 0, 10, 9);
        let mut checkpoints = Checkpoints {
            last_flush_seq: 1,
            ..Checkpoints::default()
        };
        checkpoints.sources.insert(
            "00aa".into(),
            SourceCheckpoint {
                fingerprint: "00aa".into(),
                prefix: PrefixCheck { length: 0, hash: 0 },
                committed_offset: 1000,
                last_path: "f".into(),
                lines: 10,
                updated_at: 0,
            },
        );
        checkpointer.store(&checkpoints).expect("commit");
        let orphan = write_part(&writer, 2, 10, 5, 10);
        let recovery = recover(data.path()).expect("recover");
        assert_eq!(recovery.orphans_removed, 1);
        assert!(!orphan.path.exists());
        assert!(committed.path.exists());
        assert_eq!(recovery.parts.len(), 1);
        assert_eq!(recovery.checkpoints, checkpoints);
    }

    #[test]
    fn lost_checkpoints_are_rebuilt_from_the_parts() {
        let data = tempfile::tempdir().expect("tempdir");
        let writer = PartWriter::new(crate::store::views::events_dir(data.path()), 1000, 1);
        write_part(&writer, 1, 0, 10, 9);
        write_part(&writer, 2, 10, 5, 10);
        let recovery = recover(data.path()).expect("recover");
        assert!(recovery.checkpoints_rebuilt);
        assert_eq!(recovery.checkpoints.last_flush_seq, 2);
        assert_eq!(recovery.checkpoints.sources["00aa"].committed_offset, 1500);
        assert_eq!(recovery.checkpoints.sources["00aa"].lines, 15);
        assert!(
            Checkpointer::new(data.path())
                .load()
                .expect("stored")
                .is_some()
        );
    }

    #[test]
    fn a_committed_compaction_finishes_at_start_and_an_uncommitted_one_is_undone() {
        let data = tempfile::tempdir().expect("tempdir");
        let events = crate::store::views::events_dir(data.path());
        let writer = PartWriter::new(&events, 1000, 1);
        let parts: Vec<WrittenPart> = (0..3)
            .map(|index| write_part(&writer, index + 1, index * 10, 10, 9))
            .collect();
        let checkpointer = Checkpointer::new(data.path());
        checkpointer
            .store(&Checkpoints {
                last_flush_seq: 3,
                ..Checkpoints::default()
            })
            .expect("commit");
        let candidate = crate::store::compaction::partitions_to_compact(&events, 2, i64::MAX)
            .expect("list")
            .remove(0);
        // Uncommitted compaction (seq 4 > 3): the compacted part is the orphan.
        let compacted = crate::store::compaction::compact(&writer, &candidate, 4).expect("compact");
        let recovery = recover(data.path()).expect("recover");
        assert!(!compacted.path.exists());
        assert_eq!(recovery.parts.len(), 3);
        // Committed compaction: the replaced parts go.
        let compacted = crate::store::compaction::compact(&writer, &candidate, 4).expect("compact");
        checkpointer
            .store(&Checkpoints {
                last_flush_seq: 4,
                ..Checkpoints::default()
            })
            .expect("commit");
        let recovery = recover(data.path()).expect("recover");
        assert_eq!(recovery.replaced_removed, 3);
        assert!(parts.iter().all(|part| !part.path.exists()));
        assert_eq!(recovery.parts.len(), 1);
        assert_eq!(recovery.parts[0].metadata.rows, 30);
        assert_eq!(recovery.parts[0].path, compacted.path);
    }
}

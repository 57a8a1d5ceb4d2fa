//! Start-up reconciliation of parts, checkpoints and manifest.
//!
//! The rule: a part whose flush sequence is at most `last_flush_seq` of
//! `checkpoints.json` is committed; a higher one is an orphan of a flush that
//! died before its commit and is deleted (its lines are read again). Parts a
//! committed compaction replaced are deleted too. If `checkpoints.json` is
//! missing or unreadable while parts exist, it is rebuilt from the parts' own
//! metadata (then every part counts as committed; the prefix confirmations are
//! lost, so a fingerprint match then rests on the first line alone).

use super::checkpoint::{Checkpointer, Checkpoints, SourceCheckpoint};
use super::fingerprint::PrefixCheck;
use super::{IngestError, Result};
use crate::store::compaction::{list_part_files, partition_dirs, read_dir_sorted};
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
    pub unreadable_parts: Vec<PathBuf>,
    pub checkpoints_rebuilt: bool,
}

pub fn recover(data_dir: &Path) -> Result<Recovery> {
    let events_dir = crate::store::views::events_dir(data_dir);
    let store_error = |error: crate::store::StoreError| IngestError::Store(error.to_string());
    let mut recovery = Recovery::default();
    recovery.temporary_removed = remove_temporary_files(&events_dir).map_err(store_error)?;
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
                tracing::error!(%error, part = %path.display(), "unreadable part left in place and reported");
                recovery.unreadable_parts.push(path);
            }
        }
    }
    let replaced: HashSet<String> = parts
        .iter()
        .flat_map(|part| part.metadata.replaces.iter().cloned())
        .collect();
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
    use crate::audit::AuditEvent;
    use crate::store::builder::{LineOrigin, ObjectRetention, PartitionKey, PartitionedColumns};
    use crate::store::writer::{PartWriter, SourceSpan};

    fn line(index: u64, hour: u32) -> String {
        format!(
            "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"id-{index}\",\"stage\":\"ResponseComplete\",\"verb\":\"get\",\
             \"user\":{{\"username\":\"alice\"}},\"requestReceivedTimestamp\":\"2020-01-01T{hour:02}:00:{:02}Z\"}}",
            index % 60
        )
    }

    fn write_part(writer: &PartWriter, seq: u64, first: u64, count: u64, hour: u32) -> WrittenPart {
        let retention = ObjectRetention::new(&[], 1024);
        let mut columns = PartitionedColumns::default();
        for index in first..first + count {
            let text = line(index, hour);
            let event = AuditEvent::decode(text.as_bytes()).expect("valid");
            columns.append(
                &event,
                LineOrigin {
                    source_file: "f",
                    source_fingerprint: "00aa",
                    offset: index * 100,
                },
                &retention,
            );
        }
        let batches = columns.finish().expect("batches");
        let (key, batch): (PartitionKey, _) = batches.into_iter().next().expect("one partition");
        let span = SourceSpan {
            source_id: "00aa".into(),
            fingerprint: "00aa".into(),
            source_file: "f".into(),
            min_offset: first * 100,
            end_offset: (first + count) * 100,
            rows: count,
        };
        writer
            .write_part("default", key, seq, &[batch], vec![span], Vec::new())
            .expect("part")
    }

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

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
use crate::store::compaction::{list_part_files, read_dir_sorted};
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
            let aside = path.with_extension(format!("json.corrupt-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S")));
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
                    std::fs::remove_file(&path).map_err(|source| IngestError::Io { path: path.clone(), source })?;
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
                parts.push(WrittenPart { path, bytes, metadata });
            }
            Err(error) => {
                tracing::error!(%error, part = %path.display(), "unreadable part left in place and reported");
                recovery.unreadable_parts.push(path);
            }
        }
    }
    let replaced: HashSet<String> = parts.iter().flat_map(|part| part.metadata.replaces.iter().cloned()).collect();
    let mut kept = Vec::new();
    for part in parts {
        if replaced.contains(&part.metadata.part_id) {
            tracing::info!(part = %part.path.display(), "removing a part already compacted into another");
            std::fs::remove_file(&part.path).map_err(|source| IngestError::Io { path: part.path.clone(), source })?;
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
            let entry = checkpoints.sources.entry(span.source_id.clone()).or_insert_with(|| SourceCheckpoint {
                fingerprint: span.fingerprint.clone(),
                prefix: PrefixCheck { length: 0, hash: xxhash_rust::xxh3::xxh3_64(b"") },
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
    for cluster in read_dir_sorted(events_dir)? {
        for date in read_dir_sorted(&cluster)? {
            for hour in read_dir_sorted(&date)? {
                for file in read_dir_sorted(&hour)? {
                    let name = file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
                    if name.starts_with('.') && name.ends_with(".tmp") {
                        let _ = std::fs::remove_file(&file);
                        removed += 1;
                    }
                }
            }
        }
    }
    Ok(removed)
}

//! `checkpoints.json`: per source file, how far it is committed; and the commit
//! point of the whole store.
//!
//! Writing this file (temporary file → fsync → rename → fsync folder) is the
//! moment a flush becomes committed. It records `last_flush_seq`: parts whose
//! flush sequence is higher are orphans of a flush that died before this
//! write, and start-up deletes them (their lines are read again from the
//! offsets recorded here). The format is a serde-tagged enum so a future
//! version can read this one.

use super::fingerprint::PrefixCheck;
use super::{IngestError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What auditlens knows about one source file (one fingerprint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCheckpoint {
    /// The first-line fingerprint, hex.
    pub fingerprint: String,
    /// Confirms a fingerprint match: the checksum of the first bytes.
    pub prefix: PrefixCheck,
    /// Every line before this (decompressed) byte offset is stored.
    pub committed_offset: u64,
    /// The path it was last read from (informational).
    pub last_path: PathBuf,
    /// Lines committed from this source.
    pub lines: u64,
    /// When it was last committed (UTC microseconds).
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version")]
pub enum CheckpointFile {
    #[serde(rename = "1")]
    V1 {
        last_flush_seq: u64,
        sources: BTreeMap<String, SourceCheckpoint>,
    },
}

/// The committed state: the last committed flush and every source's offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoints {
    pub last_flush_seq: u64,
    pub sources: BTreeMap<String, SourceCheckpoint>,
}

/// Loads and atomically stores [`Checkpoints`].
#[derive(Debug, Clone)]
pub struct Checkpointer {
    path: PathBuf,
}

impl Checkpointer {
    pub fn new(data_dir: &Path) -> Checkpointer {
        Checkpointer {
            path: data_dir.join("checkpoints.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `Ok(None)` when there is no checkpoint file yet; an error when it
    /// exists but cannot be read (the caller rebuilds it from the parts).
    pub fn load(&self) -> Result<Option<Checkpoints>> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(IngestError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let file: CheckpointFile =
            serde_json::from_slice(&text).map_err(|error| IngestError::CorruptCheckpoint {
                path: self.path.clone(),
                message: error.to_string(),
            })?;
        let CheckpointFile::V1 {
            last_flush_seq,
            sources,
        } = file;
        Ok(Some(Checkpoints {
            last_flush_seq,
            sources,
        }))
    }

    /// Commits `checkpoints`. When this returns, the flush it names is durable.
    pub fn store(&self, checkpoints: &Checkpoints) -> Result<()> {
        let file = CheckpointFile::V1 {
            last_flush_seq: checkpoints.last_flush_seq,
            sources: checkpoints.sources.clone(),
        };
        let bytes =
            serde_json::to_vec_pretty(&file).map_err(|error| IngestError::CorruptCheckpoint {
                path: self.path.clone(),
                message: error.to_string(),
            })?;
        match crate::store::atomic_write(&self.path, &bytes) {
            Ok(()) => Ok(()),
            // The rename may have happened before the error (a failed folder
            // fsync): then this flush *is* committed, and reporting a failure
            // would make the caller delete its parts, losing their lines.
            Err(error) if matches!(self.load(), Ok(Some(on_disk)) if on_disk == *checkpoints) => {
                tracing::warn!(%error, "checkpoint written but its folder could not be synced; treated as committed");
                Ok(())
            }
            Err(error) => Err(IngestError::Store(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reports_corruption() {
        let directory = tempfile::tempdir().expect("tempdir");
        let checkpointer = Checkpointer::new(directory.path());
        assert_eq!(checkpointer.load().expect("no file is fine"), None);
        let mut checkpoints = Checkpoints {
            last_flush_seq: 7,
            ..Checkpoints::default()
        };
        checkpoints.sources.insert(
            "00000000000000ab".into(),
            SourceCheckpoint {
                fingerprint: "00000000000000ab".into(),
                prefix: PrefixCheck {
                    length: 10,
                    hash: 99,
                },
                committed_offset: 1234,
                last_path: PathBuf::from("/var/log/audit.log"),
                lines: 3,
                updated_at: 1,
            },
        );
        checkpointer.store(&checkpoints).expect("stored");
        assert_eq!(checkpointer.load().expect("loads"), Some(checkpoints));
        std::fs::write(checkpointer.path(), b"{\"version\":\"1\",").expect("write");
        assert!(matches!(
            checkpointer.load(),
            Err(IngestError::CorruptCheckpoint { .. })
        ));
    }
}

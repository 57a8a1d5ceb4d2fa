//! Following files: which source a file is, where to resume, and the two
//! drivers that read: the daemon's [`Tailer`] over a folder, and the one-shot
//! [`backfill`] of named files.
//!
//! The folder scan is the source of truth; `notify` only wakes the scan early.
//! A file is opened once per inode and read through its open handle, so a file
//! renamed by rotation is drained through the handle we already hold, and a
//! file deleted while being read is still read to its end. At most one handle
//! reads a given source at a time (a rotated file and its `.gz`, or a copy,
//! are the same source).

use super::checkpoint::Checkpoints;
use super::fingerprint::{CONFIRM_PREFIX_LIMIT, Fingerprint, PrefixCheck, first_line};
use super::pipeline::{Pipeline, SourceTag};
use super::reader::{FileFormat, LineReader, read_file_prefix};
use super::stats::IngestStats;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// One chunk is at most this many bytes.
pub const CHUNK_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
struct KnownSource {
    fingerprint: u64,
    prefix: PrefixCheck,
    /// Everything before this offset has been handed to the pipeline.
    read_offset: u64,
}

/// What the tracker decided about a file.
#[derive(Debug, Clone)]
pub enum Identification {
    /// The first line is not complete yet: look again later.
    NotReady,
    /// The file is this source; resume at `resume_offset`.
    Source {
        tag: Arc<SourceTag>,
        resume_offset: u64,
    },
}

/// Maps files to sources by fingerprint and remembers how far each was read.
#[derive(Debug, Default)]
pub struct SourceTracker {
    sources: BTreeMap<String, KnownSource>,
}

impl SourceTracker {
    pub fn from_checkpoints(checkpoints: &Checkpoints) -> SourceTracker {
        let sources = checkpoints
            .sources
            .iter()
            .filter_map(|(source_id, checkpoint)| {
                let fingerprint = u64::from_str_radix(&checkpoint.fingerprint, 16).ok()?;
                Some((
                    source_id.clone(),
                    KnownSource {
                        fingerprint,
                        prefix: checkpoint.prefix,
                        read_offset: checkpoint.committed_offset,
                    },
                ))
            })
            .collect();
        SourceTracker { sources }
    }

    /// Identifies `path`. `finished`: the file will not grow, so a first line
    /// without a newline is complete. `may_grow`: the file was written to
    /// moments ago and may still be being written (a copy or a gzip in
    /// progress): if it shares its first line with a known source but holds
    /// less than that source's confirmed prefix, it is not yet told apart from
    /// a partial copy of that source, so it waits ([`Identification::NotReady`])
    /// instead of becoming a new source read from its start (duplicates).
    pub fn identify(
        &mut self,
        path: &Path,
        finished: bool,
        may_grow: bool,
    ) -> std::io::Result<Identification> {
        let prefix = read_file_prefix(path, CONFIRM_PREFIX_LIMIT)?;
        let line = match first_line(&prefix) {
            Some(line) => line,
            None if finished && !prefix.is_empty() => &prefix[..],
            None => return Ok(Identification::NotReady),
        };
        let fingerprint = Fingerprint::of_first_line(line);
        let file_check = PrefixCheck::of(&prefix);
        let matched = self.sources.iter().find_map(|(source_id, known)| {
            let same = known.fingerprint == fingerprint.0
                && prefix.len() as u64 >= known.prefix.length
                && PrefixCheck::of(&prefix[..known.prefix.length as usize]).hash
                    == known.prefix.hash;
            same.then(|| source_id.clone())
        });
        let source_id = match matched {
            Some(source_id) => source_id,
            None if may_grow
                && self.sources.values().any(|known| {
                    known.fingerprint == fingerprint.0
                        && (prefix.len() as u64) < known.prefix.length
                }) =>
            {
                return Ok(Identification::NotReady);
            }
            None => {
                let mut source_id = fingerprint.to_hex();
                if self.sources.contains_key(&source_id) {
                    // Same first line, different content: a distinct source.
                    source_id = format!("{}-{:016x}", fingerprint.to_hex(), file_check.hash);
                }
                self.sources.insert(
                    source_id.clone(),
                    KnownSource {
                        fingerprint: fingerprint.0,
                        prefix: file_check,
                        read_offset: 0,
                    },
                );
                source_id
            }
        };
        let known = self
            .sources
            .get_mut(&source_id)
            .ok_or_else(|| std::io::Error::other("source vanished"))?;
        if file_check.length > known.prefix.length {
            known.prefix = file_check;
        }
        let tag = Arc::new(SourceTag {
            source_id,
            fingerprint: fingerprint.to_hex(),
            path: path.to_string_lossy().into_owned(),
            prefix: known.prefix,
        });
        Ok(Identification::Source {
            tag,
            resume_offset: known.read_offset,
        })
    }

    pub fn advance(&mut self, source_id: &str, offset: u64) {
        if let Some(known) = self.sources.get_mut(source_id) {
            known.read_offset = known.read_offset.max(offset);
        }
    }
}

/// What [`drain`] did.
#[derive(Debug, Default)]
struct Drained {
    /// Bytes handed to the pipeline.
    handed: u64,
    /// The stream is damaged (a cut gzip).
    damaged: Option<String>,
    /// Nothing more to read right now.
    at_end: bool,
    /// The open file no longer starts with its source's bytes: it was cut and
    /// rewritten (copy-truncate) while being read. The chunk read then was not
    /// handed over; the handle must be dropped.
    rewritten: bool,
}

/// Reads `reader` to its current end, handing chunks to the pipeline.
/// `verify`: the file may be cut and rewritten in place (a plain file being
/// followed), so every chunk is handed over only if the file still starts
/// with the bytes its source was identified by once the chunk was read;
/// otherwise the chunk may hold the new content at the old offsets.
#[allow(clippy::too_many_arguments)]
fn drain(
    reader: &mut LineReader,
    tag: &Arc<SourceTag>,
    finished: bool,
    verify: bool,
    pipeline: &mut Pipeline,
    tracker: &mut SourceTracker,
    budget_bytes: u64,
    stop: Option<&AtomicBool>,
) -> Result<Drained, String> {
    let mut drained = Drained::default();
    loop {
        // A stop request ends the read between chunks: what was handed over
        // is flushed and checkpointed, the rest is read at the next start.
        if stop.is_some_and(|stop| stop.load(Ordering::Relaxed)) {
            return Ok(drained);
        }
        let outcome = reader
            .read_chunk(finished)
            .map_err(|error| format!("{}: {error}", reader.path().display()))?;
        let had_data = outcome.chunk.is_some() || !outcome.oversized.is_empty();
        if had_data && verify && !same_content(reader, tag) {
            drained.rewritten = true;
            return Ok(drained);
        }
        if had_data {
            let chunk = outcome.chunk.unwrap_or(super::reader::LineChunk {
                start: reader.position(),
                data: Vec::new(),
            });
            drained.handed += chunk.data.len() as u64;
            pipeline
                .stats()
                .bytes_read
                .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
            pipeline.submit(tag.clone(), chunk, outcome.oversized)?;
            tracker.advance(&tag.source_id, reader.position());
        }
        if outcome.at_end || outcome.damaged.is_some() || drained.handed >= budget_bytes {
            drained.damaged = outcome.damaged;
            drained.at_end = outcome.at_end;
            return Ok(drained);
        }
    }
}

/// One-shot ingest of files and folders (plain or `.gz`), with the same
/// exactly-once bookkeeping as the daemon: a file already stored adds nothing.
/// `progress` is called with the bytes handed over.
pub fn backfill(
    paths: &[PathBuf],
    tracker: &mut SourceTracker,
    pipeline: &mut Pipeline,
    mut progress: impl FnMut(u64),
) -> Result<BackfillReport, String> {
    let mut report = BackfillReport::default();
    let files = expand_paths(paths)?;
    for path in files {
        let identification = match tracker.identify(&path, true, false) {
            Ok(identification) => identification,
            Err(error) => {
                tracing::error!(file = %path.display(), %error, "cannot read file");
                pipeline.stats().read_errors.fetch_add(1, Ordering::Relaxed);
                report.unreadable.push(path.clone());
                continue;
            }
        };
        let Identification::Source { tag, resume_offset } = identification else {
            report.empty += 1;
            continue;
        };
        let mut reader = match LineReader::open(&path, resume_offset, CHUNK_BYTES) {
            Ok(reader) => reader,
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                report.already_stored += 1;
                continue;
            }
            Err(error) => {
                tracing::error!(file = %path.display(), %error, "cannot open file");
                pipeline.stats().read_errors.fetch_add(1, Ordering::Relaxed);
                report.unreadable.push(path.clone());
                continue;
            }
        };
        let Drained {
            handed, damaged, ..
        } = drain(
            &mut reader,
            &tag,
            true,
            false,
            pipeline,
            tracker,
            u64::MAX,
            None,
        )?;
        if let Some(damage) = damaged {
            tracing::error!(file = %path.display(), error = %damage, "file is damaged; stored what it held");
            pipeline.stats().read_errors.fetch_add(1, Ordering::Relaxed);
            report.damaged.push((path.clone(), damage));
        }
        if handed == 0 {
            report.already_stored += 1;
        } else {
            report.files_read += 1;
        }
        progress(handed);
    }
    Ok(report)
}

#[derive(Debug, Default)]
pub struct BackfillReport {
    pub files_read: usize,
    pub already_stored: usize,
    pub empty: usize,
    pub unreadable: Vec<PathBuf>,
    pub damaged: Vec<(PathBuf, String)>,
}

/// Files named directly, and the regular files inside named folders (oldest first).
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        let metadata =
            std::fs::metadata(path).map_err(|error| format!("{}: {error}", path.display()))?;
        if metadata.is_dir() {
            let mut inside: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(path)
                .map_err(|error| format!("{}: {error}", path.display()))?
                .flatten()
                .filter_map(|entry| {
                    let meta = entry.metadata().ok()?;
                    let name = entry.file_name();
                    (meta.is_file() && !name.to_string_lossy().starts_with('.')).then(|| {
                        (
                            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                            entry.path(),
                        )
                    })
                })
                .collect();
            inside.sort();
            files.extend(inside.into_iter().map(|(_, path)| path));
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Total size of what [`expand_paths`] finds, for a progress bar.
pub fn total_bytes(paths: &[PathBuf]) -> u64 {
    expand_paths(paths)
        .unwrap_or_default()
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|meta| meta.len())
        .sum()
}

struct ActiveFile {
    reader: LineReader,
    tag: Arc<SourceTag>,
    path: PathBuf,
    last_len: u64,
    last_growth: Instant,
    damaged_at_len: Option<u64>,
}

/// The daemon's reader: scans the audit folder and follows every file in it.
pub struct Tailer {
    directory: PathBuf,
    pattern: glob::Pattern,
    partial_line_grace: Duration,
    tracker: SourceTracker,
    active: HashMap<(u64, u64), ActiveFile>,
    /// Inodes read to their end and not changed since: (len, mtime).
    settled: HashMap<(u64, u64), (u64, SystemTime)>,
    warned_missing_dir: bool,
}

struct ListedFile {
    path: PathBuf,
    key: (u64, u64),
    len: u64,
    modified: SystemTime,
}

impl Tailer {
    pub fn new(
        directory: PathBuf,
        glob_pattern: &str,
        partial_line_grace: Duration,
        tracker: SourceTracker,
    ) -> Result<Tailer, String> {
        let pattern = glob::Pattern::new(glob_pattern)
            .map_err(|error| format!("ingest.glob {glob_pattern:?}: {error}"))?;
        Ok(Tailer {
            directory,
            pattern,
            partial_line_grace,
            tracker,
            active: HashMap::new(),
            settled: HashMap::new(),
            warned_missing_dir: false,
        })
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn list(&mut self, stats: &IngestStats) -> Vec<ListedFile> {
        let entries = match std::fs::read_dir(&self.directory) {
            Ok(entries) => {
                self.warned_missing_dir = false;
                entries
            }
            Err(error) => {
                if !self.warned_missing_dir {
                    tracing::warn!(dir = %self.directory.display(), %error, "audit folder not readable yet; waiting for it");
                    self.warned_missing_dir = true;
                }
                return Vec::new();
            }
        };
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !self.pattern.matches(&name.to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            // Follow a symlink to a regular file; skip anything else.
            let Ok(metadata) = std::fs::metadata(&path) else {
                stats.read_errors.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if !metadata.is_file() {
                continue;
            }
            files.push(ListedFile {
                path,
                key: (metadata.dev(), metadata.ino()),
                len: metadata.len(),
                modified: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        files
    }

    /// One pass: discover files, read everything new. Returns bytes handed over.
    pub fn poll(&mut self, pipeline: &mut Pipeline, stop: &AtomicBool) -> Result<u64, String> {
        let stats = pipeline.stats().clone();
        let listed = self.list(&stats);
        let present: HashSet<(u64, u64)> = listed.iter().map(|file| file.key).collect();
        let newest_plain = listed
            .iter()
            .filter(|file| FileFormat::of_path(&file.path) == FileFormat::Plain)
            .map(|file| file.modified)
            .max();
        // Open what is new.
        for file in &listed {
            if self.active.contains_key(&file.key) {
                if let Some(active) = self.active.get_mut(&file.key) {
                    active.path = file.path.clone();
                }
                continue;
            }
            if self.settled.get(&file.key) == Some(&(file.len, file.modified)) {
                continue;
            }
            // Written to moments ago: perhaps a copy or a gzip still being written.
            let may_grow = SystemTime::now()
                .duration_since(file.modified)
                .map_or(true, |age| age < self.partial_line_grace);
            let is_gzip = FileFormat::of_path(&file.path) == FileFormat::Gzip;
            let finished = is_gzip && !may_grow;
            let identification = match self.tracker.identify(&file.path, finished, may_grow) {
                Ok(identification) => identification,
                Err(error) => {
                    tracing::warn!(file = %file.path.display(), %error, "cannot read audit file; retrying at next scan");
                    stats.read_errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            let Identification::Source { tag, resume_offset } = identification else {
                continue;
            };
            if self
                .active
                .values()
                .any(|active| active.tag.source_id == tag.source_id)
            {
                // Another handle already reads this source (a rotated file and its .gz).
                continue;
            }
            match LineReader::open(&file.path, resume_offset, CHUNK_BYTES) {
                Ok(reader)
                    if reader.file_key().ok() != Some(file.key) || !same_content(&reader, &tag) =>
                {
                    // The path names another file than the one listed or
                    // identified: it was rotated in between (rename, new live
                    // file). Keeping this handle under the listed file's key
                    // would read the new file in its place and then take the
                    // listed one as read (its lines lost). Look again at the
                    // next scan.
                    tracing::debug!(file = %file.path.display(), "file replaced while being opened; looking again");
                }
                Ok(reader)
                    if !is_gzip && reader.file_len().is_ok_and(|len| len < resume_offset) =>
                {
                    // Holds less than was read of its source already (an older
                    // copy, or a copy still being written): nothing to read
                    // until it changes.
                    self.settled.insert(file.key, (file.len, file.modified));
                }
                Ok(reader) => {
                    self.active.insert(
                        file.key,
                        ActiveFile {
                            reader,
                            tag,
                            path: file.path.clone(),
                            last_len: file.len,
                            last_growth: Instant::now(),
                            damaged_at_len: None,
                        },
                    );
                }
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                    // Fully read already (a .gz of a file we drained).
                    self.settled.insert(file.key, (file.len, file.modified));
                }
                Err(error) => {
                    tracing::warn!(file = %file.path.display(), %error, "cannot open audit file; retrying at next scan");
                    stats.read_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // Read every open handle.
        let mut handed_total = 0;
        let keys: Vec<(u64, u64)> = self.active.keys().copied().collect();
        for key in keys {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Some(mut active) = self.active.remove(&key) else {
                continue;
            };
            let listed_file = listed.iter().find(|file| file.key == key);
            let still_listed = listed_file.is_some();
            let current_len = active
                .reader
                .file_len()
                .unwrap_or_else(|_| listed_file.map(|file| file.len).unwrap_or(0));
            if current_len != active.last_len {
                active.last_len = current_len;
                active.last_growth = Instant::now();
            }
            let is_gzip = FileFormat::of_path(&active.path) == FileFormat::Gzip;
            // Checked through the open handle, so also for a file renamed or
            // deleted since (cut, rewritten, then rotated away).
            if !is_gzip
                && (current_len < active.reader.position()
                    || !same_content(&active.reader, &active.tag))
            {
                // Copy-truncate: the file was cut. Its old lines live on in the
                // copy (same fingerprint); the new content is a new source.
                tracing::info!(file = %active.path.display(), "file truncated; re-identifying it");
                continue;
            }
            let idle = active.last_growth.elapsed();
            let rotated_away = !still_listed
                || newest_plain
                    .is_some_and(|newest| listed_file.is_some_and(|file| file.modified < newest));
            let finished = if is_gzip {
                active.damaged_at_len == Some(current_len) && idle >= self.partial_line_grace
            } else {
                rotated_away && idle >= self.partial_line_grace
            };
            let Drained {
                handed,
                damaged,
                at_end,
                rewritten,
            } = drain(
                &mut active.reader,
                &active.tag,
                finished,
                !is_gzip,
                pipeline,
                &mut self.tracker,
                64 * 1024 * 1024,
                Some(stop),
            )?;
            handed_total += handed;
            if rewritten {
                // Cut and rewritten while this chunk was read: the chunk was
                // dropped; what the source held past it is read from its copy.
                tracing::info!(file = %active.path.display(), "file truncated while being read; re-identifying it");
                continue;
            }
            stats.record_file_size(&active.path.to_string_lossy(), current_len, !is_gzip, idle);
            if let Some(damage) = damaged {
                if finished {
                    tracing::error!(file = %active.path.display(), error = %damage, "gzip file is cut short; stored what it held");
                    stats.read_errors.fetch_add(1, Ordering::Relaxed);
                } else {
                    // Perhaps still being written: reopen later at the same position.
                    active.damaged_at_len = Some(current_len);
                    let position = active.reader.position();
                    if let Ok(reader) = LineReader::open(&active.path, position, CHUNK_BYTES) {
                        active.reader = reader;
                    }
                    self.active.insert(key, active);
                    continue;
                }
            }
            let done = at_end && (is_gzip || !still_listed || finished);
            if done {
                if let Some(file) = listed_file {
                    self.settled.insert(key, (file.len, file.modified));
                }
                stats.forget_file(&active.path.to_string_lossy());
                continue;
            }
            self.active.insert(key, active);
        }
        // Forget settled inodes that are gone.
        self.settled.retain(|key, _| present.contains(key));
        Ok(handed_total)
    }
}

/// Whether the file `reader` has open still starts with the bytes its source
/// was identified by (false after a copy-truncate, even once the new content
/// has grown past the old read position, and even if the file was renamed or
/// deleted since). Read through the open handle, not the path: the path may
/// name another file by now, and opening it would wake the folder watcher.
fn same_content(reader: &LineReader, tag: &SourceTag) -> bool {
    match reader.head(tag.prefix.length) {
        Ok(Some(prefix)) => {
            prefix.len() as u64 == tag.prefix.length
                && PrefixCheck::of(&prefix).hash == tag.prefix.hash
        }
        // A gzip is never rewritten in place.
        Ok(None) => true,
        // Unreadable right now: the read itself reports it.
        Err(_) => true,
    }
}

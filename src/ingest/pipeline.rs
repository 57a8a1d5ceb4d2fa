//! The ingest pipeline: chunks of lines → decode workers → the committer.
//!
//! ```text
//! reader ──WorkItem──► decode workers (N threads) ──Decoded──► committer thread
//!          (bounded)    line → EventView → Arrow       (bounded)  reorder by seq, buffer per
//!                       bad line → QuarantineEntry                partition, flush: parts → quarantine
//!                                                                 → checkpoints.json (commit) → manifest
//! ```
//!
//! Every channel is bounded, so a slow disk slows the reader instead of
//! growing memory. Chunks carry a sequence number and the committer applies
//! them in order, so the checkpoint of a source only ever moves past lines that
//! are stored (or quarantined). A failed flush keeps its data and is retried
//! with back-off; nothing is dropped. Compaction and retention run on the
//! committer thread too, because they allocate flush sequence numbers and
//! commit through the same checkpoint.

use super::checkpoint::{Checkpointer, Checkpoints, SourceCheckpoint};
use super::fingerprint::PrefixCheck;
use super::reader::{LineChunk, OversizedLine};
use super::stats::IngestStats;
use crate::audit::{AuditEvent, DecodeError, EventView};
use crate::store::builder::{LineOrigin, ObjectRetention, PartitionKey, PartitionedColumns};
use crate::store::catalog::Catalog;
use crate::store::quarantine::{Quarantine, QuarantineEntry};
use crate::store::writer::{PartWriter, SourceSpan, WrittenPart};
use crate::store::{compaction, retention};
use arrow::record_batch::RecordBatch;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which source a chunk came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTag {
    pub source_id: String,
    pub fingerprint: String,
    pub path: String,
    pub prefix: PrefixCheck,
}

/// Everything the pipeline needs to know, decided once at start.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub cluster: String,
    pub data_dir: PathBuf,
    pub decode_threads: usize,
    pub flush_rows: usize,
    pub flush_bytes: usize,
    pub flush_interval: Duration,
    pub row_group_rows: usize,
    pub zstd_level: i32,
    pub object_retention: ObjectRetention,
    pub max_line_bytes: usize,
    pub compact_min_parts: usize,
    pub open_hour_compact_parts: usize,
    pub compaction_limits: crate::store::compaction::CompactionLimits,
    pub retention_days: u32,
    /// How often compaction and retention are considered (None: never).
    pub maintenance_interval: Option<Duration>,
}

/// Decoded chunks (~4 MiB of lines each, as Arrow columns) that may wait for
/// the committer, per decode worker, in a backfill (`auditlens ingest`).
/// While the committer writes a flush (~0.5 s of CPU for 48 MiB) the workers
/// keep decoding into this queue instead of stopping; 2 per worker left a
/// core idle during every flush (measured: 0.98 → 1.12 of DuckDB's speed).
const DECODED_CHUNKS_PER_WORKER: usize = 4;

/// The same for the daemon, whose chunks also carry every event as an owned
/// `AuditEvent` for live detection (several times the columns' size): a
/// deeper queue would cost ~100 MB while a full disk stalls flushes
/// (tests/fault_disk_full.rs), for a speed live traffic does not need.
const DECODED_CHUNKS_PER_WORKER_LIVE: usize = 2;

/// How long one maintenance pass may keep starting compactions (it finishes
/// the one it is in).
const COMPACTION_BUDGET: Duration = Duration::from_secs(1);

/// What a flush committed.
#[derive(Debug, Clone, Default)]
pub struct FlushReport {
    pub parts: Vec<WrittenPart>,
    pub rows: u64,
    pub quarantined: u64,
}

enum WorkItem {
    Lines {
        seq: u64,
        tag: Arc<SourceTag>,
        chunk: LineChunk,
        oversized: Vec<OversizedLine>,
    },
    Flush {
        seq: u64,
        reply: Sender<Result<FlushReport, String>>,
    },
}

struct PartitionRows {
    batch: RecordBatch,
    spans: Vec<SourceSpan>,
}

enum Decoded {
    Lines {
        seq: u64,
        tag: Arc<SourceTag>,
        end: u64,
        lines: u64,
        partitions: Vec<(PartitionKey, PartitionRows)>,
        quarantine: Vec<QuarantineEntry>,
        events: Vec<AuditEvent>,
    },
    Flush {
        seq: u64,
        reply: Sender<Result<FlushReport, String>>,
    },
    Failed {
        seq: u64,
        tag: Arc<SourceTag>,
        end: u64,
        error: String,
    },
}

/// A running pipeline. Dropping it without [`Pipeline::finish`] still stops
/// the threads, but the last buffer is then not flushed (and will be read again).
pub struct Pipeline {
    input: Option<Sender<WorkItem>>,
    next_seq: u64,
    workers: Vec<JoinHandle<()>>,
    committer: Option<JoinHandle<Result<(), String>>>,
    stats: Arc<IngestStats>,
}

impl Pipeline {
    /// Starts the workers and the committer. `checkpoints` is the reconciled
    /// committed state; `live_events` receives every decoded event in order.
    pub fn start(
        settings: PipelineSettings,
        checkpoints: Checkpoints,
        catalog: Option<Catalog>,
        stats: Arc<IngestStats>,
        live_events: Option<Sender<Vec<AuditEvent>>>,
    ) -> Pipeline {
        let threads = settings.decode_threads.max(1);
        let (input, work) = bounded::<WorkItem>(threads * 2);
        let decoded_depth = if live_events.is_some() {
            DECODED_CHUNKS_PER_WORKER_LIVE
        } else {
            DECODED_CHUNKS_PER_WORKER
        };
        let (decoded_sender, decoded) = bounded::<Decoded>(threads * decoded_depth);
        let mut workers = Vec::new();
        for index in 0..threads {
            let work = work.clone();
            let decoded_sender = decoded_sender.clone();
            let settings = settings.clone();
            let keep_events = live_events.is_some();
            let handle = std::thread::Builder::new()
                .name(format!("auditlens-decode-{index}"))
                .spawn(move || decode_worker(work, decoded_sender, settings, keep_events));
            match handle {
                Ok(handle) => workers.push(handle),
                Err(error) => tracing::error!(%error, "could not start a decode thread"),
            }
        }
        drop(decoded_sender);
        let committer_stats = stats.clone();
        let committer = std::thread::Builder::new()
            .name("auditlens-commit".into())
            .spawn(move || {
                let mut committer =
                    Committer::new(settings, checkpoints, catalog, committer_stats, live_events);
                committer.run(decoded)
            })
            .ok();
        Pipeline {
            input: Some(input),
            next_seq: 0,
            workers,
            committer,
            stats,
        }
    }

    pub fn stats(&self) -> &Arc<IngestStats> {
        &self.stats
    }

    /// Queues a chunk (blocks while the pipeline is full).
    pub fn submit(
        &mut self,
        tag: Arc<SourceTag>,
        chunk: LineChunk,
        oversized: Vec<OversizedLine>,
    ) -> Result<(), String> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let input = self.input.as_ref().ok_or("pipeline already finished")?;
        input
            .send(WorkItem::Lines {
                seq,
                tag,
                chunk,
                oversized,
            })
            .map_err(|_| "the ingest pipeline stopped".to_string())
    }

    /// Flushes everything submitted so far and waits until it is committed.
    pub fn flush(&mut self) -> Result<FlushReport, String> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let (reply, answer) = bounded(1);
        let input = self.input.as_ref().ok_or("pipeline already finished")?;
        input
            .send(WorkItem::Flush { seq, reply })
            .map_err(|_| "the ingest pipeline stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "the ingest pipeline stopped before committing".to_string())?
    }

    /// Flushes, then stops every thread.
    pub fn finish(mut self) -> Result<(), String> {
        let flushed = self.flush();
        self.shutdown();
        let committed = match self.committer.take() {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err("the commit thread panicked".into())),
            None => Err("the commit thread never started".into()),
        };
        flushed.map(|_| ()).and(committed)
    }

    fn shutdown(&mut self) {
        self.input = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(handle) = self.committer.take() {
            let _ = handle.join();
        }
    }
}

fn decode_worker(
    work: Receiver<WorkItem>,
    output: Sender<Decoded>,
    settings: PipelineSettings,
    keep_events: bool,
) {
    for item in work {
        let decoded = match item {
            WorkItem::Flush { seq, reply } => Decoded::Flush { seq, reply },
            WorkItem::Lines {
                seq,
                tag,
                chunk,
                oversized,
            } => {
                let end = chunk.end();
                match decode_chunk(&tag, &chunk, oversized, &settings, keep_events) {
                    Ok((lines, partitions, quarantine, events)) => Decoded::Lines {
                        seq,
                        tag,
                        end,
                        lines,
                        partitions,
                        quarantine,
                        events,
                    },
                    Err(error) => Decoded::Failed {
                        seq,
                        tag,
                        end,
                        error,
                    },
                }
            }
        };
        if output.send(decoded).is_err() {
            return;
        }
    }
}

type DecodedLines = (
    u64,
    Vec<(PartitionKey, PartitionRows)>,
    Vec<QuarantineEntry>,
    Vec<AuditEvent>,
);

fn decode_chunk(
    tag: &SourceTag,
    chunk: &LineChunk,
    oversized: Vec<OversizedLine>,
    settings: &PipelineSettings,
    keep_events: bool,
) -> Result<DecodedLines, String> {
    let mut columns =
        PartitionedColumns::with_expected_rows(memchr::memchr_iter(b'\n', &chunk.data).count() + 1);
    let mut spans: BTreeMap<PartitionKey, SourceSpan> = BTreeMap::new();
    let mut quarantine = Vec::new();
    let mut events = Vec::new();
    let mut lines = 0u64;
    for line in oversized {
        lines += 1;
        let error = DecodeError::LineTooLong {
            length: line.length as usize,
            limit: settings.max_line_bytes,
        };
        quarantine.push(QuarantineEntry::new(
            &tag.path,
            &tag.source_id,
            line.offset,
            error.reason_code(),
            error.to_string(),
            &line.prefix,
            line.length,
        ));
    }
    let mut position = 0usize;
    let data = &chunk.data;
    while position < data.len() {
        let line_end = memchr::memchr(b'\n', &data[position..])
            .map_or(data.len(), |index| position + index + 1);
        let offset = chunk.start + position as u64;
        let mut line = &data[position..line_end];
        position = line_end;
        if line.last() == Some(&b'\n') {
            line = &line[..line.len() - 1];
        }
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines += 1;
        let decoded = if line.len() > settings.max_line_bytes {
            Err(DecodeError::LineTooLong {
                length: line.len(),
                limit: settings.max_line_bytes,
            })
        } else {
            EventView::parse(line)
        };
        match decoded {
            Ok(event) => {
                let origin = LineOrigin {
                    source_file: &tag.path,
                    source_fingerprint: &tag.fingerprint,
                    offset,
                };
                columns.append(&event, origin, &settings.object_retention);
                let span = spans
                    .entry(PartitionKey::of_micros(event.ts))
                    .or_insert_with(|| SourceSpan {
                        source_id: tag.source_id.clone(),
                        fingerprint: tag.fingerprint.clone(),
                        source_file: tag.path.clone(),
                        min_offset: offset,
                        end_offset: offset,
                        rows: 0,
                    });
                span.end_offset = chunk.start + line_end as u64;
                span.rows += 1;
                if keep_events {
                    events.push(event.into_event());
                }
            }
            Err(error) => quarantine.push(QuarantineEntry::new(
                &tag.path,
                &tag.source_id,
                offset,
                error.reason_code(),
                error.to_string(),
                line,
                line.len() as u64,
            )),
        }
    }
    let batches = columns.finish().map_err(|error| error.to_string())?;
    let partitions = batches
        .into_iter()
        .map(|(key, batch)| {
            let spans = spans.remove(&key).into_iter().collect();
            (key, PartitionRows { batch, spans })
        })
        .collect();
    Ok((lines, partitions, quarantine, events))
}

#[derive(Default)]
struct PendingPartition {
    batches: Vec<RecordBatch>,
    spans: BTreeMap<String, SourceSpan>,
}

struct Committer {
    settings: PipelineSettings,
    checkpoints: Checkpoints,
    checkpointer: Checkpointer,
    writer: PartWriter,
    quarantine: Quarantine,
    catalog: Option<Catalog>,
    stats: Arc<IngestStats>,
    live_events: Option<Sender<Vec<AuditEvent>>>,
    pending: BTreeMap<PartitionKey, PendingPartition>,
    pending_rows: usize,
    pending_bytes: usize,
    pending_quarantine: Vec<QuarantineEntry>,
    /// source id → (tag, end offset reached, lines)
    pending_sources: HashMap<String, (Arc<SourceTag>, u64, u64)>,
    reorder: BTreeMap<u64, Decoded>,
    next_seq: u64,
    last_flush: Instant,
    last_maintenance: Instant,
    had_parts: bool,
}

impl Committer {
    fn new(
        settings: PipelineSettings,
        checkpoints: Checkpoints,
        catalog: Option<Catalog>,
        stats: Arc<IngestStats>,
        live_events: Option<Sender<Vec<AuditEvent>>>,
    ) -> Committer {
        let events_dir = crate::store::views::events_dir(&settings.data_dir);
        Committer {
            writer: PartWriter::new(
                events_dir.clone(),
                settings.row_group_rows,
                settings.zstd_level,
            ),
            checkpointer: Checkpointer::new(&settings.data_dir),
            quarantine: Quarantine::new(&settings.data_dir),
            had_parts: crate::store::views::any_part_exists(&events_dir),
            settings,
            checkpoints,
            catalog,
            stats,
            live_events,
            pending: BTreeMap::new(),
            pending_rows: 0,
            pending_bytes: 0,
            pending_quarantine: Vec::new(),
            pending_sources: HashMap::new(),
            reorder: BTreeMap::new(),
            next_seq: 0,
            last_flush: Instant::now(),
            last_maintenance: Instant::now(),
        }
    }

    fn run(&mut self, decoded: Receiver<Decoded>) -> Result<(), String> {
        loop {
            let timeout = self
                .settings
                .flush_interval
                .saturating_sub(self.last_flush.elapsed());
            match decoded.recv_timeout(timeout.max(Duration::from_millis(5))) {
                Ok(item) => {
                    let seq = match &item {
                        Decoded::Lines { seq, .. }
                        | Decoded::Flush { seq, .. }
                        | Decoded::Failed { seq, .. } => *seq,
                    };
                    self.reorder.insert(seq, item);
                    while let Some(item) = self.reorder.remove(&self.next_seq) {
                        self.next_seq += 1;
                        self.apply(item);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return self.flush_with_retry(5).map(|_| ());
                }
            }
            if self.pending_rows >= self.settings.flush_rows
                || self.pending_bytes >= self.settings.flush_bytes
                || self.last_flush.elapsed() >= self.settings.flush_interval
            {
                // A failure here is retried at the next tick; the data stays pending.
                if self.flush_with_retry(1).is_err() {
                    self.wait_until_flushed_if_full();
                }
            }
            if let Some(interval) = self.settings.maintenance_interval
                && self.last_maintenance.elapsed() >= interval
            {
                self.last_maintenance = Instant::now();
                self.maintain();
            }
        }
    }

    fn apply(&mut self, item: Decoded) {
        match item {
            Decoded::Lines {
                tag,
                end,
                lines,
                partitions,
                quarantine,
                events,
                ..
            } => {
                for (key, rows) in partitions {
                    self.pending_rows += rows.batch.num_rows();
                    self.pending_bytes += rows.batch.get_array_memory_size();
                    let pending = self.pending.entry(key).or_default();
                    pending.batches.push(rows.batch);
                    for span in rows.spans {
                        pending
                            .spans
                            .entry(span.source_id.clone())
                            .and_modify(|existing| {
                                existing.min_offset = existing.min_offset.min(span.min_offset);
                                existing.end_offset = existing.end_offset.max(span.end_offset);
                                existing.rows += span.rows;
                                existing.source_file = span.source_file.clone();
                            })
                            .or_insert(span);
                    }
                }
                self.stats
                    .record_decoded(lines, quarantine.iter().map(|entry| entry.reason.as_str()));
                self.pending_quarantine.extend(quarantine);
                let entry = self
                    .pending_sources
                    .entry(tag.source_id.clone())
                    .or_insert((tag.clone(), end, 0));
                entry.0 = tag;
                entry.1 = entry.1.max(end);
                entry.2 += lines;
                if let Some(sender) = &self.live_events
                    && !events.is_empty()
                    && sender.send(events).is_err()
                {
                    self.live_events = None;
                }
            }
            Decoded::Failed {
                tag, error, end, ..
            } => {
                // Cannot happen for well-formed batches; keep the offset where
                // it was so the lines are read again after a restart.
                tracing::error!(source = %tag.path, end, %error, "could not build a batch; lines will be re-read on restart");
            }
            Decoded::Flush { reply, .. } => {
                let result = self.flush_with_retry(5);
                let _ = reply.send(result);
            }
        }
    }

    /// Back-pressure when flushing fails (disk full): once the buffer is at
    /// its limits, stop taking decoded lines and retry until a flush succeeds,
    /// so the bounded channels fill and the reader blocks. Without this the
    /// buffer would grow with everything read while the disk stays full.
    fn wait_until_flushed_if_full(&mut self) {
        let mut delay = Duration::from_millis(200);
        while self.pending_rows >= self.settings.flush_rows
            || self.pending_bytes >= self.settings.flush_bytes
        {
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(5));
            match self.flush() {
                Ok(_) => tracing::info!("flush succeeded again; reading resumes"),
                Err(error) => {
                    self.stats
                        .flush_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(%error, "buffer full and flush still failing; reading is paused");
                }
            }
        }
    }

    fn flush_with_retry(&mut self, attempts: u32) -> Result<FlushReport, String> {
        let mut delay = Duration::from_millis(200);
        let mut last_error = String::new();
        for attempt in 0..attempts.max(1) {
            match self.flush() {
                Ok(report) => return Ok(report),
                Err(error) => {
                    self.stats
                        .flush_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(%error, attempt, "flush failed; data kept and retried");
                    last_error = error;
                    if attempt + 1 < attempts {
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        self.last_flush = Instant::now();
        Err(last_error)
    }

    /// Writes the pending parts, the quarantine, then commits the checkpoint.
    fn flush(&mut self) -> Result<FlushReport, String> {
        self.last_flush = Instant::now();
        if self.pending.is_empty()
            && self.pending_sources.is_empty()
            && self.pending_quarantine.is_empty()
        {
            return Ok(FlushReport::default());
        }
        let started = Instant::now();
        let seq = self.checkpoints.last_flush_seq + 1;
        let mut written: Vec<WrittenPart> = Vec::new();
        for (key, pending) in &self.pending {
            let spans: Vec<SourceSpan> = pending.spans.values().cloned().collect();
            match self.writer.write_part(
                &self.settings.cluster,
                *key,
                seq,
                &pending.batches,
                spans,
                Vec::new(),
            ) {
                Ok(part) => written.push(part),
                Err(error) => {
                    // Parts of this flush already renamed would be orphans:
                    // remove them now (start-up would, too).
                    for part in &written {
                        let _ = std::fs::remove_file(&part.path);
                    }
                    return Err(error.to_string());
                }
            }
        }
        if let Err(error) = self.quarantine.append(&self.pending_quarantine) {
            for part in &written {
                let _ = std::fs::remove_file(&part.path);
            }
            return Err(error.to_string());
        }
        let mut next = self.checkpoints.clone();
        next.last_flush_seq = seq;
        let now = chrono::Utc::now().timestamp_micros();
        for (source_id, (tag, end, lines)) in &self.pending_sources {
            let entry = next
                .sources
                .entry(source_id.clone())
                .or_insert_with(|| SourceCheckpoint {
                    fingerprint: tag.fingerprint.clone(),
                    prefix: tag.prefix,
                    committed_offset: 0,
                    last_path: PathBuf::from(&tag.path),
                    lines: 0,
                    updated_at: now,
                });
            entry.committed_offset = entry.committed_offset.max(*end);
            entry.lines += lines;
            entry.last_path = PathBuf::from(&tag.path);
            entry.updated_at = now;
            if tag.prefix.length > entry.prefix.length {
                entry.prefix = tag.prefix;
            }
        }
        if let Err(error) = self.checkpointer.store(&next) {
            for part in &written {
                let _ = std::fs::remove_file(&part.path);
            }
            return Err(error.to_string());
        }
        // Committed. Everything below is bookkeeping that start-up can redo.
        self.checkpoints = next;
        let rows: u64 = written.iter().map(|part| part.metadata.rows).sum();
        let quarantined = self.pending_quarantine.len() as u64;
        self.stats.record_flush(&written, started.elapsed());
        for (source_id, (tag, end, _)) in &self.pending_sources {
            self.stats.record_committed(source_id, &tag.path, *end);
        }
        self.pending.clear();
        self.pending_rows = 0;
        self.pending_bytes = 0;
        self.pending_quarantine.clear();
        self.pending_sources.clear();
        self.record_in_catalog(&written);
        Ok(FlushReport {
            parts: written,
            rows,
            quarantined,
        })
    }

    fn record_in_catalog(&mut self, written: &[WrittenPart]) {
        if written.is_empty() {
            return;
        }
        if let Some(catalog) = &self.catalog {
            if let Err(error) = catalog.record_parts(written) {
                tracing::warn!(%error, "manifest update failed; it is reconciled at next start");
            }
            if !self.had_parts {
                self.had_parts = true;
                if let Err(error) = catalog.refresh_views() {
                    tracing::warn!(%error, "could not refresh catalog views");
                }
            }
        }
    }

    /// Compaction of closed hours, then retention. Hours retention is about
    /// to delete are not compacted: rewriting them is wasted work, and it
    /// would give a kill between the compaction's commit and its deletes a
    /// window in which raw readers of the folder (before the next start
    /// finishes the compaction) count those rows twice.
    fn maintain(&mut self) {
        if let Err(error) = self.flush() {
            tracing::warn!(%error, "flush before maintenance failed; maintenance skipped");
            return;
        }
        let events_dir = crate::store::views::events_dir(&self.settings.data_dir);
        let closed_before = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
        let retention_cutoff = (self.settings.retention_days > 0).then(|| {
            chrono::Utc::now().date_naive()
                - chrono::Days::new(u64::from(self.settings.retention_days))
        });
        match compaction::maintenance_candidates(
            &events_dir,
            self.settings.compact_min_parts,
            self.settings.open_hour_compact_parts,
            self.settings.compaction_limits,
            closed_before,
        ) {
            Ok(candidates) => {
                // Compaction runs on this thread, so no flush happens while
                // it does: a pass stops starting compactions after
                // COMPACTION_BUDGET and leaves the rest to the next pass. A
                // daemon started over a backfilled month would otherwise
                // rewrite it all before storing another line.
                let started = Instant::now();
                for candidate in candidates {
                    if started.elapsed() >= COMPACTION_BUDGET {
                        tracing::debug!(
                            "compaction budget spent; the rest waits for the next pass"
                        );
                        break;
                    }
                    if retention_cutoff.is_some_and(|cutoff| {
                        compaction::partition_date(candidate.partition)
                            .is_some_and(|date| date < cutoff)
                    }) {
                        continue;
                    }
                    let seq = self.checkpoints.last_flush_seq + 1;
                    let compacted = match compaction::compact(&self.writer, &candidate, seq) {
                        Ok(part) => part,
                        Err(error) => {
                            tracing::warn!(%error, partition = %candidate.directory.display(), "compaction failed");
                            continue;
                        }
                    };
                    let mut next = self.checkpoints.clone();
                    next.last_flush_seq = seq;
                    if let Err(error) = self.checkpointer.store(&next) {
                        tracing::warn!(%error, "compaction commit failed; the compacted part is removed");
                        let _ = std::fs::remove_file(&compacted.path);
                        continue;
                    }
                    self.checkpoints = next;
                    // Committed: the replaced parts go (start-up finishes this if we die here).
                    for path in &candidate.parts {
                        let _ = std::fs::remove_file(path);
                    }
                    self.stats
                        .compactions
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.record_in_catalog(std::slice::from_ref(&compacted));
                }
            }
            Err(error) => tracing::warn!(%error, "could not list partitions to compact"),
        }
        if let Some(cutoff) = retention_cutoff {
            match retention::remove_expired(&events_dir, cutoff) {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(parts = removed.len(), %cutoff, "retention removed expired parts");
                    if let Some(catalog) = &self.catalog {
                        let _ = catalog.mark_removed(&removed, "retention");
                    }
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "retention failed"),
            }
        }
    }
}

//! Ingest: discovery, fingerprints, tailing across rotation and gzip,
//! checkpoints and line decoding, for the daemon and for one-shot backfill.
//!
//! Files are identified by the checksum of their first line (decompressed),
//! confirmed by a longer prefix, never by path or inode, so a rotated or
//! gzipped file is recognised as the source it was and a new file is never
//! skipped. Exactly-once is defined on source lines (fingerprint + byte
//! offset): `checkpoints.json` is the commit point, and start-up reconciles it
//! with the parts on disk ([`recovery`]).

pub mod checkpoint;
pub mod fingerprint;
pub mod pipeline;
pub mod reader;
pub mod recovery;
pub mod stats;
pub mod tail;

use crate::cli::GlobalOptions;
use crate::config::Config;
use crate::store::builder::ObjectRetention;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use pipeline::{Pipeline, PipelineSettings, SourceTag};
pub use stats::{FileStatus, IngestStats};
pub use tail::{SourceTracker, Tailer};

pub type Result<T, E = IngestError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint file {path} is corrupt: {message}")]
    CorruptCheckpoint { path: PathBuf, message: String },
    #[error("storage: {0}")]
    Store(String),
    #[error("data folder {path} is in use by another auditlens process (pid {holder})")]
    Locked { path: PathBuf, holder: String },
    #[error("{0}")]
    Pipeline(String),
    #[error("{0}")]
    Config(String),
}

/// An exclusive lock on a data folder, held while a process writes to it
/// (`data/.lock`, `flock`), so the daemon and a one-shot ingest never write
/// the same folder at once. Readers (`auditlens sql`) take no lock.
pub struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock> {
        use std::io::{Read, Seek, Write};
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(data_dir).map_err(|source| IngestError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(".lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| IngestError::Io {
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !locked {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(IngestError::Locked {
                path: data_dir.to_path_buf(),
                holder: holder.trim().to_string(),
            });
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        Ok(DataDirLock { _file: file })
    }
}

/// Everything needed to run a pipeline over one data folder.
pub struct IngestSetup {
    pub lock: DataDirLock,
    pub catalog: crate::store::catalog::Catalog,
    pub recovery: recovery::Recovery,
    pub settings: PipelineSettings,
}

/// Locks the data folder, reconciles parts/checkpoints/manifest, and derives
/// the pipeline settings from the config.
pub fn prepare(data_dir: &Path, config: &Config, maintenance: bool) -> Result<IngestSetup> {
    let lock = DataDirLock::acquire(data_dir)?;
    let checkpointer = checkpoint::Checkpointer::new(data_dir);
    if !checkpointer.path().exists()
        && !crate::store::views::any_part_exists(&crate::store::views::events_dir(data_dir))
    {
        // A fresh folder: commit "nothing" first, so a part without a
        // checkpoint always means a lost checkpoint file, never a first flush
        // that died before its commit.
        checkpointer.store(&checkpoint::Checkpoints::default())?;
    }
    let recovery = recovery::recover(data_dir)?;
    if recovery.orphans_removed + recovery.replaced_removed + recovery.temporary_removed > 0
        || recovery.checkpoints_rebuilt
    {
        tracing::warn!(
            orphans = recovery.orphans_removed,
            compacted = recovery.replaced_removed,
            temporary = recovery.temporary_removed,
            rebuilt = recovery.checkpoints_rebuilt,
            "recovered from an interrupted run"
        );
    }
    let mut recovery = recovery;
    let catalog = crate::store::catalog::Catalog::open(data_dir)
        .map_err(|error| IngestError::Store(error.to_string()))?;
    let settings = PipelineSettings {
        cluster: config.cluster.clone(),
        data_dir: data_dir.to_path_buf(),
        decode_threads: config.ingest.decode_thread_count(),
        flush_rows: config.store.flush_rows,
        flush_bytes: config.store.flush_bytes,
        flush_interval: config.store.flush_interval(),
        row_group_rows: config.store.row_group_rows,
        zstd_level: config.store.zstd_level,
        object_retention: ObjectRetention::new(
            &config.store.keep_objects,
            config.store.keep_objects_max_bytes,
        ),
        max_line_bytes: config.ingest.max_line_bytes,
        compact_min_parts: config.store.compact_min_parts,
        open_hour_compact_parts: config.store.open_hour_compact_parts,
        compaction_limits: crate::store::compaction::CompactionLimits {
            max_rows: config.store.compact_max_rows.max(2),
            max_bytes: config.store.compact_max_bytes.max(2),
        },
        retention_days: config.store.retention_days,
        maintenance_interval: maintenance.then_some(Duration::from_millis(
            config.store.maintenance_interval_ms.max(100),
        )),
    };
    // Before the manifest is reconciled: the catalog still knows which source
    // ranges a corrupt part held.
    recovery::repair_corrupt_parts(data_dir, &mut recovery, &catalog, &settings)?;
    let (added, vanished) = catalog
        .reconcile(&recovery.parts)
        .map_err(|error| IngestError::Store(error.to_string()))?;
    if added + vanished > 0 {
        tracing::info!(
            added,
            vanished,
            "manifest reconciled with the parts on disk"
        );
    }
    Ok(IngestSetup {
        lock,
        catalog,
        recovery,
        settings,
    })
}

/// `auditlens ingest PATH...`: one-shot backfill.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Audit log files or folders (plain or .gz).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// What a one-shot ingest did.
#[derive(Debug, Default)]
pub struct IngestSummary {
    pub files_read: usize,
    pub already_stored: usize,
    pub lines: u64,
    pub events_stored: u64,
    pub quarantined: u64,
    pub parts_written: u64,
    pub unreadable: Vec<PathBuf>,
    pub damaged: Vec<(PathBuf, String)>,
    pub seconds: f64,
}

pub fn run_ingest(
    args: &IngestArgs,
    global: &GlobalOptions,
    config: &Config,
) -> Result<IngestSummary> {
    let started = std::time::Instant::now();
    let setup = prepare(&global.data_dir, config, false)?;
    let IngestSetup {
        lock,
        catalog,
        recovery,
        mut settings,
    } = setup;
    // One-shot: flush by size only; the final flush commits the rest.
    settings.flush_interval = Duration::from_secs(3600);
    let mut tracker = SourceTracker::from_checkpoints(&recovery.checkpoints);
    let stats = Arc::new(IngestStats::default());
    let mut pipeline = Pipeline::start(
        settings,
        recovery.checkpoints,
        Some(catalog),
        stats.clone(),
        None,
    );
    let total = tail::total_bytes(&args.paths);
    let bar = if args.no_progress || global.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    };
    let report = tail::backfill(&args.paths, &mut tracker, &mut pipeline, |bytes| {
        bar.inc(bytes)
    });
    let finished = pipeline.finish();
    bar.finish_and_clear();
    drop(lock);
    let report = report.map_err(IngestError::Pipeline)?;
    finished.map_err(IngestError::Pipeline)?;
    use std::sync::atomic::Ordering::Relaxed;
    Ok(IngestSummary {
        files_read: report.files_read,
        already_stored: report.already_stored,
        lines: stats.lines.load(Relaxed),
        events_stored: stats.events_stored.load(Relaxed),
        quarantined: stats.quarantined.load(Relaxed),
        parts_written: stats.parts_written.load(Relaxed),
        unreadable: report.unreadable,
        damaged: report.damaged,
        seconds: started.elapsed().as_secs_f64(),
    })
}

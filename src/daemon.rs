//! `auditlens serve`: starts the tasks and shuts them down in order.
//!
//! Reading, decoding, writing and detection run on plain threads (they block
//! on files and DuckDB); the async runtime only waits for signals and serves
//! the network endpoints. Shutdown is ordered so nothing read is lost: stop
//! reading → flush Parquet → write checkpoints (the pipeline's final flush
//! commits) → stop detection → stop serving. A second signal is not needed and
//! not honoured early: the final flush is bounded by one buffer.

use crate::cli::GlobalOptions;
use crate::config::Config;
use crate::ingest::{IngestError, IngestStats, Pipeline, SourceTracker, Tailer};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The folder the API server writes audit logs to (config `ingest.dir`).
    #[arg(long)]
    pub audit_dir: Option<PathBuf>,
    /// gRPC listen address (config `api.grpc_listen`); port 0 picks a free port.
    #[arg(long)]
    pub grpc_listen: Option<String>,
    /// Stop after this many seconds (demos and tests); default: run until signalled.
    #[arg(long)]
    pub run_for_seconds: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    Runtime(String),
}

/// A stop signal shared by the threads: set once, never cleared.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    flag: Arc<AtomicBool>,
}

impl StopSignal {
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    pub fn flag(&self) -> &AtomicBool {
        &self.flag
    }
}

pub fn run_serve(args: &ServeArgs, global: &GlobalOptions, mut config: Config) -> Result<(), DaemonError> {
    if let Some(directory) = &args.audit_dir {
        config.ingest.dir = directory.clone();
    }
    if let Some(listen) = &args.grpc_listen {
        config.api.grpc_listen = listen.clone();
    }
    let setup = crate::ingest::prepare(&global.data_dir, &config, true)?;
    let crate::ingest::IngestSetup { lock, catalog, recovery, settings } = setup;
    let stats = Arc::new(IngestStats::default());
    stats.record_corrupt_parts(&recovery.corrupt_parts);
    let tracker = SourceTracker::from_checkpoints(&recovery.checkpoints);
    let mut tailer = Tailer::new(config.ingest.dir.clone(), &config.ingest.glob, config.ingest.partial_line_grace(), tracker)
        .map_err(IngestError::Config)?;
    let stop = StopSignal::default();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("auditlens-async")
        .build()
        .map_err(|error| DaemonError::Runtime(format!("starting the async runtime: {error}")))?;

    // Signals (and the optional run time) set the stop flag.
    {
        let stop = stop.clone();
        let run_for = args.run_for_seconds;
        runtime.spawn(async move {
            wait_for_shutdown(run_for).await;
            tracing::info!("shutdown requested: stop reading, flush, checkpoint, stop serving");
            stop.stop();
        });
    }

    let mut pipeline = Pipeline::start(settings, recovery.checkpoints, Some(catalog), stats.clone(), None);
    tracing::info!(
        dir = %config.ingest.dir.display(),
        data = %global.data_dir.display(),
        cluster = %config.cluster,
        "auditlens serving"
    );
    eprintln!("auditlens: watching {} → {}", config.ingest.dir.display(), global.data_dir.display());

    // The reader loop runs on this thread: notify wakes it early, the scan is the truth.
    let (wake_sender, wake) = crossbeam_channel::bounded::<()>(1);
    let mut watcher = FolderWatcher::new(config.ingest.dir.clone(), wake_sender);
    let scan_interval = config.ingest.scan_interval();
    let mut result = Ok(());
    while !stop.is_stopped() {
        watcher.ensure_watching();
        match tailer.poll(&mut pipeline, stop.flag()) {
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "ingest pipeline failed");
                result = Err(DaemonError::Runtime(error));
                break;
            }
        }
        let _ = wake.recv_timeout(scan_interval);
    }
    // 1. reading has stopped; 2–3. flush and commit.
    if let Err(error) = pipeline.finish() {
        tracing::error!(%error, "final flush failed; uncommitted lines will be read again at next start");
    }
    // 4–5. stop serving.
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(lock);
    eprintln!("auditlens: stopped cleanly");
    result
}

async fn wait_for_shutdown(run_for_seconds: Option<u64>) {
    use tokio::signal::unix::{SignalKind, signal};
    let timer = async {
        match run_for_seconds {
            Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
            None => std::future::pending::<()>().await,
        }
    };
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL only");
        timer.await;
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
        _ = timer => {}
    }
}

/// Wakes the reader when the audit folder changes. A hint only: if watching
/// fails (the folder does not exist yet), the periodic scan still finds
/// everything, and watching is retried.
struct FolderWatcher {
    directory: PathBuf,
    wake: crossbeam_channel::Sender<()>,
    watcher: Option<notify::RecommendedWatcher>,
}

impl FolderWatcher {
    fn new(directory: PathBuf, wake: crossbeam_channel::Sender<()>) -> FolderWatcher {
        FolderWatcher { directory, wake, watcher: None }
    }

    fn ensure_watching(&mut self) {
        use notify::Watcher;
        if self.watcher.is_some() || !self.directory.is_dir() {
            return;
        }
        let wake = self.wake.clone();
        let created = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
            // A full channel already holds a wake-up: dropping this one is fine.
            let _ = wake.try_send(());
        });
        match created {
            Ok(mut watcher) => match watcher.watch(&self.directory, notify::RecursiveMode::NonRecursive) {
                Ok(()) => self.watcher = Some(watcher),
                Err(error) => tracing::debug!(%error, "file watching unavailable; relying on the periodic scan"),
            },
            Err(error) => tracing::debug!(%error, "file watching unavailable; relying on the periodic scan"),
        }
    }
}

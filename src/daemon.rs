//! `auditlens serve`: starts the tasks and shuts them down in order.
//!
//! Reading, decoding, writing, live detection (rules and novelty on every
//! decoded event), model training and scoring (each closed window), the
//! nightly report and alert delivery run on plain threads (they block on files
//! and DuckDB), each with its own catalog session; the async runtime only
//! waits for signals and serves the network endpoints (gRPC, metrics).
//! Before reading starts, the novelty index is learned from the stored
//! lookback (without windows confirmed as attacks), so a restart does not
//! send every identity back to learning.
//! Shutdown is ordered so nothing read is lost: stop reading → flush Parquet →
//! write checkpoints (the pipeline's final flush commits) → drain detection →
//! stop models and reports → stop alert delivery → stop serving.

use crate::api::server::{ApiConfig, ApiState};
use crate::api::status::{IngestFileStatus, IngestStatus, SharedIngestStatus};
use crate::audit::AuditEvent;
use crate::cli::GlobalOptions;
use crate::config::Config;
use crate::detect::Anomaly;
use crate::ingest::{IngestError, IngestStats, Pipeline, SourceTracker, Tailer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The folder the API server writes audit logs to (config `ingest.dir`).
    #[arg(long)]
    pub audit_dir: Option<PathBuf>,
    /// Stop after this many seconds (demos and tests); default: run until signalled.
    #[arg(long)]
    pub run_for_seconds: Option<u64>,
    /// Prometheus /metrics, /healthz, /readyz address (config `api.metrics_listen`).
    #[arg(long)]
    pub metrics_listen: Option<String>,
    #[command(flatten)]
    pub server: crate::api::cli::ServerArgs,
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

pub fn run_serve(
    args: &ServeArgs,
    global: &GlobalOptions,
    config: Config,
) -> Result<(), DaemonError> {
    run_serve_until(args, global, config, StopSignal::default())
}

/// [`run_serve`] that also stops when `stop` is set by its caller (the demo
/// stops the daemon once it has caught up with the simulation).
pub fn run_serve_until(
    args: &ServeArgs,
    global: &GlobalOptions,
    mut config: Config,
    stop: StopSignal,
) -> Result<(), DaemonError> {
    if let Some(directory) = &args.audit_dir {
        config.ingest.dir = directory.clone();
    }
    if let Some(listen) = &args.metrics_listen {
        config.api.metrics_listen = listen.clone();
    }
    let mut api_config: ApiConfig = args
        .server
        .to_config()
        .map_err(|error| DaemonError::Runtime(error.to_string()))?;
    // The flag's default gives way to the config file's address.
    if args.server.grpc_listen.to_string() == "127.0.0.1:50051"
        && config.api.grpc_listen != "127.0.0.1:50051"
    {
        api_config.listen = config.api.grpc_listen.parse().map_err(|error| {
            DaemonError::Runtime(format!(
                "api.grpc_listen {:?}: {error}",
                config.api.grpc_listen
            ))
        })?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("auditlens-async")
        .build()
        .map_err(|error| DaemonError::Runtime(format!("starting the async runtime: {error}")))?;
    // Signals set the stop flag from now on. Installed before start-up
    // recovery (which can take a while: repairing corrupt parts re-reads
    // their sources), so a SIGTERM then is a clean stop once recovery is done,
    // not the default action (killed mid-way, exit status 143).
    let signals = {
        let _entered = runtime.enter();
        ShutdownSignals::install()
    };
    {
        let stop = stop.clone();
        let run_for = args.run_for_seconds;
        runtime.spawn(async move {
            wait_for_shutdown(signals, run_for).await;
            tracing::info!("shutdown requested: stop reading, flush, checkpoint, stop serving");
            stop.stop();
        });
    }
    let setup = crate::ingest::prepare(&global.data_dir, &config, true)?;
    let crate::ingest::IngestSetup {
        lock,
        catalog,
        recovery,
        settings,
    } = setup;
    let stats = Arc::new(IngestStats::default());
    stats.record_corrupt_parts(&recovery.corrupt_parts);
    let tracker = SourceTracker::from_checkpoints(&recovery.checkpoints);
    let mut tailer = Tailer::new(
        config.ingest.dir.clone(),
        &config.ingest.glob,
        config.ingest.partial_line_grace(),
        tracker,
    )
    .map_err(IngestError::Config)?;
    let store_error = |error: crate::store::StoreError| DaemonError::Runtime(error.to_string());
    let detection_connection = catalog.connection().map_err(store_error)?;
    let api_connection = catalog.connection().map_err(store_error)?;
    let metrics_connection = catalog.connection().map_err(store_error)?;
    let alerts_connection = catalog.connection().map_err(store_error)?;
    // [[feedback.suppressions]] of the config apply from the first anomaly on.
    let configured = crate::feedback::sync_config_suppressions(
        &detection_connection,
        &config.feedback,
        &crate::feedback::SystemClock,
    )
    .map_err(|error| DaemonError::Runtime(format!("[feedback] suppressions: {error}")))?;
    tracing::info!(
        suppressions = configured.len(),
        "config suppressions synced"
    );

    let (serving_stop, serving_stopped) = tokio::sync::watch::channel(false);
    let shutdown_future = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
        let _ = receiver.wait_for(|stopped| *stopped).await;
    };

    // Metrics endpoint.
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let ready = Arc::new(AtomicBool::new(true));
    let metrics_state = Arc::new(crate::metrics::MetricsState {
        metrics: metrics.clone(),
        ingest: Some(stats.clone()),
        catalog: Some(Mutex::new(metrics_connection)),
        ready: ready.clone(),
    });
    match crate::metrics::start(
        runtime.handle(),
        &config.api.metrics_listen,
        metrics_state,
        shutdown_future(serving_stopped.clone()),
    ) {
        Ok((address, _task)) => {
            tracing::info!(%address, "metrics listening");
            eprintln!("auditlens: metrics on http://{address}/metrics");
        }
        Err(error) => {
            return Err(DaemonError::Runtime(format!(
                "metrics listen {}: {error}",
                config.api.metrics_listen
            )));
        }
    }

    // gRPC API.
    let (mut api_state, api_ready) = ApiState::new(&global.data_dir);
    api_state.catalog = Some(Arc::new(Mutex::new(api_connection)));
    let models_dir = std::env::var_os("AUDITLENS_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models"));
    api_state.feedback.policy =
        crate::feedback::ThresholdPolicy::load(&config.feedback, &models_dir).map_err(|error| {
            DaemonError::Runtime(format!("[feedback] threshold bounds: {error}"))
        })?;
    let ingest_status: SharedIngestStatus = api_state.ingest_status.clone();
    let anomaly_broadcast = api_state.anomalies.clone();
    let bound = runtime
        .block_on(crate::api::server::bind(api_config))
        .map_err(|error| DaemonError::Runtime(error.to_string()))?;
    let grpc_address = bound.local_addr();
    eprintln!("{}", crate::api::cli::listening_line(grpc_address));
    let api_task = runtime.spawn(bound.serve(api_state, shutdown_future(serving_stopped.clone())));
    let _ = api_ready.send(true);

    // Live detection: every decoded event, in order, through rules and novelty.
    // The novelty baseline is learned from stored history before reading
    // starts (so nothing read after this is learned twice), then what
    // confirmed attacks showed first is forgotten.
    let mut detector = crate::detect::LiveDetector::new(crate::detect::DetectorOptions::default());
    let mut unlearned = std::collections::BTreeSet::new();
    learn_detection_baseline(
        &detection_connection,
        &config.cluster,
        &mut detector,
        &mut unlearned,
    );
    let (events_sender, events) = crossbeam_channel::bounded::<Vec<AuditEvent>>(64);
    let (alert_wake, alert_woken) = crossbeam_channel::bounded::<()>(1);
    let detection = {
        let cluster = config.cluster.clone();
        let broadcast = anomaly_broadcast.clone();
        let alert_wake = alert_wake.clone();
        std::thread::Builder::new()
            .name("auditlens-detect".into())
            .spawn(move || {
                run_detection(
                    LiveDetection {
                        detector,
                        unlearned,
                        connection: detection_connection,
                        cluster,
                        broadcast,
                        alert_wake,
                    },
                    events,
                )
            })
            .map_err(|error| DaemonError::Runtime(format!("starting detection: {error}")))?
    };

    // Alert delivery: the outbox in the catalog survives restarts.
    let alerts_running = Arc::new(AtomicBool::new(true));
    let alerts = {
        let running = alerts_running.clone();
        let alerts_config = config.alerts.clone();
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("auditlens-alerts".into())
            .spawn(move || {
                run_alerts(
                    alerts_connection,
                    alerts_config,
                    metrics,
                    running,
                    alert_woken,
                )
            })
            .map_err(|error| DaemonError::Runtime(format!("starting alert delivery: {error}")))?
    };

    // Models: scheduled training and scoring of each closed window; the
    // nightly report. Both on their own blocking threads with their own
    // catalog sessions.
    let background_stop = Arc::new(AtomicBool::new(false));
    let models = {
        let connection = catalog.connection().map_err(store_error)?;
        let data_dir = global.data_dir.clone();
        let broadcast = anomaly_broadcast.clone();
        let alert_wake = alert_wake.clone();
        let stop = background_stop.clone();
        std::thread::Builder::new()
            .name("auditlens-models".into())
            .spawn(move || run_models(connection, data_dir, broadcast, alert_wake, stop))
            .map_err(|error| DaemonError::Runtime(format!("starting the model thread: {error}")))?
    };
    let reports = crate::report::ReportScheduler {
        data_dir: global.data_dir.clone(),
        cluster: config.cluster.clone(),
        config: config.report.clone(),
        metrics: Some(metrics.clone()),
    }
    .spawn(
        catalog.connection().map_err(store_error)?,
        background_stop.clone(),
    )
    .map_err(|error| DaemonError::Runtime(format!("starting the report thread: {error}")))?;

    let mut pipeline = Pipeline::start(
        settings,
        recovery.checkpoints,
        Some(catalog),
        stats.clone(),
        Some(events_sender),
    );
    tracing::info!(dir = %config.ingest.dir.display(), data = %global.data_dir.display(), cluster = %config.cluster, "auditlens serving");
    eprintln!(
        "auditlens: watching {} → {}",
        config.ingest.dir.display(),
        global.data_dir.display()
    );

    // The reader loop runs on this thread: notify wakes it early, the scan is the truth.
    let (wake_sender, wake) = crossbeam_channel::bounded::<()>(1);
    let mut watcher = FolderWatcher::new(config.ingest.dir.clone(), wake_sender);
    let scan_interval = config.ingest.scan_interval();
    let mut result = Ok(());
    while !stop.is_stopped() {
        watcher.ensure_watching();
        if let Err(error) = tailer.poll(&mut pipeline, stop.flag()) {
            tracing::error!(%error, "ingest pipeline failed");
            result = Err(DaemonError::Runtime(error));
            break;
        }
        publish_ingest_status(&stats, &ingest_status);
        let _ = wake.recv_timeout(scan_interval);
    }
    // 1. Reading has stopped. 2–3. Flush and commit.
    if let Err(error) = pipeline.finish() {
        tracing::error!(%error, "final flush failed; uncommitted lines will be read again at next start");
    }
    publish_ingest_status(&stats, &ingest_status);
    // 4. Detection drains what was decoded (its channel closed with the pipeline).
    let _ = detection.join();
    // Model scoring and reports stop between their checks.
    background_stop.store(true, Ordering::SeqCst);
    let _ = models.join();
    let _ = reports.join();
    // 5. Alert delivery makes one last round, then stops.
    alerts_running.store(false, Ordering::SeqCst);
    let _ = alert_wake.try_send(());
    let _ = alerts.join();
    // 6. Stop serving.
    let _ = serving_stop.send(true);
    let _ =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), api_task).await });
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(lock);
    eprintln!("auditlens: stopped cleanly");
    result
}

/// Windows confirmed as attacks already unlearned: (cluster, identity, start, end).
type UnlearnedWindows = std::collections::BTreeSet<(String, String, i64, i64)>;

/// How often the detection thread looks for new true-positive verdicts to unlearn.
const VERDICT_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Rebuilds the novelty index of `cluster` from the stored lookback without
/// the windows confirmed as attacks, and records those windows as applied.
/// A failure is logged and detection starts with what it has (an empty index
/// learns as it goes).
fn learn_detection_baseline(
    connection: &duckdb::Connection,
    cluster: &str,
    detector: &mut crate::detect::LiveDetector,
    unlearned: &mut UnlearnedWindows,
) {
    let started = Instant::now();
    let now = chrono::Utc::now().timestamp_micros();
    let excluded = crate::feedback::learning::novelty_exclusions(connection).unwrap_or_else(|error| {
        tracing::warn!(%error, "could not read true-positive verdicts; the baseline may include confirmed attacks");
        Vec::new()
    });
    match crate::detect::history::learn_baseline(connection, detector, cluster, now, &excluded) {
        Ok(identities) => tracing::info!(
            identities,
            seconds = started.elapsed().as_secs_f64(),
            "novelty baseline learned from stored history"
        ),
        Err(error) => {
            tracing::warn!(%error, "could not learn the novelty baseline; identities start as learning")
        }
    }
    match crate::feedback::learning::unlearn_confirmed_attacks(connection, detector, unlearned) {
        Ok(0) => {}
        Ok(forgotten) => tracing::info!(
            forgotten,
            "first-seen values of confirmed attacks forgotten"
        ),
        Err(error) => tracing::warn!(%error, "could not read true-positive verdicts"),
    }
}

/// What the detection thread owns.
struct LiveDetection {
    detector: crate::detect::LiveDetector,
    unlearned: UnlearnedWindows,
    connection: duckdb::Connection,
    cluster: String,
    broadcast: tokio::sync::broadcast::Sender<Anomaly>,
    alert_wake: crossbeam_channel::Sender<()>,
}

fn run_detection(live: LiveDetection, events: crossbeam_channel::Receiver<Vec<AuditEvent>>) {
    let LiveDetection {
        mut detector,
        mut unlearned,
        connection,
        cluster,
        broadcast,
        alert_wake,
    } = live;
    let store = match crate::detect::AnomalyStore::open(&connection, 30 * 60 * 1_000_000) {
        Ok(store) => store,
        Err(error) => {
            tracing::error!(%error, "cannot open the anomaly store; live detection is off");
            for _ in events {}
            return;
        }
    };
    let mut last_tick = Instant::now();
    let mut last_verdict_check = Instant::now();
    let record = |anomalies: Vec<Anomaly>| {
        if anomalies.is_empty() {
            return;
        }
        if let Err(error) = store.record(&anomalies) {
            tracing::error!(%error, count = anomalies.len(), "could not store anomalies");
        }
        for anomaly in anomalies {
            // No receiver is fine: Watch clients re-read the catalog.
            let _ = broadcast.send(anomaly);
        }
        let _ = alert_wake.try_send(());
    };
    loop {
        match events.recv_timeout(Duration::from_secs(1)) {
            Ok(batch) => {
                let mut found = Vec::new();
                for event in &batch {
                    found.extend(detector.observe(event, &cluster));
                }
                record(found);
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            record(detector.tick(chrono::Utc::now().timestamp_micros()));
        }
        if last_verdict_check.elapsed() >= VERDICT_CHECK_INTERVAL {
            last_verdict_check = Instant::now();
            match crate::feedback::learning::unlearn_confirmed_attacks(
                &connection,
                &mut detector,
                &mut unlearned,
            ) {
                Ok(0) => {}
                Ok(forgotten) => tracing::info!(
                    forgotten,
                    "first-seen values of newly confirmed attacks forgotten"
                ),
                Err(error) => tracing::warn!(%error, "could not read true-positive verdicts"),
            }
        }
    }
    record(detector.finish());
}

/// How long after a window closes the model scores it: the events of its
/// last seconds must be flushed to Parquet first.
const MODEL_SCORING_DELAY: Duration = Duration::from_secs(60);
/// After a failed training, wait this long before the next attempt.
const TRAINING_RETRY: Duration = Duration::from_secs(3600);

/// Trains the models of `models/*.toml` (or the built-in specs) when they are
/// missing, changed or due by their schedule, and scores every window that
/// closes while the daemon runs. Anomalies go the way live ones go: catalog,
/// Watch clients, alert delivery.
fn run_models(
    connection: duckdb::Connection,
    data_dir: PathBuf,
    broadcast: tokio::sync::broadcast::Sender<Anomaly>,
    alert_wake: crossbeam_channel::Sender<()>,
    stop: Arc<AtomicBool>,
) {
    use crate::model::{ModelRegistry, train::models_dir};
    let store = match crate::detect::AnomalyStore::open(&connection, 30 * 60 * 1_000_000) {
        Ok(store) => store,
        Err(error) => {
            tracing::error!(%error, "cannot open the anomaly store; model scoring is off");
            return;
        }
    };
    let specs_dir = std::env::var_os("AUDITLENS_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models"));
    let mut registry = ModelRegistry::load(&models_dir(&data_dir));
    let mut next_training_attempt = Instant::now();
    // Windows that closed before the start are `auditlens detect`'s job.
    let mut scored_until = chrono::Utc::now();
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() >= next_training_attempt {
            next_training_attempt = Instant::now() + TRAINING_RETRY;
            match train_due_models(&connection, &data_dir, &specs_dir, &registry) {
                Ok(0) => {}
                Ok(trained) => {
                    tracing::info!(trained, "models trained");
                    registry = ModelRegistry::load(&models_dir(&data_dir));
                }
                Err(error) => tracing::warn!(%error, "model training failed; retrying in an hour"),
            }
        }
        let window = registry
            .models()
            .iter()
            .map(|model| model.artifact.spec.window())
            .min()
            .unwrap_or_else(|| chrono::Duration::hours(1));
        let delay = chrono::Duration::from_std(MODEL_SCORING_DELAY).unwrap_or_default();
        let window_seconds = window.num_seconds().max(60);
        // The end of the last whole window that is safe to score.
        let now = chrono::Utc::now() - delay;
        let aligned = now.timestamp() - now.timestamp().rem_euclid(window_seconds);
        let closed_until = chrono::DateTime::from_timestamp(aligned, 0).unwrap_or(now);
        if closed_until > scored_until {
            if !registry.is_empty() {
                let since = closed_until - window;
                match crate::model::score_closed_window(
                    &connection,
                    &registry,
                    since.max(scored_until),
                    closed_until,
                ) {
                    Ok(anomalies) if !anomalies.is_empty() => {
                        if let Err(error) = store.record(&anomalies) {
                            tracing::error!(%error, "could not store model anomalies");
                        }
                        for anomaly in anomalies {
                            let _ = broadcast.send(anomaly);
                        }
                        let _ = alert_wake.try_send(());
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "model scoring failed"),
                }
            }
            scored_until = closed_until;
        }
        for _ in 0..100 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Trains what the registry says is missing or stale, and any model whose
/// schedule passed since it was trained. Returns how many were trained.
fn train_due_models(
    catalog: &duckdb::Connection,
    data_dir: &Path,
    specs_dir: &Path,
    registry: &crate::model::ModelRegistry,
) -> Result<usize, String> {
    use crate::model::features::{feature_names, open_feature_session};
    let session = open_feature_session(data_dir).map_err(|error| error.to_string())?;
    let available = feature_names(&session).map_err(|error| error.to_string())?;
    drop(session);
    let specs =
        crate::model::load_specs(specs_dir, &available).map_err(|error| error.to_string())?;
    let now = chrono::Utc::now();
    let mut due = registry.models_to_train(&specs);
    for spec in &specs {
        if let Some(model) = registry.get(&spec.name)
            && spec.schedule.next_run_after(model.artifact.trained_at) <= now
            && !due.contains(&spec.name)
        {
            due.push(spec.name.clone());
        }
    }
    let mut trained = 0;
    for name in due {
        let options = crate::model::TrainOptions {
            until: Some(now),
            only_model: Some(name.clone()),
            excluded_windows: Vec::new(),
        };
        let report = crate::model::train_all(data_dir, Some(catalog), &specs, &options)
            .map_err(|error| error.to_string())?;
        trained += report.trained.len();
        // train_all has logged each model it could not train.
    }
    Ok(trained)
}

fn run_alerts(
    connection: duckdb::Connection,
    config: crate::alerts::AlertsConfig,
    metrics: Arc<crate::metrics::Metrics>,
    running: Arc<AtomicBool>,
    woken: crossbeam_channel::Receiver<()>,
) {
    if config.sinks.is_empty() {
        return;
    }
    let dispatcher = match crate::alerts::AlertDispatcher::new(connection, config, Some(metrics)) {
        Ok(dispatcher) => dispatcher,
        Err(error) => {
            tracing::error!(%error, "alert delivery is off");
            return;
        }
    };
    loop {
        let last_round = !running.load(Ordering::SeqCst);
        if let Err(error) = dispatcher.enqueue_from_catalog() {
            tracing::warn!(%error, "could not queue new alerts");
        }
        if let Err(error) = dispatcher.run_once(chrono::Utc::now()) {
            tracing::warn!(%error, "alert delivery round failed");
        }
        if last_round {
            return;
        }
        let _ = woken.recv_timeout(Duration::from_secs(1));
    }
}

fn publish_ingest_status(stats: &IngestStats, shared: &SharedIngestStatus) {
    use std::sync::atomic::Ordering::Relaxed;
    let files = stats
        .files()
        .into_iter()
        .map(|file| IngestFileStatus {
            path: file.path,
            fingerprint: file.source_id,
            committed_offset: file.committed_offset,
            size_bytes: file.file_bytes,
            lag_seconds: file.lag_seconds,
        })
        .collect();
    let last_commit = stats
        .files()
        .iter()
        .map(|file| file.last_commit_micros)
        .max()
        .and_then(chrono::DateTime::from_timestamp_micros);
    let status = IngestStatus {
        files,
        events_stored: stats.events_stored.load(Relaxed),
        quarantined_lines: stats.quarantined.load(Relaxed),
        last_commit,
    };
    if let Ok(mut guard) = shared.write() {
        *guard = status;
    }
}

/// SIGINT and SIGTERM handlers, installed at once: a signal that arrives
/// before anything waits on them is kept, not lost.
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Must run inside the runtime (`Runtime::enter`).
    fn install() -> Option<ShutdownSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(interrupt), Ok(terminate)) => Some(ShutdownSignals {
                interrupt,
                terminate,
            }),
            _ => {
                tracing::error!("cannot install signal handlers; stop with SIGKILL only");
                None
            }
        }
    }
}

async fn wait_for_shutdown(signals: Option<ShutdownSignals>, run_for_seconds: Option<u64>) {
    let timer = async {
        match run_for_seconds {
            Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
            None => std::future::pending::<()>().await,
        }
    };
    let Some(ShutdownSignals {
        mut interrupt,
        mut terminate,
    }) = signals
    else {
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
        FolderWatcher {
            directory,
            wake,
            watcher: None,
        }
    }

    fn ensure_watching(&mut self) {
        use notify::Watcher;
        if self.watcher.is_some() || !self.directory.is_dir() {
            return;
        }
        let wake = self.wake.clone();
        let created = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Opening, reading and closing a file without writing (the daemon's
            // own reads among them) changes nothing to read: waking on those
            // made every scan that opens a file trigger the next one at once,
            // a busy loop. A writer closing its file still wakes.
            if let Ok(event) = &event
                && let notify::EventKind::Access(access) = event.kind
                && access != notify::event::AccessKind::Close(notify::event::AccessMode::Write)
            {
                return;
            }
            // A full channel already holds a wake-up: dropping this one is fine.
            let _ = wake.try_send(());
        });
        match created {
            Ok(mut watcher) => {
                match watcher.watch(&self.directory, notify::RecursiveMode::NonRecursive) {
                    Ok(()) => self.watcher = Some(watcher),
                    Err(error) => {
                        tracing::debug!(%error, "file watching unavailable; relying on the periodic scan")
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%error, "file watching unavailable; relying on the periodic scan")
            }
        }
    }
}

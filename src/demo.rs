//! `auditlens demo`: the first command a newcomer runs.
//!
//! It needs nothing but the binary: a simulated cluster (`simulate`) writes a
//! rotating, gzipped audit log in sped-up real time, with two quiet days of
//! warm-up and then labeled attacks; the real daemon (`daemon::run_serve`, the
//! same code `auditlens serve` runs) tails it with gRPC and metrics on
//! loopback; this module is only a gRPC client of that daemon (`WatchAnomalies`
//! and `GetIngestStatus`), printing incidents as they appear under a progress
//! line. At the end the daemon shuts down in order, the nightly report of the
//! attack day is written as HTML, and the planted attacks are compared with
//! what was found. Everything lives in one folder the demo owns (marked by a
//! file, so it never deletes a folder it did not create).

use crate::api::client::{ClientOptions, connect};
use crate::api::proto;
use crate::cli::GlobalOptions;
use crate::config::Config;
use crate::simulate::{RotationOptions, SimulationConfig, spawn_live};
use clap::Parser;
use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const MARKER: &str = ".auditlens-demo";
const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// `auditlens demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// The folder the demo owns: simulated audit logs, data, report. A folder
    /// from an earlier demo is reset; any other non-empty folder is refused.
    #[arg(long, default_value = "demo")]
    pub dir: PathBuf,
    /// Real seconds the simulation lasts (about 2.5 simulated days pass in
    /// them); the daemon then catches up and stops.
    #[arg(long, default_value_t = 45, value_parser = clap::value_parser!(u64).range(20..=3600))]
    pub seconds: u64,
    /// Keep the daemon serving after the report, until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
    /// Simulation seed (the cluster and its attacks).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Identities in the simulated cluster.
    #[arg(long, default_value_t = 30)]
    pub identities: usize,
    /// Simulated events per second (before speed-up).
    #[arg(long, default_value_t = 4.0)]
    pub rate: f64,
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{path}: {message}")]
    Folder { path: PathBuf, message: String },
    #[error("simulation: {0}")]
    Simulate(#[from] crate::simulate::SimulateError),
    #[error("daemon: {0}")]
    Daemon(String),
    #[error("api: {0}")]
    Api(#[from] crate::api::ApiError),
    #[error("report: {0}")]
    Report(String),
}

/// Serve arguments parsed the way the command line would, so the demo runs
/// exactly what `auditlens serve` runs.
#[derive(Parser)]
struct ServeCommand {
    #[command(flatten)]
    serve: crate::daemon::ServeArgs,
}

pub fn run(args: &DemoArgs, global: &GlobalOptions) -> Result<(), DemoError> {
    let folder = prepare_folder(&args.dir)?;
    let audit_dir = folder.join("audit");
    let data_dir = folder.join("data");
    for path in [&audit_dir, &data_dir] {
        std::fs::create_dir_all(path).map_err(|error| folder_error(path, error))?;
    }
    let grpc = free_loopback_port(&folder)?;
    let metrics = free_loopback_port(&folder)?;

    // 2 days of warm-up (the novelty layer's learning period), then half a
    // day with attacks; simulated time ends now.
    let warmup = 2 * MICROS_PER_DAY;
    let duration = warmup + MICROS_PER_DAY / 2;
    let now = chrono::Utc::now().timestamp_micros();
    let simulation_seconds = args.seconds as f64 * 0.8;
    let speedup = (duration as f64 / 1e6) / simulation_seconds;
    let config = SimulationConfig {
        start: now - duration,
        duration,
        seed: args.seed,
        events_per_second: args.rate,
        identities: args.identities.max(10),
        warmup,
        attacks: crate::simulate::attack_scenarios()
            .into_iter()
            .map(str::to_string)
            .collect(),
        attack_count: 1,
        omit_stages: Vec::new(),
    };
    let attack_day =
        chrono::DateTime::from_timestamp_micros(now - duration + warmup + (duration - warmup) / 2)
            .map(|time| time.date_naive())
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let rotation = RotationOptions {
        max_size_bytes: Some(16 * 1024 * 1024),
        gzip: true,
        gzip_level: 1,
        max_backups: None,
    };
    println!(
        "auditlens demo: a simulated cluster of {} identities writes its audit log to {}",
        config.identities,
        audit_dir.display()
    );
    println!(
        "  2 quiet days, then half a day with attacks, {:.0}x sped up (~{:.0} s); the daemon stores to {}",
        speedup,
        simulation_seconds,
        data_dir.display()
    );
    println!("  gRPC on 127.0.0.1:{grpc}, metrics on http://127.0.0.1:{metrics}/metrics\n");

    let simulation_stop = Arc::new(AtomicBool::new(false));
    let simulation = spawn_live(
        config,
        audit_dir.clone(),
        rotation,
        speedup,
        simulation_stop.clone(),
    )?;

    let serve_argv: Vec<String> = vec![
        "serve".into(),
        "--audit-dir".into(),
        audit_dir.to_string_lossy().into_owned(),
        "--metrics-listen".into(),
        format!("127.0.0.1:{metrics}"),
        "--grpc-listen".into(),
        format!("127.0.0.1:{grpc}"),
    ];
    let serve = ServeCommand::try_parse_from(&serve_argv)
        .map_err(|error| DemoError::Daemon(error.to_string()))?
        .serve;
    let mut daemon_config = Config {
        cluster: global.cluster.clone().unwrap_or_else(|| "demo".to_string()),
        ..Config::default()
    };
    daemon_config.store.flush_interval_ms = 1_000;
    let daemon_global = GlobalOptions {
        data_dir: data_dir.clone(),
        config: None,
        cluster: Some(daemon_config.cluster.clone()),
        verbose: 0,
        quiet: true,
    };
    let report_config = daemon_config.clone();
    let daemon_stop = crate::daemon::StopSignal::default();
    let daemon = {
        let stop = daemon_stop.clone();
        std::thread::Builder::new()
            .name("auditlens-demo-daemon".into())
            .spawn(move || {
                crate::daemon::run_serve_until(&serve, &daemon_global, daemon_config, stop)
                    .map_err(|error| error.to_string())
            })
            .map_err(|error| DemoError::Daemon(error.to_string()))?
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|error| DemoError::Daemon(error.to_string()))?;
    let give_up_after = Duration::from_secs(args.seconds * 3);
    let watch = runtime.block_on(watch(
        grpc,
        &daemon,
        &simulation,
        &daemon_stop,
        args.keep_running,
        give_up_after,
    ));
    // Stops the daemon in order (stop reading, flush, checkpoint, stop
    // serving) if the watcher did not; a no-op after Ctrl-C.
    daemon_stop.stop();
    simulation_stop.store(true, Ordering::SeqCst);
    let simulated = simulation.join()?;
    let daemon_result = daemon
        .join()
        .map_err(|_| DemoError::Daemon("the daemon thread panicked".into()))?;
    daemon_result.map_err(DemoError::Daemon)?;
    let mut watch = watch?;
    // The exact count, from the Parquet history the daemon left.
    if let Some(stored) = stored_events(&data_dir) {
        watch.events_stored = stored;
    }

    // The report of the attack day, from the stored history.
    let report_path = folder.join(format!("report-{attack_day}.html"));
    let report_global = GlobalOptions {
        data_dir: data_dir.clone(),
        config: None,
        cluster: Some(report_config.cluster.clone()),
        verbose: 0,
        quiet: true,
    };
    crate::report::run(
        &crate::report::ReportArgs {
            date: Some(attack_day),
            format: crate::report::ReportFormat::Html,
            out: Some(report_path.clone()),
        },
        &report_global,
        &report_config,
    )
    .map_err(|error| DemoError::Report(error.to_string()))?;

    let labels = read_labels(&audit_dir.join("labels.jsonl"));
    let found: HashSet<&str> = labels
        .iter()
        .filter(|label| watch.identities.contains(&label.identity))
        .map(|label| label.scenario.as_str())
        .collect();
    println!();
    println!(
        "done: {} events simulated, {} stored, {} anomalies in {} incidents",
        simulated.events,
        watch.events_stored,
        watch.anomalies,
        watch.incidents.len()
    );
    if !labels.is_empty() {
        let planted: BTreeMap<&str, bool> = labels
            .iter()
            .map(|label| {
                (
                    label.scenario.as_str(),
                    found.contains(label.scenario.as_str()),
                )
            })
            .collect();
        let hits = planted.values().filter(|hit| **hit).count();
        println!(
            "the simulator planted {} attack scenarios (audit/labels.jsonl); auditlens raised anomalies on the identity behind {hits} of them",
            planted.len()
        );
        let missed: Vec<&str> = planted
            .iter()
            .filter(|(_, hit)| !**hit)
            .map(|(name, _)| *name)
            .collect();
        if !missed.is_empty() {
            println!("  no anomaly for: {}", missed.join(", "));
        }
    }
    println!("report: {}", report_path.display());
    println!("\nwhat to try next:");
    let data = data_dir.display();
    println!(
        "  auditlens sql --data-dir {data} \"SELECT username, count(*) FROM events GROUP BY ALL ORDER BY 2 DESC LIMIT 10\""
    );
    println!("  auditlens detect --data-dir {data} --format table");
    println!(
        "  auditlens serve --data-dir {data} --audit-dir {}   # then, in another shell:",
        audit_dir.display()
    );
    println!("  auditlens anomalies --follow");
    println!(
        "  auditlens rbac audit --rbac {}/rbac.json",
        audit_dir.display()
    );
    Ok(())
}

/// `count(*)` over the stored events, or `None` if the query fails.
fn stored_events(data_dir: &Path) -> Option<u64> {
    use arrow::array::{Array, Int64Array};
    let batches =
        crate::store::local_query::run_query(data_dir, "SELECT count(*) FROM events").ok()?;
    let column = batches.first()?.column(0).clone();
    let counts = column.as_any().downcast_ref::<Int64Array>()?;
    (!counts.is_empty()).then(|| counts.value(0).max(0) as u64)
}

/// What the watcher saw.
#[derive(Default)]
struct Watched {
    anomalies: u64,
    incidents: HashSet<String>,
    identities: HashSet<String>,
    events_stored: u64,
}

/// Prints anomalies as they arrive under a progress line until the daemon has
/// caught up with the finished simulation (then stops it, unless
/// `keep_running`), or until the daemon stops (Ctrl-C).
async fn watch(
    port: u16,
    daemon: &std::thread::JoinHandle<Result<(), String>>,
    simulation: &crate::simulate::LiveHandle,
    daemon_stop: &crate::daemon::StopSignal,
    keep_running: bool,
    give_up_after: Duration,
) -> Result<Watched, DemoError> {
    let options = ClientOptions {
        server: format!("http://127.0.0.1:{port}"),
        ..ClientOptions::default()
    };
    // The daemon binds after recovery; wait for it (or for its failure).
    let started = Instant::now();
    let mut client = loop {
        match connect(&options).await {
            Ok(client) => break client,
            Err(error) => {
                if daemon.is_finished() || started.elapsed() > Duration::from_secs(60) {
                    return Err(error.into());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    if keep_running {
        println!(
            "the daemon keeps serving; in another shell: auditlens anomalies --follow --server {}",
            options.server
        );
        println!("Ctrl-C stops it.\n");
    }
    let mut stream = client
        .watch_anomalies(proto::WatchAnomaliesRequest {
            filter: None,
            after_seq: 0,
        })
        .await
        .map_err(crate::api::ApiError::from)?
        .into_inner();
    let mut status_client = client.clone();
    let terminal = std::io::stdout().is_terminal();
    let mut watched = Watched::default();
    let mut progress = tokio::time::interval(if terminal {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    });
    let mut progress_shown = false;
    let mut caught_up_said = false;
    let started = Instant::now();
    loop {
        tokio::select! {
            message = stream.message() => {
                let Ok(Some(message)) = message else { break };
                let Some(anomaly) = message.anomaly else { continue };
                watched.anomalies += 1;
                watched.identities.insert(anomaly.identity.clone());
                if progress_shown && terminal {
                    print!("\r\x1b[2K");
                }
                if watched.incidents.insert(anomaly.incident_id.clone()) {
                    println!(
                        "INCIDENT {:<8} {}  {}",
                        anomaly.severity.to_uppercase(),
                        anomaly.identity,
                        anomaly.title
                    );
                } else {
                    println!("   + {:<8} {}", anomaly.severity, anomaly.title);
                }
                progress_shown = false;
            }
            _ = progress.tick() => {
                if daemon.is_finished() {
                    break;
                }
                if let Ok(status) = status_client.get_ingest_status(proto::GetIngestStatusRequest::default()).await {
                    let status = status.into_inner();
                    let settled = status.events_stored == watched.events_stored;
                    watched.events_stored = status.events_stored;
                    let caught_up = simulation.is_finished() && status.lag_bytes == 0 && settled;
                    if !caught_up_said && (caught_up || started.elapsed() > give_up_after) {
                        caught_up_said = true;
                        if keep_running {
                            if progress_shown && terminal {
                                println!();
                                progress_shown = false;
                            }
                            println!("the simulation is over and stored; the daemon keeps serving until Ctrl-C");
                        } else {
                            daemon_stop.stop();
                        }
                    }
                    let line = format!(
                        "[{:>4.0}s] {} events stored, lag {:.1} s, {} anomalies in {} incidents",
                        started.elapsed().as_secs_f64(),
                        status.events_stored,
                        status.lag_seconds,
                        watched.anomalies,
                        watched.incidents.len()
                    );
                    if terminal {
                        print!("\r\x1b[2K{line}");
                        let _ = std::io::stdout().flush();
                        progress_shown = true;
                    } else {
                        println!("{line}");
                    }
                }
            }
        }
    }
    if progress_shown {
        println!();
    }
    Ok(watched)
}

/// Creates the demo folder, or resets one an earlier demo created.
fn prepare_folder(folder: &Path) -> Result<PathBuf, DemoError> {
    if folder.exists() {
        let mut entries = std::fs::read_dir(folder).map_err(|error| folder_error(folder, error))?;
        let empty = entries.next().is_none();
        if !empty {
            if !folder.join(MARKER).exists() {
                return Err(DemoError::Folder {
                    path: folder.to_path_buf(),
                    message: "exists and was not made by `auditlens demo`; choose another --dir"
                        .into(),
                });
            }
            for name in ["audit", "data"] {
                let path = folder.join(name);
                if path.exists() {
                    std::fs::remove_dir_all(&path).map_err(|error| folder_error(&path, error))?;
                }
            }
        }
    }
    std::fs::create_dir_all(folder).map_err(|error| folder_error(folder, error))?;
    std::fs::write(
        folder.join(MARKER),
        "made by `auditlens demo`; it resets this folder on its next run\n",
    )
    .map_err(|error| folder_error(folder, error))?;
    Ok(folder.to_path_buf())
}

fn folder_error(path: &Path, error: std::io::Error) -> DemoError {
    DemoError::Folder {
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}

fn free_loopback_port(folder: &Path) -> Result<u16, DemoError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| folder_error(folder, error))
}

#[derive(serde::Deserialize)]
struct DemoLabel {
    scenario: String,
    identity: String,
}

fn read_labels(path: &Path) -> Vec<DemoLabel> {
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_folder_it_did_not_make() {
        let folder = tempfile::tempdir().expect("tempdir");
        std::fs::write(folder.path().join("precious.txt"), "keep me").expect("write");
        let error = prepare_folder(folder.path()).expect_err("must refuse");
        assert!(error.to_string().contains("not made by"), "{error}");
        assert!(folder.path().join("precious.txt").exists());
    }

    #[test]
    fn resets_its_own_folder() {
        let folder = tempfile::tempdir().expect("tempdir");
        prepare_folder(folder.path()).expect("first");
        std::fs::create_dir_all(folder.path().join("data/events")).expect("mkdir");
        prepare_folder(folder.path()).expect("second");
        assert!(!folder.path().join("data").exists());
        assert!(folder.path().join(MARKER).exists());
    }
}

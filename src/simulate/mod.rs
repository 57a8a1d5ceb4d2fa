//! `auditlens simulate`: a realistic cluster's audit log, with labeled attacks.
//!
//! The simulator builds a cluster (nodes, control plane, controllers, add-ons,
//! a CI deployer, applications and about ten human users over OIDC), runs each
//! identity's normal behavior with daily and weekly rhythms, places attack
//! scenarios after a warm-up, and writes what the API server would have
//! written: `audit.log` plus lumberjack-rotated backups, `labels.jsonl` (every
//! attack's audit IDs), `benign.jsonl` (rare but benign episodes) and
//! `rbac.json` (the RBAC objects, consistent with every decision in the log).
//!
//! The one design decision to know: everything is decided when a request is
//! issued and rendered by hand into a reused buffer, from one seeded ChaCha
//! generator driven in a fixed order, so the same seed and flags give
//! byte-identical output and generation runs at several hundred thousand
//! events per second. See docs/SIMULATOR.md.

mod behavior;
mod cluster;
mod engine;
mod json;
mod live;
mod output;
pub mod rbac;
mod resources;
mod scenarios;

pub use engine::Label;
pub use live::{LiveHandle, spawn_live};
pub use output::RotationOptions;

use crate::cli::GlobalOptions;
use behavior::Activity;
use engine::{CountingSink, Engine, LineSink, MICROS_PER_SECOND};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

const HOUR: i64 = 3600 * MICROS_PER_SECOND;
const DAY: i64 = 24 * HOUR;
/// Simulated time advanced per step; stage events are written window by window.
const WINDOW: i64 = 10 * MICROS_PER_SECOND;

/// Flags of `auditlens simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Directory to write audit.log, its rotated backups, labels.jsonl, benign.jsonl and rbac.json into.
    #[arg(long)]
    pub out: PathBuf,
    /// Simulated days (fractions allowed).
    #[arg(long, default_value_t = 1.0)]
    pub days: f64,
    /// Seed: the same seed and flags give byte-identical output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start of the simulated period (RFC 3339, UTC). Default 2026-11-01T00:00:00Z, or now with --live.
    #[arg(long)]
    pub start: Option<String>,
    /// Average audit events (lines) per second across the cluster.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// About how many identities the cluster has.
    #[arg(long, default_value_t = 50)]
    pub identities: usize,
    /// Days of normal behavior before the first attack.
    #[arg(long, default_value_t = 2.0)]
    pub warmup_days: f64,
    /// Attack scenarios: "all", "none", or a comma-separated list (see docs/SIMULATOR.md).
    #[arg(long, default_value = "all")]
    pub attacks: String,
    /// How many times each selected scenario runs.
    #[arg(long, default_value_t = 1)]
    pub attack_count: usize,
    /// Rotate audit.log past this size, like --audit-log-maxsize (megabytes, fractions allowed).
    #[arg(long, default_value_t = 100.0)]
    pub max_size_mb: f64,
    /// Gzip rotated backups, like --audit-log-compress.
    #[arg(long)]
    pub gzip: bool,
    /// Gzip level, 1 (fastest, the default: generation outruns level 6 several times) to 9 (smallest).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub gzip_level: u32,
    /// Keep at most this many backups, like --audit-log-maxbackup.
    #[arg(long)]
    pub max_backups: Option<usize>,
    /// Write one audit.log, never rotate.
    #[arg(long)]
    pub single_file: bool,
    /// Write in real time (times --speedup) instead of as fast as possible.
    #[arg(long)]
    pub live: bool,
    /// Simulated seconds per real second in --live mode.
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// Stages the audit policy omits (RequestReceived, ResponseStarted), like omitStages.
    #[arg(long, value_delimiter = ',')]
    pub omit_stage: Vec<String>,
}

/// What the simulated cluster looks like and what happens in it (everything
/// except where and how the log is written).
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// Start, UTC microseconds since the epoch.
    pub start: i64,
    /// Length in microseconds.
    pub duration: i64,
    pub seed: u64,
    pub events_per_second: f64,
    pub identities: usize,
    pub warmup: i64,
    /// Attack scenario names to run.
    pub attacks: Vec<String>,
    pub attack_count: usize,
    pub omit_stages: Vec<String>,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("could not serialize: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the live simulation thread panicked")]
    LiveThreadPanicked,
}

pub type Result<T, E = SimulateError> = std::result::Result<T, E>;

/// What a run produced.
#[derive(Debug, Clone, Default)]
pub struct SimulationSummary {
    pub events: u64,
    pub human_events: u64,
    pub identities: usize,
    /// Log files written (audit.log and every backup, including deleted ones).
    pub files: usize,
    pub attacks: usize,
    pub benign: usize,
    pub start: String,
    pub end: String,
    pub elapsed_seconds: f64,
}

impl SimulationSummary {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed_seconds.max(1e-9)
    }
}

impl SimulationConfig {
    pub fn from_args(args: &SimulateArgs) -> Result<SimulationConfig> {
        let start = match &args.start {
            Some(text) => crate::audit::parse_rfc3339_micros(text).ok_or_else(|| {
                SimulateError::InvalidArgument(format!("--start {text:?} is not an RFC 3339 time"))
            })?,
            None if args.live => chrono::Utc::now().timestamp_micros(),
            None => 1_793_491_200 * MICROS_PER_SECOND, // 2026-11-01T00:00:00Z, a Sunday
        };
        if !(args.days > 0.0 && args.days.is_finite()) {
            return Err(SimulateError::InvalidArgument(
                "--days must be positive".into(),
            ));
        }
        if !(args.rate > 0.0 && args.rate.is_finite()) {
            return Err(SimulateError::InvalidArgument(
                "--rate must be positive".into(),
            ));
        }
        if args.identities < 10 {
            return Err(SimulateError::InvalidArgument(
                "--identities must be at least 10".into(),
            ));
        }
        let known = scenarios::scenario_names();
        let attacks: Vec<String> = match args.attacks.trim() {
            "all" => known.iter().map(|name| name.to_string()).collect(),
            "none" | "" => Vec::new(),
            list => {
                let mut chosen = Vec::new();
                for name in list
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                {
                    if !known.contains(&name) {
                        return Err(SimulateError::InvalidArgument(format!(
                            "unknown attack scenario {name:?}; known: {}",
                            known.join(", ")
                        )));
                    }
                    chosen.push(name.to_string());
                }
                chosen
            }
        };
        for stage in &args.omit_stage {
            if !matches!(stage.as_str(), "RequestReceived" | "ResponseStarted") {
                return Err(SimulateError::InvalidArgument(format!(
                    "--omit-stage {stage:?}: only RequestReceived and ResponseStarted can be omitted"
                )));
            }
        }
        let duration = (args.days * DAY as f64) as i64;
        let mut warmup = (args.warmup_days.max(0.0) * DAY as f64) as i64;
        if warmup >= duration {
            // A short run still gets its attacks: in its second half.
            warmup = duration / 2;
            tracing::warn!(
                warmup_hours = warmup / HOUR,
                "warm-up longer than the run; attacks placed in its second half"
            );
        }
        Ok(SimulationConfig {
            start,
            duration,
            seed: args.seed,
            events_per_second: args.rate,
            identities: args.identities,
            warmup,
            attacks,
            attack_count: args.attack_count,
            omit_stages: args.omit_stage.clone(),
        })
    }
}

impl RotationOptions {
    pub fn from_args(args: &SimulateArgs) -> Result<RotationOptions> {
        if args.max_size_mb.is_nan() || args.max_size_mb <= 0.0 {
            return Err(SimulateError::InvalidArgument(
                "--max-size-mb must be positive".into(),
            ));
        }
        Ok(RotationOptions {
            max_size_bytes: (!args.single_file)
                .then_some((args.max_size_mb * 1024.0 * 1024.0) as u64),
            gzip: args.gzip,
            gzip_level: args.gzip_level,
            max_backups: args.max_backups,
        })
    }
}

/// A cluster in motion: the engine, its activities and the time it has reached.
pub(crate) struct Simulation {
    engine: Engine,
    activities: Vec<Activity>,
    machine_scale: f64,
    pub(crate) end: i64,
}

impl Simulation {
    /// Builds the cluster, calibrates the machine rate and places the scenarios.
    pub(crate) fn new(config: &SimulationConfig) -> Simulation {
        let machine_scale = calibrate(config);
        let mut simulation = Simulation::build(config, machine_scale, true);
        simulation.place_scenarios(config);
        simulation
    }

    fn build(config: &SimulationConfig, machine_scale: f64, render: bool) -> Simulation {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let shape = cluster::ClusterShape::for_identities(config.identities);
        // The cluster was installed some weeks before the simulated period.
        let created = config.start - 40 * DAY - rng.random_range(0..20 * DAY);
        let (cluster, mut rbac) = cluster::build(&mut rng, &shape, created);
        if config
            .attacks
            .iter()
            .any(|attack| attack == "anonymous-allowed")
        {
            // The latent misconfiguration the anonymous scenario finds.
            rbac.put_binding(rbac::Binding {
                namespace: None,
                name: "legacy-monitoring-read".into(),
                role_kind: "ClusterRole".into(),
                role_name: "view".into(),
                subjects: vec![rbac::Subject::user("system:anonymous")],
                bootstrap: false,
                created: created + 3 * DAY,
                uid: json::uuid_string(&mut rng),
                resource_version: 4711,
            });
        }
        let mut activities = behavior::activities(&cluster, &mut rng);
        let mut engine = Engine::new(rng, cluster, rbac, config.start, &config.omit_stages);
        engine.render_lines = render;
        engine.stagger(&mut activities, config.start, machine_scale);
        Simulation {
            engine,
            activities,
            machine_scale,
            end: config.start + config.duration,
        }
    }

    fn place_scenarios(&mut self, config: &SimulationConfig) {
        let first = config.start + config.warmup;
        let last = (self.end - HOUR).max(first + 1);
        let engine = &mut self.engine;
        for scenario in scenarios::ATTACKS {
            if !config.attacks.iter().any(|name| name == scenario.name) {
                continue;
            }
            for _ in 0..config.attack_count {
                let ts = place(engine, scenario, first, last);
                if (scenario.run)(engine, ts, scenario.name, scenario.severity).is_none() {
                    tracing::warn!(
                        scenario = scenario.name,
                        "scenario skipped: the cluster has no suitable actor"
                    );
                }
            }
        }
        let benign_count = (((self.end - first) as f64 / (3 * DAY) as f64).round() as usize).max(1);
        for scenario in scenarios::BENIGN {
            for _ in 0..benign_count {
                let ts = place(engine, scenario, first, last);
                if (scenario.run)(engine, ts, scenario.name, scenario.severity).is_none() {
                    tracing::warn!(
                        scenario = scenario.name,
                        "benign episode skipped: no suitable actor"
                    );
                }
            }
        }
    }

    /// Simulated time reached so far.
    pub(crate) fn now(&self) -> i64 {
        self.engine.now
    }

    /// Advances to `until` (at most the end), writing every stage event before it.
    pub(crate) fn advance_to(&mut self, until: i64, sink: &mut dyn LineSink) -> Result<()> {
        let until = until.min(self.end);
        while self.engine.now < until {
            let window_end = (self.engine.now + WINDOW).min(until);
            let mut activities = std::mem::take(&mut self.activities);
            self.engine
                .run_activities(&mut activities, window_end, self.machine_scale);
            self.activities = activities;
            self.engine.issue_scheduled(window_end);
            self.engine.flush_until(window_end, sink)?;
            self.engine.now = window_end;
        }
        Ok(())
    }

    /// Writes what is still pending (requests that complete after the end).
    pub(crate) fn finish(&mut self, sink: &mut dyn LineSink) -> Result<()> {
        self.engine.flush_all(sink)
    }

    pub(crate) fn summary(&self, files: usize, elapsed_seconds: f64) -> SimulationSummary {
        let (attacks, benign) = self.engine.finished_labels();
        SimulationSummary {
            events: self.engine.counts.events,
            human_events: self.engine.counts.human_events,
            identities: self.engine.cluster.identities.len(),
            files,
            attacks: attacks.len(),
            benign: benign.len(),
            start: json::rfc3339_micros(self.engine.start),
            end: json::rfc3339_micros(self.engine.now),
            elapsed_seconds,
        }
    }

    /// Writes labels.jsonl, benign.jsonl and rbac.json (atomically: temp file, then rename).
    pub(crate) fn write_side_files(&self, directory: &Path) -> Result<()> {
        let (attacks, benign) = self.engine.finished_labels();
        write_atomically(&directory.join("labels.jsonl"), &json_lines(&attacks)?)?;
        write_atomically(&directory.join("benign.jsonl"), &json_lines(&benign)?)?;
        let mut rbac = serde_json::to_vec_pretty(&self.engine.rbac.to_list_json())?;
        rbac.push(b'\n');
        write_atomically(&directory.join("rbac.json"), &rbac)?;
        Ok(())
    }
}

fn json_lines(labels: &[Label]) -> Result<Vec<u8>> {
    let mut buffer = Vec::new();
    for label in labels {
        serde_json::to_writer(&mut buffer, label)?;
        buffer.push(b'\n');
    }
    Ok(buffer)
}

fn write_atomically(path: &Path, content: &[u8]) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let io = |source| SimulateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::create(&temporary).map_err(io)?;
    file.write_all(content).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)?;
    Ok(())
}

/// Picks a start time for one scenario in [first, last].
fn place(engine: &mut Engine, scenario: &scenarios::Scenario, first: i64, last: i64) -> i64 {
    let offset_minutes = match scenario.name {
        "night-namespaces" | "oncall-night" => engine
            .cluster
            .humans
            .iter()
            .find(|human| human.role == cluster::HumanRole::SiteReliability)
            .map(|human| human.utc_offset_minutes)
            .unwrap_or(60),
        _ => 60,
    };
    for _ in 0..500 {
        let ts = engine.rng.random_range(first..=last);
        let local = ts + offset_minutes * 60 * MICROS_PER_SECOND;
        let hour = local.rem_euclid(DAY) as f64 / HOUR as f64;
        let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7);
        let fits = match scenario.placement {
            scenarios::Placement::Anytime => true,
            scenarios::Placement::Night => (1.0..4.5).contains(&hour),
            scenarios::Placement::BusinessHours => weekday < 5 && (10.0..16.0).contains(&hour),
        };
        if fits {
            return ts;
        }
    }
    engine.rng.random_range(first..=last)
}

/// The factor on machine activity that gives the requested event rate.
///
/// Machine events per second are `fixed + periodic·min(f, 1) + random·f`
/// (fixed: watches, cascades, CI), so three short dry runs at factors ½, 1 and
/// 2 give the three parts.
fn calibrate(config: &SimulationConfig) -> f64 {
    // Ten minutes at four times of day, since traffic follows a daily wave.
    let sample = 10 * 60 * MICROS_PER_SECOND;
    let measure = |scale: f64| -> f64 {
        let mut events = 0;
        for quarter in 0..4 {
            let mut calibration = config.clone();
            calibration.attacks.clear();
            calibration.start = config.start + quarter * 6 * HOUR;
            let mut simulation = Simulation::build(&calibration, scale, false);
            simulation.end = calibration.start + sample;
            // The counting sink cannot fail.
            let _ = simulation.advance_to(simulation.end, &mut CountingSink);
            events += simulation.engine.counts.machine_events;
        }
        events as f64 / (4 * sample / MICROS_PER_SECOND) as f64
    };
    let (at_half, at_one, at_two) = (measure(0.5), measure(1.0), measure(2.0));
    let random = (at_two - at_one).max(1e-6);
    let scaled_below_one = (2.0 * (at_one - at_half)).max(1e-6);
    let fixed = (at_one - scaled_below_one).max(0.0);
    let target = config.events_per_second;
    let factor = if target >= at_one {
        1.0 + (target - at_one) / random
    } else {
        (target - fixed).max(0.0) / scaled_below_one
    };
    tracing::info!(
        at_half,
        at_one,
        at_two,
        factor,
        "calibrated machine activity"
    );
    factor.clamp(0.002, 10_000.0)
}

/// Runs a simulation as fast as possible into `out_dir`.
pub fn simulate_to(
    config: &SimulationConfig,
    out_dir: &Path,
    rotation: RotationOptions,
) -> Result<SimulationSummary> {
    let started = Instant::now();
    let mut simulation = Simulation::new(config);
    let mut writer = output::RotatingWriter::create(out_dir, rotation)?;
    simulation.advance_to(simulation.end, &mut writer)?;
    simulation.finish(&mut writer)?;
    writer.finish()?;
    simulation.write_side_files(out_dir)?;
    Ok(simulation.summary(writer.files_written, started.elapsed().as_secs_f64()))
}

/// `auditlens simulate`: runs the simulation the flags describe and prints a summary.
pub fn run(args: SimulateArgs, _global: &GlobalOptions) -> Result<SimulationSummary> {
    let config = SimulationConfig::from_args(&args)?;
    let rotation = RotationOptions::from_args(&args)?;
    let summary = if args.live {
        if args.speedup.is_nan() || args.speedup <= 0.0 {
            return Err(SimulateError::InvalidArgument(
                "--speedup must be positive".into(),
            ));
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handle = spawn_live(config, args.out.clone(), rotation, args.speedup, stop)?;
        handle.join()?
    } else {
        simulate_to(&config, &args.out, rotation)?
    };
    println!(
        "simulated {} .. {}: {} events from {} identities in {} log files under {}; {} attacks labeled in labels.jsonl, {} benign rarities in benign.jsonl; {:.1} s ({:.0} events/s)",
        summary.start,
        summary.end,
        summary.events,
        summary.identities,
        summary.files,
        args.out.display(),
        summary.attacks,
        summary.benign,
        summary.elapsed_seconds,
        summary.events_per_second()
    );
    Ok(summary)
}

/// Scenario names `--attacks` accepts.
pub fn attack_scenarios() -> Vec<&'static str> {
    scenarios::scenario_names()
}

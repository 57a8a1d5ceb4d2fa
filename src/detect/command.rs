//! `auditlens detect` and `auditlens eval`: the command-line contract.
//!
//! `detect` replays stored history (rules + novelty, then any window
//! detectors) and prints one [`Anomaly`] per line as JSON with exactly the
//! DESIGN.md fields, or a table. `eval` runs the same replay and scores it
//! against a labels file. Both learn novelty from everything before `--since`.

use super::anomaly::{Anomaly, Severity};
use super::eval::{evaluate, read_labels, render_table};
use super::history::{
    ReplayOutcome, ReplayRange, WindowDetector, open_session, parse_time_argument, replay,
    replay_logs,
};
use super::incidents::{DEFAULT_GAP_MICROS, group};
use super::live::DetectorOptions;
use super::store::AnomalyStore;
use crate::cli::GlobalOptions;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// Output format of `detect` and `eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line.
    Jsonl,
    /// A table for people.
    Table,
}

/// Options shared by `detect` and `eval`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Start of detection (RFC 3339 or YYYY-MM-DD, UTC). History before it
    /// trains the novelty index. Default: the first stored event.
    #[arg(long, value_parser = parse_time_argument)]
    pub since: Option<i64>,
    /// End of detection, exclusive. Default: after the last stored event.
    #[arg(long, value_parser = parse_time_argument)]
    pub until: Option<i64>,
    /// Also record Falco-style activity: every RBAC or secret write by a person (info level).
    #[arg(long)]
    pub audit_trail: bool,
    /// Skip the first-seen novelty layer.
    #[arg(long)]
    pub no_novelty: bool,
    /// Novelty lookback in days.
    #[arg(long, default_value_t = 14)]
    pub lookback_days: i64,
    /// Combined novelty score from which an anomaly is raised.
    #[arg(long)]
    pub novelty_threshold: Option<f64>,
    /// Only report anomalies of at least this severity.
    #[arg(long)]
    pub min_severity: Option<Severity>,
    /// Read these audit-log files (JSON lines, .gz allowed, in the order
    /// given) instead of the store. History before --since warms the detectors.
    #[arg(long, num_args = 1..)]
    pub log: Vec<PathBuf>,
}

impl ReplayArgs {
    pub fn detector_options(&self) -> DetectorOptions {
        let mut options = DetectorOptions::default();
        options.rules.audit_trail = self.audit_trail;
        options.disable_novelty = self.no_novelty;
        options.novelty.lookback_micros = self.lookback_days.max(1) * 24 * 3_600_000_000;
        if let Some(threshold) = self.novelty_threshold {
            options.novelty.alert_threshold = threshold;
        }
        options
    }

    fn range(&self) -> ReplayRange {
        ReplayRange {
            since: self.since,
            until: self.until,
            ..ReplayRange::default()
        }
    }
}

/// `auditlens detect`.
#[derive(Debug, Clone, Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub replay: ReplayArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: OutputFormat,
    /// Record the anomalies (grouped into incidents) in the catalog's tables
    /// (`<data-dir>/catalog.duckdb`).
    #[arg(long)]
    pub store: bool,
    /// Print incidents instead of anomalies.
    #[arg(long)]
    pub incidents: bool,
    /// Minutes between anomalies of one identity that still belong to one incident.
    #[arg(long, default_value_t = 30)]
    pub incident_gap_minutes: i64,
}

/// `auditlens eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub replay: ReplayArgs,
    /// Labels: JSON lines {"scenario","identity","start","end","audit_ids",...}.
    #[arg(long)]
    pub labels: PathBuf,
    /// Output format (jsonl prints one JSON document).
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Score the anomalies stored in the catalog (`detect --store`, the
    /// daemon) instead of replaying: what reached people. Suppressed anomalies
    /// never alerted, so they count neither for recall nor as false alerts.
    #[arg(long)]
    pub stored: bool,
}

/// Errors of the two commands, with what they were doing.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    History(#[from] super::history::HistoryError),
    #[error(transparent)]
    Store(#[from] super::store::AnomalyStoreError),
    #[error(transparent)]
    Labels(#[from] super::eval::LabelError),
    #[error(transparent)]
    Feedback(#[from] crate::feedback::FeedbackError),
    #[error("opening the catalog {path}: {source}")]
    Catalog {
        path: PathBuf,
        #[source]
        source: duckdb::Error,
    },
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

/// The window detectors `detect` and `eval` run after the event replay: the
/// trained models of the data folder, if any.
pub fn window_detectors(global: &GlobalOptions) -> Vec<Box<dyn WindowDetector>> {
    crate::model::score::ModelDetector::load(&global.data_dir)
        .into_iter()
        .map(|detector| Box::new(detector) as Box<dyn WindowDetector>)
        .collect()
}

fn run_replay(
    replay_args: &ReplayArgs,
    global: &GlobalOptions,
) -> Result<ReplayOutcome, CommandError> {
    let mut outcome = if replay_args.log.is_empty() {
        let connection = open_session(&global.data_dir)?;
        let mut detectors = window_detectors(global);
        replay(
            &connection,
            &replay_args.detector_options(),
            &replay_args.range(),
            &mut detectors,
        )?
    } else {
        replay_logs(
            &replay_args.log,
            &replay_args.detector_options(),
            replay_args.since,
            replay_args.until,
        )?
    };
    if let Some(minimum) = replay_args.min_severity {
        outcome
            .anomalies
            .retain(|anomaly| anomaly.severity >= minimum);
    }
    tracing::info!(
        events = outcome.events_read,
        anomalies = outcome.anomalies.len(),
        learned_identities = outcome.identities_learned,
        silenced_by_habit = outcome.silenced_by_habit,
        "replay finished"
    );
    Ok(outcome)
}

/// Runs `auditlens detect`.
pub fn run_detect(args: &DetectArgs, global: &GlobalOptions) -> Result<(), CommandError> {
    let outcome = run_replay(&args.replay, global)?;
    if args.store {
        let path = global.data_dir.join("catalog.duckdb");
        let connection =
            duckdb::Connection::open(&path).map_err(|source| CommandError::Catalog {
                path: path.clone(),
                source,
            })?;
        // This folder's events, so a suppression narrowed to a namespace or
        // source can read the evidence (a copied folder's catalog may still
        // carry a view over the folder it was copied from).
        crate::store::views::install_views(&connection, &global.data_dir)
            .map_err(super::history::HistoryError::from)?;
        let store = AnomalyStore::open(&connection, args.incident_gap_minutes.max(1) * 60_000_000)?;
        let inserted = store.record(&outcome.anomalies)?;
        tracing::info!(inserted, path = %path.display(), "anomalies stored");
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.incidents {
        let incidents = group(
            &outcome.anomalies,
            args.incident_gap_minutes.max(1) * 60_000_000,
        );
        match args.format {
            OutputFormat::Jsonl => {
                for incident in &incidents {
                    serde_json::to_writer(&mut out, incident).map_err(std::io::Error::other)?;
                    out.write_all(b"\n")?;
                }
            }
            OutputFormat::Table => {
                writeln!(
                    out,
                    "{:<20} {:<20} {:<9} {:>4}  {:<40} title",
                    "first_seen", "last_seen", "severity", "n", "identity"
                )?;
                for incident in &incidents {
                    writeln!(
                        out,
                        "{:<20} {:<20} {:<9} {:>4}  {:<40} {}",
                        incident.first_seen.format("%Y-%m-%dT%H:%M:%SZ"),
                        incident.last_seen.format("%Y-%m-%dT%H:%M:%SZ"),
                        incident.severity,
                        incident.anomaly_count,
                        incident.identity,
                        incident.display_title()
                    )?;
                }
            }
        }
    } else {
        match args.format {
            OutputFormat::Jsonl => {
                for anomaly in &outcome.anomalies {
                    write_anomaly_json(&mut out, anomaly)?;
                }
            }
            OutputFormat::Table => {
                writeln!(
                    out,
                    "{:<20} {:<9} {:<38} {:<40} title",
                    "window_start", "severity", "detector", "identity"
                )?;
                for anomaly in &outcome.anomalies {
                    writeln!(
                        out,
                        "{:<20} {:<9} {:<38} {:<40} {}",
                        anomaly.window_start.format("%Y-%m-%dT%H:%M:%SZ"),
                        anomaly.severity,
                        anomaly.detector,
                        anomaly.identity,
                        anomaly.title
                    )?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// One anomaly as a JSON line, times as RFC 3339 UTC.
pub fn write_anomaly_json(out: &mut impl Write, anomaly: &Anomaly) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, anomaly).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// Runs `auditlens eval`.
pub fn run_eval(args: &EvalArgs, global: &GlobalOptions) -> Result<(), CommandError> {
    let labels = read_labels(&args.labels)?;
    let evaluation = if args.stored {
        let stored = crate::feedback::stored::stored_range(
            &global.data_dir,
            args.replay.since,
            args.replay.until,
        )?;
        tracing::info!(
            alerting = stored.alerting.len(),
            suppressed = stored.suppressed,
            "scoring stored anomalies"
        );
        evaluate(&labels, &stored.alerting, stored.since, stored.until)
    } else {
        let outcome = run_replay(&args.replay, global)?;
        evaluate(&labels, &outcome.anomalies, outcome.since, outcome.until)
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        OutputFormat::Jsonl => {
            serde_json::to_writer(&mut out, &evaluation).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
        }
        OutputFormat::Table => out.write_all(render_table(&evaluation).as_bytes())?,
    }
    out.flush()?;
    Ok(())
}

/// Keeps `DEFAULT_GAP_MICROS` and the CLI default in one place.
pub const DEFAULT_INCIDENT_GAP_MINUTES: i64 = DEFAULT_GAP_MICROS / 60_000_000;

//! `auditlens triage`: give a verdict on an incident (or one anomaly).
//!
//! ```text
//! auditlens triage INCIDENT (--ack | --true-positive | --benign --reason TEXT | --reopen)
//!                  [--suppress [30d]] [--namespace GLOB] [--source GLOB] [--actor NAME] [--json] [--remote]
//! auditlens triage INCIDENT --history
//! auditlens triage --suppressions
//! auditlens triage --queue [--since T] [--until T] [--json]
//! ```
//!
//! It writes the catalog file directly. DuckDB allows one writing process,
//! so while the daemon runs the file is locked: the command then says so and
//! `--remote` sends the same verdict to the daemon's `TriageIncident` RPC.

use super::learning::ThresholdPolicy;
use super::suppression::{self, Suppression};
use super::triage::{TriageOutcome, TriageState, Verdict, history, record_verdict};
use super::{FeedbackError, Result, SystemClock, database};
use crate::api::client::{ClientOptions, connect};
use crate::api::proto;
use crate::cli::GlobalOptions;
use crate::config::Config;
use clap::{ArgGroup, Args};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `auditlens triage`.
#[derive(Debug, Clone, Args)]
#[command(group(
    ArgGroup::new("action")
        .required(true)
        .args(["ack", "true_positive", "benign", "reopen", "history", "suppressions", "queue"])
))]
pub struct TriageArgs {
    /// The incident (or a single anomaly) to judge.
    #[arg(required_unless_present_any = ["suppressions", "queue"])]
    pub id: Option<String>,
    /// Someone is on it.
    #[arg(long)]
    pub ack: bool,
    /// Resolved: a real attack or misuse. Its windows are never learnt as normal.
    #[arg(long)]
    pub true_positive: bool,
    /// Resolved: expected behaviour (needs --reason).
    #[arg(long, requires = "reason")]
    pub benign: bool,
    /// Open it again.
    #[arg(long)]
    pub reopen: bool,
    /// Print the verdicts given on it, oldest first.
    #[arg(long)]
    pub history: bool,
    /// List every suppression (active, expired, retired).
    #[arg(long)]
    pub suppressions: bool,
    /// List incidents with their state and anomalies (the local triage queue).
    #[arg(long)]
    pub queue: bool,
    /// With --queue: incidents active at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = crate::detect::history::parse_time_argument)]
    pub since: Option<i64>,
    /// With --queue: incidents that started before this time.
    #[arg(long, value_parser = crate::detect::history::parse_time_argument)]
    pub until: Option<i64>,
    /// Why (mandatory with --benign; becomes the suppression's reason).
    #[arg(long)]
    pub reason: Option<String>,
    /// With --benign: suppress its detectors for its identity this long
    /// (default `[feedback] default_suppression_days`, 30 days).
    #[arg(long, num_args = 0..=1, value_name = "DURATION", requires = "benign")]
    pub suppress: Option<Option<String>>,
    /// Narrow the suppression to evidence in namespaces matching this glob.
    #[arg(long, requires = "suppress")]
    pub namespace: Option<String>,
    /// Narrow the suppression to evidence from addresses matching this glob.
    #[arg(long, requires = "suppress")]
    pub source: Option<String>,
    /// Who gives the verdict (default: $USER).
    #[arg(long)]
    pub actor: Option<String>,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Send the verdict to a running daemon (TriageIncident RPC at --server)
    /// instead of writing the catalog file.
    #[arg(long)]
    pub remote: bool,
    #[command(flatten)]
    pub client: ClientOptions,
    /// Model specs whose `[feedback]` bounds limit threshold changes.
    #[arg(long, env = "AUDITLENS_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
}

impl TriageArgs {
    fn state(&self) -> Option<TriageState> {
        if self.ack {
            Some(TriageState::Acknowledged)
        } else if self.true_positive {
            Some(TriageState::ResolvedTruePositive)
        } else if self.benign {
            Some(TriageState::ResolvedBenign)
        } else if self.reopen {
            Some(TriageState::Open)
        } else {
            None
        }
    }

    fn verdict(&self, state: TriageState, default_days: u32) -> Result<Verdict> {
        let suppress_for = match &self.suppress {
            None => None,
            Some(None) => Some(chrono::Duration::days(i64::from(default_days))),
            Some(Some(text)) => Some(super::parse_duration(text).map_err(FeedbackError::Invalid)?),
        };
        let actor = self
            .actor
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|actor| !actor.trim().is_empty())
            .unwrap_or_else(|| "cli".to_string());
        Ok(Verdict {
            subject_id: self.id.clone().unwrap_or_default(),
            state,
            reason: self.reason.clone(),
            actor,
            suppress_for,
            suppress_namespace: self.namespace.clone(),
            suppress_source: self.source.clone(),
        })
    }
}

fn is_lock_error(error: &duckdb::Error) -> bool {
    let text = error.to_string().to_ascii_lowercase();
    text.contains("lock") || text.contains("conflicting")
}

/// Opens the data folder's catalog for writing; a clear error when it does
/// not exist yet or the daemon holds it.
pub fn open_catalog(data_dir: &Path) -> Result<duckdb::Connection> {
    let path = data_dir.join("catalog.duckdb");
    if !path.exists() {
        return Err(FeedbackError::Invalid(format!(
            "no catalog at {}: nothing was detected and stored there yet \
             (run `auditlens detect --store` or the daemon first)",
            path.display()
        )));
    }
    open_catalog_file(&path)
}

/// [`open_catalog`], creating the data folder and catalog when there is none
/// yet (an RBAC acceptance may come before anything was detected).
pub fn open_catalog_creating(data_dir: &Path) -> Result<duckdb::Connection> {
    std::fs::create_dir_all(data_dir).map_err(|error| FeedbackError::File {
        path: data_dir.to_path_buf(),
        message: error.to_string(),
    })?;
    open_catalog_file(&data_dir.join("catalog.duckdb"))
}

fn open_catalog_file(path: &Path) -> Result<duckdb::Connection> {
    let path = path.to_path_buf();
    let connection = duckdb::Connection::open(&path).map_err(|error| {
        if is_lock_error(&error) {
            FeedbackError::CatalogBusy { path: path.clone() }
        } else {
            FeedbackError::DuckDb {
                context: format!("opening {}", path.display()),
                source: error,
            }
        }
    })?;
    connection
        .execute_batch(crate::detect::store::CATALOG_SQL)
        .map_err(database("creating the catalog tables of sql/catalog.sql"))?;
    Ok(connection)
}

/// Runs `auditlens triage`.
pub fn run_triage(args: &TriageArgs, global: &GlobalOptions, config: &Config) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let write_error = |error: std::io::Error| FeedbackError::File {
        path: PathBuf::from("<stdout>"),
        message: error.to_string(),
    };
    if args.suppressions {
        let connection = open_catalog(&global.data_dir)?;
        let now = chrono::Utc::now();
        let all = suppression::list(&connection)?;
        if args.json {
            serde_json::to_writer(&mut out, &all)
                .map_err(|error| FeedbackError::Invalid(error.to_string()))?;
            writeln!(out).map_err(write_error)?;
        } else {
            for entry in &all {
                writeln!(
                    out,
                    "{:<8} {}",
                    suppression_status(entry, now),
                    entry.describe()
                )
                .map_err(write_error)?;
            }
        }
        return Ok(());
    }
    if args.queue {
        let connection = open_catalog(&global.data_dir)?;
        // The evidence's namespaces and sources come from this folder's events.
        crate::store::views::install_views(&connection, &global.data_dir)?;
        let queue = super::triage::incident_queue(&connection, args.since, args.until)?;
        for incident in &queue {
            if args.json {
                serde_json::to_writer(&mut out, incident)
                    .map_err(|error| FeedbackError::Invalid(error.to_string()))?;
                writeln!(out).map_err(write_error)?;
            } else {
                writeln!(
                    out,
                    "{}  {}  {:<8} {:<24} {:>3} alerting {:>3} suppressed  {:<40} {}",
                    incident.id,
                    incident.first_seen.format("%Y-%m-%dT%H:%M:%SZ"),
                    incident.severity,
                    incident.state,
                    incident.alerting_anomalies,
                    incident.suppressed_anomalies,
                    incident.identity,
                    incident.title
                )
                .map_err(write_error)?;
            }
        }
        return Ok(());
    }
    let id = args.id.clone().unwrap_or_default();
    if args.history {
        if args.remote {
            return Err(FeedbackError::Invalid(
                "--history reads the catalog file; over gRPC, GetIncident and ListAnomalies show the current triage_state".into(),
            ));
        }
        let connection = open_catalog(&global.data_dir)?;
        let events = history(&connection, &id)?;
        if args.json {
            serde_json::to_writer(&mut out, &events)
                .map_err(|error| FeedbackError::Invalid(error.to_string()))?;
            writeln!(out).map_err(write_error)?;
        } else if events.is_empty() {
            writeln!(out, "{id}: no verdict yet (open)").map_err(write_error)?;
        } else {
            for event in &events {
                writeln!(
                    out,
                    "#{:<5} {}  {:<8} {:<24} by {}{}",
                    event.seq,
                    event.at.format("%Y-%m-%dT%H:%M:%SZ"),
                    event.subject_kind.as_str(),
                    event.state,
                    event.actor,
                    event
                        .reason
                        .as_deref()
                        .map(|reason| format!(": {reason}"))
                        .unwrap_or_default()
                )
                .map_err(write_error)?;
            }
        }
        return Ok(());
    }
    let Some(state) = args.state() else {
        return Err(FeedbackError::Invalid(
            "say what the verdict is: --ack, --true-positive, --benign --reason TEXT or --reopen"
                .into(),
        ));
    };
    let verdict = args.verdict(state, config.feedback.default_suppression_days)?;
    if args.remote {
        let response = remote_triage(args, &verdict)?;
        if args.json {
            let text = serde_json::json!({
                "event": response.event.as_ref().map(|event| serde_json::json!({
                    "seq": event.seq, "subject_kind": event.subject_kind, "subject_id": event.subject_id,
                    "state": event.state, "reason": event.reason, "actor": event.actor,
                })),
                "identity": response.identity,
                "suppressions": response.suppressions.iter().map(|s| serde_json::json!({
                    "id": s.id, "detector": s.detector, "identity_pattern": s.identity_pattern,
                    "reason": s.reason, "owner": s.owner,
                })).collect::<Vec<_>>(),
                "threshold_changes": response.threshold_changes.iter().map(|c| c.reason.clone()).collect::<Vec<_>>(),
                "held_back": response.held_back,
            });
            writeln!(out, "{text}").map_err(write_error)?;
        } else {
            let event = response.event.unwrap_or_default();
            writeln!(
                out,
                "{} {} ({}): {} by {} (#{})",
                event.subject_kind,
                event.subject_id,
                response.identity,
                event.state,
                event.actor,
                event.seq
            )
            .map_err(write_error)?;
            for suppression in &response.suppressions {
                writeln!(
                    out,
                    "  suppression {}: {} for {} ({}, owner {})",
                    suppression.id,
                    suppression.detector,
                    suppression.identity_pattern,
                    suppression.reason,
                    suppression.owner
                )
                .map_err(write_error)?;
            }
            for change in &response.threshold_changes {
                writeln!(out, "  {}", change.reason).map_err(write_error)?;
            }
            for note in &response.held_back {
                writeln!(out, "  held back: {note}").map_err(write_error)?;
            }
        }
        return Ok(());
    }
    let connection = open_catalog(&global.data_dir)?;
    let policy = ThresholdPolicy::load(&config.feedback, &args.models_dir)?;
    let outcome = record_verdict(&connection, &verdict, &policy, &SystemClock)?;
    print_outcome(&mut out, &outcome, args.json).map_err(write_error)?;
    Ok(())
}

fn suppression_status(
    suppression: &Suppression,
    now: chrono::DateTime<chrono::Utc>,
) -> &'static str {
    if suppression.retired_at.is_some() {
        "retired"
    } else if suppression.is_active(now) {
        "active"
    } else if now >= suppression.expires_at {
        "expired"
    } else {
        "pending"
    }
}

fn print_outcome(out: &mut impl Write, outcome: &TriageOutcome, json: bool) -> std::io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, outcome).map_err(std::io::Error::other)?;
        return writeln!(out);
    }
    let event = &outcome.event;
    writeln!(
        out,
        "{} {} ({}): {} by {} at {} (#{})",
        event.subject_kind.as_str(),
        event.subject_id,
        outcome.identity,
        event.state,
        event.actor,
        event.at.format("%Y-%m-%dT%H:%M:%SZ"),
        event.seq
    )?;
    for suppression in &outcome.suppressions {
        writeln!(out, "  suppression {}", suppression.describe())?;
    }
    for change in &outcome.threshold_changes {
        writeln!(out, "  {}", change.reason)?;
    }
    for note in &outcome.held_back {
        writeln!(out, "  held back: {note}")?;
    }
    Ok(())
}

fn remote_triage(args: &TriageArgs, verdict: &Verdict) -> Result<proto::TriageIncidentResponse> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| FeedbackError::Invalid(format!("starting the async runtime: {error}")))?;
    let state = super::api::state_to_proto(verdict.state);
    let suppress_days = verdict
        .suppress_for
        .map(|duration| duration.num_days().max(1) as u32)
        .unwrap_or(0);
    if verdict
        .suppress_for
        .is_some_and(|duration| duration.num_hours() % 24 != 0)
    {
        return Err(FeedbackError::Invalid(
            "over gRPC a suppression lasts whole days (--suppress 30d)".into(),
        ));
    }
    let request = proto::TriageIncidentRequest {
        id: verdict.subject_id.clone(),
        state: state as i32,
        reason: verdict.reason.clone().unwrap_or_default(),
        actor: verdict.actor.clone(),
        suppress_days,
        suppress_namespace: verdict.suppress_namespace.clone().unwrap_or_default(),
        suppress_source: verdict.suppress_source.clone().unwrap_or_default(),
    };
    runtime.block_on(async {
        let mut client = connect(&args.client).await?;
        let response = client
            .triage_incident(request)
            .await
            .map_err(crate::api::ApiError::from)?;
        Ok(response.into_inner())
    })
}

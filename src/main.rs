//! The `auditlens` command line. Nothing but argument parsing and dispatch:
//! every subcommand calls into the library.

use anyhow::{Context, Result};
use auditlens::cli::GlobalOptions;
use auditlens::config::Config;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "auditlens",
    version,
    about = "Kubernetes audit-log daemon: exactly-once history, anomaly detection, RBAC guardrails"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start here: a simulated cluster with attacks, the daemon over it, incidents as they appear, a report.
    Demo(auditlens::demo::DemoArgs),
    /// Run the daemon: tail the audit folder, store, detect, serve.
    Serve(auditlens::daemon::ServeArgs),
    /// Backfill audit log files or folders (plain or .gz), exactly once.
    Ingest(auditlens::ingest::IngestArgs),
    /// Run one read-only SQL query over the stored events (works while the daemon runs).
    Sql(SqlArgs),
    /// Write a realistic cluster's audit log with labeled attacks (see docs/SIMULATOR.md).
    Simulate(auditlens::simulate::SimulateArgs),
    /// Run rules and first-seen novelty over stored history; print one anomaly per line.
    Detect(auditlens::detect::DetectArgs),
    /// Score detection against a labels file: recall per scenario, false incidents per day.
    Eval(auditlens::detect::EvalArgs),
    /// RBAC: who-can, effective permissions, risk audit, least-privilege recommendations, snapshots.
    Rbac(auditlens::rbac::RbacArgs),
    /// The RBAC admission webhook (and `guard export` for ValidatingAdmissionPolicy YAML).
    Guard(auditlens::rbac::GuardArgs),
    /// Build the nightly report of one UTC day (JSON, Markdown or self-contained HTML).
    Report(auditlens::report::ReportArgs),
    /// Run one read-only SQL statement on a server (`auditlens query "SELECT ..."`).
    Query(auditlens::api::cli::QueryArgs),
    /// List anomalies from a server; --follow streams new ones.
    Anomalies(auditlens::api::cli::AnomaliesArgs),
    /// What an identity normally does.
    Profile(auditlens::api::cli::ProfileArgs),
    /// Server health and ingest progress.
    Status(auditlens::api::cli::StatusArgs),
    /// Run a canned investigation (sql/investigations/*.sql); --list shows them.
    Investigate(auditlens::api::cli::InvestigateArgs),
    /// Interactive SQL session over gRPC.
    Shell(auditlens::api::cli::ShellArgs),
    /// Serve only the gRPC API over a data folder (development and tests).
    #[command(hide = true)]
    ApiServe(auditlens::api::cli::ApiServeArgs),
    /// Train the per-identity behaviour models on stored history.
    Train(auditlens::model::TrainArgs),
    /// Give a verdict on an incident: --ack, --true-positive, --benign --reason TEXT [--suppress 30d], --reopen.
    Triage(auditlens::feedback::TriageArgs),
}

#[derive(clap::Args)]
struct SqlArgs {
    /// The statement, e.g. "SELECT verb, count(*) FROM events GROUP BY ALL".
    statement: String,
    #[arg(long, value_enum, default_value = "table")]
    format: auditlens::store::local_query::OutputFormat,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo's screen is its output: only errors unless asked (-v).
    let mut logging = cli.global.clone();
    if matches!(cli.command, Command::Demo(_)) && logging.verbose == 0 {
        logging.quiet = true;
    }
    auditlens::cli::init_logging(&logging);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            // rbac: 2 for usage errors, 3 for `rbac audit --fail-on` findings.
            let code = error
                .downcast_ref::<auditlens::rbac::CommandError>()
                .map_or(1, auditlens::rbac::CommandError::exit_code);
            ExitCode::from(code)
        }
    }
}

fn load_config(global: &GlobalOptions) -> Result<Config> {
    let mut config = Config::load(global.config.as_deref())?;
    if let Some(cluster) = &global.cluster {
        config.cluster = cluster.clone();
    }
    config.validate()?;
    Ok(config)
}

fn run(cli: Cli) -> Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Serve(args) => {
            let config = load_config(&global)?;
            auditlens::daemon::run_serve(&args, &global, config)?;
        }
        Command::Ingest(args) => {
            let config = load_config(&global)?;
            let summary = auditlens::ingest::run_ingest(&args, &global, &config)?;
            println!(
                "ingested {} file(s) ({} already stored): {} lines, {} events stored, {} quarantined, {} parts, {:.2}s ({:.0} lines/s)",
                summary.files_read,
                summary.already_stored,
                summary.lines,
                summary.events_stored,
                summary.quarantined,
                summary.parts_written,
                summary.seconds,
                summary.lines as f64 / summary.seconds.max(1e-9)
            );
            for path in &summary.unreadable {
                eprintln!("warning: could not read {}", path.display());
            }
            for (path, error) in &summary.damaged {
                eprintln!(
                    "warning: {} is damaged ({error}); stored what it held",
                    path.display()
                );
            }
            if summary.quarantined > 0 {
                eprintln!(
                    "note: {} line(s) quarantined in {}",
                    summary.quarantined,
                    global.data_dir.join("quarantine").display()
                );
            }
        }
        Command::Sql(args) => {
            let batches =
                auditlens::store::local_query::run_query(&global.data_dir, &args.statement)
                    .context("query failed")?;
            print!(
                "{}",
                auditlens::store::local_query::render(&batches, args.format)?
            );
            if args.format == auditlens::store::local_query::OutputFormat::Table {
                println!();
            }
        }
        Command::Simulate(args) => {
            auditlens::simulate::run(args, &global)?;
        }
        Command::Detect(args) => {
            if args.store && global.config.is_some() {
                // The config file's [[feedback.suppressions]] apply to what is stored.
                let config = load_config(&global)?;
                auditlens::feedback::suppression::sync_config_suppressions_in(
                    &global.data_dir,
                    &config.feedback,
                )?;
            }
            auditlens::detect::run_detect(&args, &global)?
        }
        Command::Eval(args) => auditlens::detect::run_eval(&args, &global)?,
        Command::Rbac(args) => auditlens::rbac::run(args, &global)?,
        Command::Guard(args) => auditlens::rbac::run_guard(args, &global)?,
        Command::Report(args) => {
            let config = load_config(&global)?;
            auditlens::report::run(&args, &global, &config).context("report failed")?;
        }
        Command::Query(args) => auditlens::api::cli::run_query_command(args, &global)?,
        Command::Anomalies(args) => auditlens::api::cli::run_anomalies(args, &global)?,
        Command::Profile(args) => auditlens::api::cli::run_profile(args, &global)?,
        Command::Status(args) => auditlens::api::cli::run_status(args, &global)?,
        Command::Investigate(args) => auditlens::api::cli::run_investigate(args, &global)?,
        Command::Shell(args) => auditlens::api::cli::run_shell(args, &global)?,
        Command::ApiServe(args) => auditlens::api::cli::run_api_serve(args, &global)?,
        Command::Demo(args) => auditlens::demo::run(&args, &global)?,
        Command::Train(args) => auditlens::model::run(args, &global)?,
        Command::Triage(args) => {
            let config = load_config(&global)?;
            auditlens::feedback::run_triage(&args, &global, &config)?;
        }
    }
    Ok(())
}

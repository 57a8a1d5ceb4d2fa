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
    /// Run the daemon: tail the audit folder, store, detect, serve.
    Serve(auditlens::daemon::ServeArgs),
    /// Backfill audit log files or folders (plain or .gz), exactly once.
    Ingest(auditlens::ingest::IngestArgs),
    /// Run one read-only SQL query over the stored events (works while the daemon runs).
    Sql(SqlArgs),
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
    auditlens::cli::init_logging(&cli.global);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
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
    }
    Ok(())
}

//! The `auditlens` command line. Nothing but argument parsing and dispatch:
//! every subcommand calls into the library.

use anyhow::Result;
use auditlens::cli::GlobalOptions;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "auditlens", version, about = "Kubernetes audit-log daemon: exactly-once history, anomaly detection, RBAC guardrails")]
struct Cli {
    #[command(flatten)]
    global: GlobalOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Query(args) => Ok(auditlens::api::cli::run_query_command(args, &cli.global)?),
        Command::Anomalies(args) => Ok(auditlens::api::cli::run_anomalies(args, &cli.global)?),
        Command::Profile(args) => Ok(auditlens::api::cli::run_profile(args, &cli.global)?),
        Command::Status(args) => Ok(auditlens::api::cli::run_status(args, &cli.global)?),
        Command::Investigate(args) => Ok(auditlens::api::cli::run_investigate(args, &cli.global)?),
        Command::Shell(args) => Ok(auditlens::api::cli::run_shell(args, &cli.global)?),
        Command::ApiServe(args) => Ok(auditlens::api::cli::run_api_serve(args, &cli.global)?),
    }
}

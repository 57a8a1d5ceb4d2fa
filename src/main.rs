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
    /// Write a realistic cluster's audit log with labeled attacks (see docs/SIMULATOR.md).
    Simulate(auditlens::simulate::SimulateArgs),
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
        Command::Simulate(args) => {
            auditlens::simulate::run(args, &cli.global)?;
        }
    }
    Ok(())
}

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
    /// RBAC: who-can, effective permissions, risk audit, least-privilege recommendations, snapshots.
    Rbac(auditlens::rbac::RbacArgs),
    /// The RBAC admission webhook (and `guard export` for ValidatingAdmissionPolicy YAML).
    Guard(auditlens::rbac::GuardArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    auditlens::cli::init_logging(&cli.global);
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

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Rbac(args) => auditlens::rbac::run(args, &cli.global)?,
        Command::Guard(args) => auditlens::rbac::run_guard(args, &cli.global)?,
    }
    Ok(())
}

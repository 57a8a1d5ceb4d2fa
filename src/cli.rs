//! Options every subcommand shares, and logging set-up. The subcommands' own
//! argument structs live beside the code they drive (`ingest::IngestArgs`,
//! `simulate::SimulateArgs`, ...), so `main.rs` stays a dispatcher.

use clap::Args;
use std::path::PathBuf;

/// `--data-dir`, `--config`, `--cluster`, `-v`/`-q`: accepted by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// Where auditlens keeps its Parquet events, catalog, models and reports.
    #[arg(
        long,
        global = true,
        env = "AUDITLENS_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,
    /// A TOML config file (see deploy/auditlens.example.toml).
    #[arg(long, global = true, env = "AUDITLENS_CONFIG")]
    pub config: Option<PathBuf>,
    /// The cluster name recorded with every event (the `cluster=` partition).
    #[arg(long, global = true, env = "AUDITLENS_CLUSTER")]
    pub cluster: Option<String>,
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Logs go to stderr, so stdout stays for results (tables, JSON lines).
pub fn init_logging(options: &GlobalOptions) {
    let level = if options.quiet {
        "error"
    } else {
        match options.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUDITLENS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("auditlens={level},warn")));
    // Colour codes only for a person at a terminal: journald, log files and
    // tests read plain text.
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

//! The API's subcommands: their clap arguments and entry points, so
//! `main.rs` only dispatches.
//!
//! Client commands (`query`, `anomalies`, `profile`, `status`, `investigate`,
//! `shell`) talk to a running server; `api-serve` starts the API alone on a
//! data folder (the daemon's `auditlens serve` calls [`super::serve`] itself
//! and can flatten [`ServerArgs`] into its own arguments).

use super::auth::BearerToken;
use super::catalog::open_catalog;
use super::client::{ClientOptions, connect, run_query};
use super::investigations;
use super::output::{OutputFormat, anomaly_line, print_result, timestamp_text, truncation_note};
use super::server::{ApiConfig, ApiState, TlsFiles, bind};
use super::shell::{self, Session};
use super::status::IngestStatus;
use super::{ApiError, proto};
use crate::cli::GlobalOptions;
use crate::store::query::QueryLimits;
use clap::Args;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| ApiError::Client(format!("starting the async runtime: {error}")))
}

fn parse_parameter(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.trim().to_string(), value.to_string()))
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))
}

/// A time given on the command line: RFC 3339 (`2026-11-27T09:00:00Z`), a
/// date, or a duration back from now (`90m`, `24h`, `7d`).
pub fn parse_time(text: &str) -> Result<prost_types::Timestamp, String> {
    let to_timestamp = |time: chrono::DateTime<chrono::Utc>| prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    };
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(to_timestamp(time.with_timezone(&chrono::Utc)));
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(to_timestamp(
            date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
        ));
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let amount: i64 = number
        .parse()
        .map_err(|_| format!("not a time or duration: {text:?}"))?;
    let seconds = match unit {
        "s" => amount,
        "m" => amount * 60,
        "h" => amount * 3600,
        "d" => amount * 86_400,
        _ => {
            return Err(format!(
                "not a time or duration: {text:?} (use RFC 3339, YYYY-MM-DD or 90m/24h/7d)"
            ));
        }
    };
    Ok(to_timestamp(
        chrono::Utc::now() - chrono::Duration::seconds(seconds),
    ))
}

// ------------------------------------------------------------------ query

/// `auditlens query "SQL"`: one read-only statement on the server.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL statement (one; SELECT only).
    pub sql: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// A named parameter: `--param identity=alice` binds `$identity`.
    #[arg(long = "param", value_parser = parse_parameter)]
    pub parameters: Vec<(String, String)>,
    /// At most this many rows (the server may allow fewer).
    #[arg(long)]
    pub max_rows: Option<u64>,
    /// Time limit in seconds (the server may allow less).
    #[arg(long)]
    pub timeout: Option<u64>,
    #[command(flatten)]
    pub client: ClientOptions,
}

async fn query_and_print(
    options: &ClientOptions,
    sql: String,
    parameters: HashMap<String, String>,
    format: OutputFormat,
    max_rows: Option<u64>,
    timeout_seconds: Option<u64>,
) -> Result<()> {
    let mut client = connect(options).await?;
    let request = proto::QueryRequest {
        sql,
        parameters,
        format: format.result_format() as i32,
        max_rows: max_rows.unwrap_or(0),
        timeout_ms: timeout_seconds.map(|seconds| seconds * 1000).unwrap_or(0),
        ..proto::QueryRequest::default()
    };
    let result = run_query(&mut client, request).await?;
    print_result(&result, format, &mut std::io::stdout().lock())?;
    if let Some(note) = truncation_note(&result.summary) {
        eprintln!("{note}");
    }
    Ok(())
}

pub fn run_query_command(args: QueryArgs, _global: &GlobalOptions) -> Result<()> {
    runtime()?.block_on(query_and_print(
        &args.client,
        args.sql,
        args.parameters.into_iter().collect(),
        args.format,
        args.max_rows,
        args.timeout,
    ))
}

// ------------------------------------------------------------------ anomalies

/// `auditlens anomalies`: list (and follow) anomalies.
#[derive(Debug, Args)]
pub struct AnomaliesArgs {
    /// Keep printing new anomalies as they are stored.
    #[arg(long)]
    pub follow: bool,
    /// Only anomalies since: RFC 3339, YYYY-MM-DD, or 90m/24h/7d ago.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<prost_types::Timestamp>,
    #[arg(long)]
    pub identity: Option<String>,
    /// Minimum severity: info, low, medium, high, critical.
    #[arg(long)]
    pub severity: Option<String>,
    #[arg(long)]
    pub detector: Option<String>,
    /// At most this many (newest first).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientOptions,
}

fn anomaly_json(anomaly: &proto::Anomaly) -> String {
    serde_json::json!({
        "seq": anomaly.seq,
        "id": anomaly.id,
        "detector": anomaly.detector,
        "kind": anomaly.kind,
        "identity": anomaly.identity,
        "cluster": anomaly.cluster,
        "window_start": timestamp_text(anomaly.window_start.as_ref()),
        "window_end": timestamp_text(anomaly.window_end.as_ref()),
        "severity": anomaly.severity,
        "score": anomaly.score,
        "title": anomaly.title,
        "reasons": anomaly.reasons,
        "evidence_audit_ids": anomaly.evidence_audit_ids,
        "incident_id": anomaly.incident_id,
    })
    .to_string()
}

pub fn run_anomalies(args: AnomaliesArgs, _global: &GlobalOptions) -> Result<()> {
    runtime()?.block_on(async move {
        let mut client = connect(&args.client).await?;
        let filter = proto::AnomalyFilter {
            since: args.since,
            identity: args.identity.clone().unwrap_or_default(),
            min_severity: args.severity.clone().unwrap_or_default(),
            detector: args.detector.clone().unwrap_or_default(),
            ..proto::AnomalyFilter::default()
        };
        let response = client
            .list_anomalies(proto::ListAnomaliesRequest {
                filter: Some(filter.clone()),
                page_size: args.limit.clamp(1, 1000),
                page_token: String::new(),
            })
            .await?
            .into_inner();
        let print = |anomaly: &proto::Anomaly| {
            if args.json {
                println!("{}", anomaly_json(anomaly))
            } else {
                println!("{}", anomaly_line(anomaly))
            }
        };
        // Oldest first on screen, like a log.
        for anomaly in response.anomalies.iter().rev() {
            print(anomaly);
        }
        if args.follow {
            let after_seq = response
                .anomalies
                .iter()
                .map(|anomaly| anomaly.seq)
                .max()
                .unwrap_or(0);
            let mut stream = client
                .watch_anomalies(proto::WatchAnomaliesRequest {
                    filter: Some(filter),
                    after_seq,
                })
                .await?
                .into_inner();
            while let Some(message) = stream.message().await? {
                if let Some(anomaly) = message.anomaly {
                    print(&anomaly);
                }
            }
        }
        Ok(())
    })
}

// ------------------------------------------------------------------ profile

/// `auditlens profile IDENTITY`: what an identity normally does.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    pub identity: String,
    #[arg(long, value_parser = parse_time)]
    pub since: Option<prost_types::Timestamp>,
    /// Top entries per list.
    #[arg(long, default_value_t = 10)]
    pub top: u32,
    #[command(flatten)]
    pub client: ClientOptions,
}

pub fn run_profile(args: ProfileArgs, _global: &GlobalOptions) -> Result<()> {
    runtime()?.block_on(async move {
        let mut client = connect(&args.client).await?;
        let profile = client
            .get_identity_profile(proto::GetIdentityProfileRequest {
                identity: args.identity.clone(),
                since: args.since,
                until: None,
                top: args.top,
            })
            .await?
            .into_inner();
        println!("identity     {}", profile.identity);
        println!(
            "kind         {}",
            if profile.identity_kind.is_empty() {
                "-"
            } else {
                &profile.identity_kind
            }
        );
        println!(
            "requests     {} ({} denied)",
            profile.requests, profile.denied_requests
        );
        println!(
            "first seen   {}",
            timestamp_text(profile.first_seen.as_ref())
        );
        println!(
            "last seen    {}",
            timestamp_text(profile.last_seen.as_ref())
        );
        println!(
            "archetype    {}",
            if profile.archetype.is_empty() {
                "- (no model yet)"
            } else {
                &profile.archetype
            }
        );
        for (title, counts) in [
            ("namespaces", &profile.namespaces),
            ("verbs", &profile.verbs),
            ("resources", &profile.resources),
            ("source IPs", &profile.source_ips),
            ("user agents", &profile.user_agents),
        ] {
            let listed: Vec<String> = counts
                .iter()
                .map(|count| format!("{} ({})", count.value, count.count))
                .collect();
            println!(
                "{title:<12} {}",
                if listed.is_empty() {
                    "-".to_string()
                } else {
                    listed.join(", ")
                }
            );
        }
        let hours: Vec<String> = profile
            .active_hours
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(hour, count)| format!("{hour:02}h:{count}"))
            .collect();
        println!(
            "active hours {}",
            if hours.is_empty() {
                "-".to_string()
            } else {
                hours.join(" ")
            }
        );
        Ok(())
    })
}

// ------------------------------------------------------------------ status

/// `auditlens status`: server health and ingest progress.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientOptions,
}

pub fn run_status(args: StatusArgs, _global: &GlobalOptions) -> Result<()> {
    runtime()?.block_on(async move {
        let channel = super::client::channel(&args.client).await?;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let serving = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: super::SERVICE_NAME.into(),
            })
            .await
            .map(|response| format!("{:?}", response.into_inner().status()))
            .unwrap_or_else(|status| format!("unknown ({})", status.message()));
        let mut client = connect(&args.client).await?;
        let status = client
            .get_ingest_status(proto::GetIngestStatusRequest {})
            .await?
            .into_inner();
        println!("server         {} ({serving})", args.client.server);
        println!("catalog ready  {}", status.catalog_ready);
        println!("events stored  {}", status.events_stored);
        println!(
            "lag            {} bytes, {:.1} s",
            status.lag_bytes, status.lag_seconds
        );
        println!("quarantined    {} lines", status.quarantined_lines);
        println!(
            "last commit    {}",
            timestamp_text(status.last_commit.as_ref())
        );
        for file in &status.files {
            println!(
                "  {}  offset {} of {}  lag {} bytes {:.1} s",
                file.path, file.committed_offset, file.size_bytes, file.lag_bytes, file.lag_seconds
            );
        }
        Ok(())
    })
}

// ------------------------------------------------------------------ investigate

/// `auditlens investigate NAME --param k=v` / `--list`.
#[derive(Debug, Args)]
pub struct InvestigateArgs {
    /// The investigation (see --list).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// List the investigations and their parameters.
    #[arg(long)]
    pub list: bool,
    #[arg(long = "param", value_parser = parse_parameter)]
    pub parameters: Vec<(String, String)>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Print the SQL instead of running it.
    #[arg(long)]
    pub show_sql: bool,
    #[command(flatten)]
    pub client: ClientOptions,
}

pub fn run_investigate(args: InvestigateArgs, _global: &GlobalOptions) -> Result<()> {
    if args.list {
        for investigation in investigations::all() {
            println!("{}  {}", investigation.name, investigation.description);
            for parameter in &investigation.parameters {
                match &parameter.default {
                    Some(default) => {
                        println!(
                            "    --param {}=...  {} (default {default})",
                            parameter.name, parameter.description
                        )
                    }
                    None => println!(
                        "    --param {}=...  {} (required)",
                        parameter.name, parameter.description
                    ),
                }
            }
        }
        return Ok(());
    }
    let name = args.name.unwrap_or_default();
    let investigation = investigations::find(&name)?;
    if args.show_sql {
        print!("{}", investigation.sql);
        return Ok(());
    }
    let given: BTreeMap<String, String> = args.parameters.into_iter().collect();
    let bound = investigation.bind(&given)?;
    runtime()?.block_on(query_and_print(
        &args.client,
        investigation.sql,
        bound.into_iter().collect(),
        args.format,
        None,
        None,
    ))
}

// ------------------------------------------------------------------ shell

/// `auditlens shell`: an interactive SQL session over gRPC.
#[derive(Debug, Args)]
pub struct ShellArgs {
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub client: ClientOptions,
}

pub fn run_shell(args: ShellArgs, _global: &GlobalOptions) -> Result<()> {
    runtime()?.block_on(async move {
        let client = connect(&args.client).await?;
        shell::run(
            client,
            Session {
                format: args.format,
                timing: false,
            },
        )
        .await
    })
}

// ------------------------------------------------------------------ server

/// The API server's options; `auditlens serve` can flatten these.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address for gRPC; port 0 picks a free port (printed at start).
    #[arg(long, env = "AUDITLENS_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
    pub grpc_listen: SocketAddr,
    /// File holding the bearer token clients must send (else AUDITLENS_API_TOKEN; none = no auth).
    #[arg(long = "api-token-file")]
    pub api_token_file: Option<PathBuf>,
    /// PEM server certificate (enables TLS, with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA: clients must present a certificate it signed (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Allow a non-loopback --grpc-listen without a token.
    #[arg(long)]
    pub allow_insecure_remote: bool,
    /// Most rows one query returns.
    #[arg(long, default_value_t = QueryLimits::default().max_rows)]
    pub query_max_rows: u64,
    /// Most result bytes one query returns.
    #[arg(long, default_value_t = QueryLimits::default().max_bytes)]
    pub query_max_bytes: u64,
    /// Query time limit, milliseconds.
    #[arg(long, default_value_t = QueryLimits::default().timeout.as_millis() as u64)]
    pub query_timeout_ms: u64,
    /// DuckDB memory limit per query.
    #[arg(long, default_value_t = QueryLimits::default().memory_limit)]
    pub query_memory_limit: String,
    /// DuckDB threads per query.
    #[arg(long, default_value_t = QueryLimits::default().threads)]
    pub query_threads: u32,
    /// Queries running at once.
    #[arg(long, default_value_t = ApiConfig::default().max_concurrent_queries)]
    pub max_concurrent_queries: usize,
    /// Queries waiting for a slot before RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = ApiConfig::default().max_queued_queries)]
    pub max_queued_queries: usize,
}

impl ServerArgs {
    pub fn to_config(&self) -> Result<ApiConfig> {
        let token = BearerToken::from_file_or_env(self.api_token_file.as_deref())?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            _ => None,
        };
        Ok(ApiConfig {
            listen: self.grpc_listen,
            token,
            tls,
            allow_insecure_remote: self.allow_insecure_remote,
            query_limits: QueryLimits {
                max_rows: self.query_max_rows,
                max_bytes: self.query_max_bytes,
                timeout: Duration::from_millis(self.query_timeout_ms),
                memory_limit: self.query_memory_limit.clone(),
                threads: self.query_threads,
                ..QueryLimits::default()
            },
            max_concurrent_queries: self.max_concurrent_queries,
            max_queued_queries: self.max_queued_queries,
            ..ApiConfig::default()
        })
    }
}

/// `auditlens api-serve`: the API alone over a data folder (development and
/// tests; production runs it inside `auditlens serve`).
#[derive(Debug, Args)]
pub struct ApiServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The line `api-serve` prints on stdout once bound, for scripts and tests:
/// `{"event":"grpc_listening","address":"127.0.0.1:PORT"}`, always in that
/// order. Written out rather than built as a JSON map: a map's key order
/// depends on whether some dependency turned on serde_json's
/// `preserve_order` (it differs between `cargo build` and `cargo test`
/// builds), and scripts match the line's start. A socket address has no
/// character JSON would escape.
pub fn listening_line(address: SocketAddr) -> String {
    format!("{{\"event\":\"grpc_listening\",\"address\":\"{address}\"}}")
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

pub fn run_api_serve(args: ApiServeArgs, global: &GlobalOptions) -> Result<()> {
    let config = args.server.to_config()?;
    let data_dir = global.data_dir.clone();
    std::fs::create_dir_all(data_dir.join("events")).map_err(|source| ApiError::Io {
        path: data_dir.join("events"),
        source,
    })?;
    runtime()?.block_on(async move {
        let bound = bind(config).await?;
        println!("{}", listening_line(bound.local_addr()));
        use std::io::Write;
        let _ = std::io::stdout().flush();

        let (mut state, ready) = ApiState::new(&data_dir);
        state.ingest_status = Arc::new(std::sync::RwLock::new(IngestStatus::from_data_dir(
            &data_dir,
        )));
        // The catalog opens read-only: api-serve never writes the data folder.
        let catalog_path = data_dir.join("catalog.duckdb");
        let catalog = tokio::task::spawn_blocking(move || -> Result<duckdb::Connection> {
            if !catalog_path.exists() {
                drop(open_catalog(&catalog_path)?);
            }
            let config = duckdb::Config::default()
                .access_mode(duckdb::AccessMode::ReadOnly)
                .map_err(|error| ApiError::Catalog(error.to_string()))?;
            duckdb::Connection::open_with_flags(&catalog_path, config).map_err(|error| {
                ApiError::Catalog(format!("opening {}: {error}", catalog_path.display()))
            })
        })
        .await
        .map_err(|error| ApiError::Catalog(format!("opening the catalog: {error}")))??;
        state.catalog = Some(Arc::new(Mutex::new(catalog)));
        let _ = ready.send(true);
        bound.serve(state, shutdown_signal()).await
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_listening_line_starts_with_its_event_and_is_json() {
        let line = super::listening_line("[::1]:50051".parse().expect("an address"));
        assert!(line.starts_with("{\"event\":\"grpc_listening\""), "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["address"], "[::1]:50051");
    }
}

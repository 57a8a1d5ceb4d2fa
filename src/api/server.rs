//! Listening: the address rule, TLS, health, reflection, and the services put
//! together.
//!
//! A non-loopback address without a token is refused at start (unless
//! `allow_insecure_remote`): an open SQL endpoint over a cluster's audit
//! history is a finding of its own. The health service says NOT_SERVING until
//! the daemon reports the catalog ready, then SERVING; it is the only service
//! reachable without the token, so probes work.

use super::auth::{Authenticator, BearerToken};
use super::catalog::SharedCatalog;
use super::proto::audit_lens_server::AuditLensServer;
use super::service::AuditLensService;
use super::status::SharedIngestStatus;
use super::{ApiError, SERVICE_NAME, proto};
use crate::detect::Anomaly;
use crate::store::query::{QueryLimits, QueryRunner};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

/// PEM files for TLS; with `client_ca`, clients must present a certificate
/// signed by it (mutual TLS).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// How the API listens and what it allows.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `127.0.0.1:50051` by default; port 0 picks a free port.
    pub listen: SocketAddr,
    pub token: Option<BearerToken>,
    pub tls: Option<TlsFiles>,
    /// Allow a non-loopback address without a token.
    pub allow_insecure_remote: bool,
    pub query_limits: QueryLimits,
    /// Queries running at once.
    pub max_concurrent_queries: usize,
    /// Queries waiting for a slot; beyond this a query gets RESOURCE_EXHAUSTED.
    pub max_queued_queries: usize,
    /// How often WatchAnomalies re-reads the catalog when no wake-up arrives.
    pub watch_poll_interval: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            token: None,
            tls: None,
            allow_insecure_remote: false,
            query_limits: QueryLimits::default(),
            max_concurrent_queries: 4,
            max_queued_queries: 64,
            watch_poll_interval: Duration::from_secs(1),
        }
    }
}

/// A model trainer the daemon may hand in; without one TrainModel answers
/// UNIMPLEMENTED.
pub trait ModelTrainer: Send + Sync {
    /// Trains the named spec now and returns the new version. Blocking.
    fn train(&self, model: &str) -> Result<proto::ModelInfo, String>;
}

/// What the API reads. Built by the daemon (or `auditlens api-serve`).
#[derive(Clone)]
pub struct ApiState {
    pub data_dir: PathBuf,
    /// The catalog with the `anomalies` and `incidents` tables; `None` until
    /// the daemon has one (those RPCs answer UNAVAILABLE meanwhile).
    pub catalog: Option<SharedCatalog>,
    /// Wakes WatchAnomalies when the detectors store a new anomaly. The
    /// catalog stays the truth (Watch re-reads it by `seq`), so a lagging
    /// receiver loses nothing.
    pub anomalies: broadcast::Sender<Anomaly>,
    pub ingest_status: SharedIngestStatus,
    /// Becomes true once the catalog is ready; health flips to SERVING then.
    pub ready: watch::Receiver<bool>,
    pub trainer: Option<Arc<dyn ModelTrainer>>,
    /// Threshold bounds and the clock for TriageIncident (`crate::feedback`).
    pub feedback: crate::feedback::FeedbackContext,
}

impl ApiState {
    /// A state for a data folder with no catalog yet, not ready, and the
    /// senders the caller keeps.
    pub fn new(data_dir: &Path) -> (ApiState, watch::Sender<bool>) {
        let (ready_sender, ready) = watch::channel(false);
        let (anomalies, _) = broadcast::channel(1024);
        (
            ApiState {
                data_dir: data_dir.to_path_buf(),
                catalog: None,
                anomalies,
                ingest_status: SharedIngestStatus::default(),
                ready,
                trainer: None,
                feedback: crate::feedback::FeedbackContext::default(),
            },
            ready_sender,
        )
    }
}

/// A server bound to its address, not yet serving.
pub struct BoundServer {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    config: ApiConfig,
}

fn is_loopback(address: &SocketAddr) -> bool {
    address.ip().is_loopback()
}

/// Binds the listening socket after checking the address rule. The bound
/// address (with the real port when 0 was asked) is logged and returned.
pub async fn bind(config: ApiConfig) -> Result<BoundServer, ApiError> {
    if !is_loopback(&config.listen) && config.token.is_none() && !config.allow_insecure_remote {
        return Err(ApiError::Config(format!(
            "refusing to listen on non-loopback address {} without a bearer token: set --token-file \
             (or AUDITLENS_API_TOKEN), or pass --allow-insecure-remote to accept the risk",
            config.listen
        )));
    }
    if !is_loopback(&config.listen) && config.tls.is_none() {
        tracing::warn!(address = %config.listen, "gRPC listens on a non-loopback address without TLS");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| {
            ApiError::Config(format!("cannot listen on {}: {error}", config.listen))
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|error| ApiError::Config(format!("reading the bound address: {error}")))?;
    tracing::info!(address = %local_addr, tls = config.tls.is_some(), auth = config.token.is_some(), "gRPC listening");
    Ok(BoundServer {
        listener,
        local_addr,
        config,
    })
}

fn read_pem(path: &Path) -> Result<Vec<u8>, ApiError> {
    std::fs::read(path).map_err(|source| ApiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn tls_config(files: &TlsFiles) -> Result<ServerTlsConfig, ApiError> {
    let identity = Identity::from_pem(read_pem(&files.cert)?, read_pem(&files.key)?);
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(client_ca) = &files.client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read_pem(client_ca)?));
    }
    Ok(tls)
}

impl BoundServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then drains in-flight calls.
    pub async fn serve(
        self,
        state: ApiState,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ApiError> {
        let config = self.config;
        let runner = QueryRunner::new(&state.data_dir, config.query_limits.clone())?;

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health_reporter
            .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
            .await;
        let mut ready = state.ready.clone();
        let health_task = tokio::spawn(async move {
            loop {
                let status = if *ready.borrow_and_update() {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                health_reporter.set_service_status("", status).await;
                health_reporter
                    .set_service_status(SERVICE_NAME, status)
                    .await;
                if ready.changed().await.is_err() {
                    break;
                }
            }
        });

        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection()
            .build_v1()
            .map_err(|error| ApiError::Config(format!("building reflection: {error}")))?;
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .map_err(|error| ApiError::Config(format!("building reflection: {error}")))?;

        let authenticator = Authenticator::new(config.token.clone());
        let (stopping_sender, stopping) = watch::channel(false);
        let service = AuditLensService::new(state, runner, &config, stopping);
        let audit_lens = AuditLensServer::new(service)
            .max_encoding_message_size(64 * 1024 * 1024)
            .max_decoding_message_size(16 * 1024 * 1024);

        let mut builder = Server::builder();
        if let Some(files) = &config.tls {
            builder = builder
                .tls_config(tls_config(files)?)
                .map_err(|error| ApiError::Config(format!("TLS configuration: {error}")))?;
        }
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(self.listener);
        let result = builder
            .add_service(health_service)
            .add_service(InterceptedService::new(
                reflection_v1,
                authenticator.clone(),
            ))
            .add_service(InterceptedService::new(
                reflection_v1alpha,
                authenticator.clone(),
            ))
            .add_service(InterceptedService::new(audit_lens, authenticator))
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                // End the never-ending streams so draining can finish.
                let _ = stopping_sender.send(true);
            })
            .await
            .map_err(|error| ApiError::Config(format!("gRPC server: {error}")));
        health_task.abort();
        tracing::info!("gRPC server stopped");
        result
    }
}

/// Binds and serves: the one call the daemon makes.
pub async fn serve(
    config: ApiConfig,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ApiError> {
    bind(config).await?.serve(state, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_a_remote_address_without_a_token() {
        let config = ApiConfig {
            listen: "0.0.0.0:0".parse().expect("address"),
            ..ApiConfig::default()
        };
        let error = bind(config).await.err().expect("refused");
        assert!(
            error.to_string().contains("--allow-insecure-remote"),
            "{error}"
        );
        let allowed = ApiConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            ..ApiConfig::default()
        };
        let bound = bind(allowed).await.expect("loopback is fine");
        assert_ne!(bound.local_addr().port(), 0);
    }
}

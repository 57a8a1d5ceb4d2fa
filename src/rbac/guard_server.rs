//! The guard's HTTPS server: TLS from PEM files (rustls with ring, HTTP/2 and
//! HTTP/1.1 by ALPN) and the routes `POST /validate`, `GET /healthz` and
//! `GET /metrics` around [`Guard::handle_review`].
//!
//! Design decision: the webhook's decisions live in [`super::guard`], which
//! knows nothing of networking; this file only carries bytes to and from it,
//! so the AdmissionReview handler can be fuzzed without a server stack.

use super::guard::Guard;
use super::{RbacError, Result};
use std::sync::Arc;

/// Loads a PEM certificate chain and private key into a rustls server config
/// (ring provider, HTTP/2 and HTTP/1.1 by ALPN).
pub fn tls_config_from_pem_files(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|error| RbacError::Tls(format!("{}: {error}", cert.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|error| RbacError::Tls(format!("{}: {error}", cert.display())))?;
    if certs.is_empty() {
        return Err(RbacError::Tls(format!(
            "{}: no certificate found",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|error| RbacError::Tls(format!("{}: {error}", key.display())))?;
    tls_config(certs, key)
}

pub fn tls_config(
    certs: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| RbacError::Tls(error.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|error| RbacError::Tls(error.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Largest accepted review body; RBAC objects are far smaller.
pub const MAX_REVIEW_BYTES: usize = 3 * 1024 * 1024;

/// The HTTP routes: `POST /validate`, `GET /healthz`, `GET /metrics`.
pub fn router(guard: Arc<Guard>) -> axum::Router {
    use axum::extract::{DefaultBodyLimit, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    async fn validate(
        State(guard): State<Arc<Guard>>,
        body: bytes::Bytes,
    ) -> axum::response::Response {
        // Pure CPU on a small object (tens of microseconds): fine on the async worker.
        match guard.handle_review(&body) {
            Ok(review) => axum::Json(review).into_response(),
            Err(error) => {
                tracing::warn!(%error, "guard: malformed review");
                (StatusCode::BAD_REQUEST, error.to_string()).into_response()
            }
        }
    }
    async fn metrics(State(guard): State<Arc<Guard>>) -> String {
        guard.metrics.render_prometheus()
    }
    axum::Router::new()
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(guard)
}

/// Serves HTTPS on `listener` until `shutdown` completes.
pub async fn serve(
    guard: Arc<Guard>,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = router(guard);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "guard: accept failed");
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let tls_stream = match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => tls_stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "guard: TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "guard: TLS handshake timed out");
                            return;
                        }
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                    if let Err(error) = builder.serve_connection(hyper_util::rt::TokioIo::new(tls_stream), service).await {
                        tracing::debug!(%peer, %error, "guard: connection ended with an error");
                    }
                });
            }
        }
    }
}

//! A small HTTP/1.1 POST client on hyper: plain TCP for `http://`, rustls
//! (ring, Mozilla roots from webpki-roots) for `https://`. One connection per
//! delivery: alerts are rare, and a fresh connection never reuses a socket a
//! sink half-closed during an outage.

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;

/// `sha256=<hex of HMAC-SHA256(secret, body)>`, the `X-Auditlens-Signature` value.
pub fn signature_header_value(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Sends JSON POSTs. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Result<HttpClient, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS set-up: {error}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(HttpClient {
            tls: Arc::new(tls),
            timeout,
        })
    }

    /// POSTs `body` to `url` with `headers`; returns the status code. The
    /// whole exchange is bounded by the client's timeout.
    pub async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<u16, String> {
        match tokio::time::timeout(self.timeout, self.post_unbounded(url, body, headers)).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        }
    }

    async fn post_unbounded(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<u16, String> {
        let uri: Uri = url.parse().map_err(|error| format!("bad url: {error}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => return Err(format!("unsupported scheme {other:?}")),
        };
        let host = uri
            .host()
            .ok_or("url has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|authority| authority.as_str().to_string())
            .unwrap_or_else(|| host.clone());
        let path = uri
            .path_and_query()
            .map(|path| path.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        let mut request = hyper::Request::post(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("auditlens/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(Full::new(bytes::Bytes::from(body)))
            .map_err(|error| format!("building request: {error}"))?;
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|error| format!("connect {host}:{port}: {error}"))?;
        if https {
            let server_name = rustls_pki_types::ServerName::try_from(host.clone())
                .map_err(|error| format!("server name {host}: {error}"))?;
            let stream = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(server_name, stream)
                .await
                .map_err(|error| format!("TLS with {host}: {error}"))?;
            send(TokioIo::new(stream), request).await
        } else {
            send(TokioIo::new(stream), request).await
        }
    }
}

async fn send<I>(io: I, request: hyper::Request<Full<bytes::Bytes>>) -> Result<u16, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|error| format!("HTTP handshake: {error}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("sending: {error}"))?;
        let status = response.status().as_u16();
        // Read (and drop) the response body so the exchange completes.
        let _ = response.into_body().collect().await;
        Ok(status)
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature_header_value(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

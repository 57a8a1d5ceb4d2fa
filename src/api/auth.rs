//! Bearer-token authentication for the gRPC services.
//!
//! The token comes from a file or the `AUDITLENS_API_TOKEN` variable and is
//! compared in constant time (`subtle`), so response timing says nothing about
//! how much of a guess was right. The token never reaches a log line: the
//! [`BearerToken`] type has no `Display` and its `Debug` prints a redaction.
//! The standard health service is left open so load balancers and probes can
//! use it; everything else (including reflection) needs the token when one
//! is set.

use super::ApiError;
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// The environment variable a token may come from (server and client).
pub const TOKEN_ENV: &str = "AUDITLENS_API_TOKEN";

/// A secret bearer token.
#[derive(Clone)]
pub struct BearerToken(Arc<str>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// A token from text; surrounding whitespace (a file's newline) is dropped.
    pub fn new(text: &str) -> Result<BearerToken, ApiError> {
        let token = text.trim();
        if token.is_empty() {
            return Err(ApiError::Config("the API token is empty".into()));
        }
        if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(ApiError::Config(
                "the API token must be printable ASCII without spaces".into(),
            ));
        }
        Ok(BearerToken(token.into()))
    }

    pub fn from_file(path: &Path) -> Result<BearerToken, ApiError> {
        let text = std::fs::read_to_string(path).map_err(|source| ApiError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        BearerToken::new(&text)
    }

    /// The token from `--token-file`, else from `AUDITLENS_API_TOKEN`, else none.
    pub fn from_file_or_env(path: Option<&Path>) -> Result<Option<BearerToken>, ApiError> {
        if let Some(path) = path {
            return BearerToken::from_file(path).map(Some);
        }
        match std::env::var(TOKEN_ENV) {
            Ok(text) if !text.trim().is_empty() => BearerToken::new(&text).map(Some),
            _ => Ok(None),
        }
    }

    /// Whether `presented` is this token, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    /// The `authorization` header value.
    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

/// How a caller proved who it is, recorded on the request for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerAuth {
    None,
    Bearer,
}

impl CallerAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            CallerAuth::None => "none",
            CallerAuth::Bearer => "bearer",
        }
    }
}

/// The tonic interceptor: checks `authorization: Bearer <token>` when a
/// token is configured.
#[derive(Clone, Debug)]
pub struct Authenticator {
    token: Option<BearerToken>,
}

impl Authenticator {
    pub fn new(token: Option<BearerToken>) -> Self {
        Authenticator { token }
    }

    pub fn check<T>(&self, mut request: Request<T>) -> Result<Request<T>, Status> {
        let Some(token) = &self.token else {
            request.extensions_mut().insert(CallerAuth::None);
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            });
        match presented {
            Some(presented) if token.matches(presented.trim()) => {
                request.extensions_mut().insert(CallerAuth::Bearer);
                Ok(request)
            }
            Some(_) => {
                tracing::warn!(caller = ?request.remote_addr(), "rejected a request with a wrong bearer token");
                Err(Status::unauthenticated("invalid bearer token"))
            }
            None => Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>` metadata",
            )),
        }
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_the_bearer_header() {
        let token = BearerToken::new("s3cret-token\n").expect("token");
        assert_eq!(format!("{token:?}"), "BearerToken(<redacted>)");
        let authenticator = Authenticator::new(Some(token.clone()));
        let mut good = Request::new(());
        good.metadata_mut().insert(
            "authorization",
            token.header_value().parse().expect("ascii"),
        );
        assert!(authenticator.check(good).is_ok());
        let mut bad = Request::new(());
        bad.metadata_mut().insert(
            "authorization",
            "Bearer s3cret-tokeN".parse().expect("ascii"),
        );
        assert_eq!(
            authenticator.check(bad).expect_err("wrong").code(),
            tonic::Code::Unauthenticated
        );
        assert!(authenticator.check(Request::new(())).is_err());
        assert!(Authenticator::new(None).check(Request::new(())).is_ok());
        assert!(BearerToken::new("  ").is_err());
    }
}

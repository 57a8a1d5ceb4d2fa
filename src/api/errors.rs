//! The one place errors become gRPC status codes (and client-side errors).
//!
//! Every handler returns `Result<_, ApiError>` or a [`QueryError`], and these
//! two `From` impls decide the code, so a reader checks the contract in the
//! proto's header against this file alone.

use crate::store::query::QueryError;
use tonic::{Code, Status};

/// What can go wrong in the API, on either side of the wire.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("not implemented: {0}")]
    Unimplemented(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot reach the server {server}: {message}")]
    Connect { server: String, message: String },
    #[error("{:?}: {}", .0.code(), .0.message())]
    Rpc(Status),
    #[error("{0}")]
    Client(String),
}

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        ApiError::Rpc(status)
    }
}

impl From<QueryError> for Status {
    fn from(error: QueryError) -> Status {
        let message = error.to_string();
        let code = match error {
            QueryError::Refused { .. } => Code::PermissionDenied,
            QueryError::Invalid(_) => Code::InvalidArgument,
            QueryError::TimedOut { .. } => Code::DeadlineExceeded,
            QueryError::TooManyQueries { .. } | QueryError::OutOfMemory(_) => {
                Code::ResourceExhausted
            }
            QueryError::Cancelled => Code::Cancelled,
            QueryError::Internal(_) => Code::Internal,
        };
        Status::new(code, message)
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        match error {
            ApiError::Query(query) => query.into(),
            ApiError::Rpc(status) => status,
            ApiError::InvalidArgument(message) => Status::invalid_argument(message),
            ApiError::NotFound(message) => Status::not_found(message),
            ApiError::Unimplemented(message) => Status::unimplemented(message),
            ApiError::Unavailable(message) => Status::unavailable(message),
            other @ (ApiError::Catalog(_)
            | ApiError::Io { .. }
            | ApiError::Config(_)
            | ApiError::Connect { .. }
            | ApiError::Client(_)) => Status::internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_query_error_has_its_code() {
        let cases = [
            (
                QueryError::Refused {
                    what: "COPY".into(),
                    reason: "read-only".into(),
                },
                Code::PermissionDenied,
            ),
            (
                QueryError::Invalid("Parser Error".into()),
                Code::InvalidArgument,
            ),
            (
                QueryError::TimedOut {
                    limit: Duration::from_secs(1),
                },
                Code::DeadlineExceeded,
            ),
            (
                QueryError::TooManyQueries { limit: 4 },
                Code::ResourceExhausted,
            ),
            (QueryError::OutOfMemory("x".into()), Code::ResourceExhausted),
        ];
        for (error, code) in cases {
            let status: Status = error.into();
            assert_eq!(status.code(), code);
        }
        let status: Status = ApiError::Unimplemented("rbac".into()).into();
        assert_eq!(status.code(), Code::Unimplemented);
    }
}

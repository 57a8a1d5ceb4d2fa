//! The RBAC snapshot loader, authorizer, risk checks, config sections and the
//! guard's AdmissionReview handler, from the main crate's files.
//!
//! The main crate's `src/rbac/mod.rs` is not included: its error type has
//! DuckDB and store variants. [`RbacError`] below stands in for it with the
//! variants these files use; a file that starts using another variant (or
//! DuckDB, or the guard's HTTPS server) stops compiling here, which is how
//! this crate notices the boundary moved.

use std::path::PathBuf;

#[path = "../../src/rbac/authorizer.rs"]
pub mod authorizer;
#[path = "../../src/rbac/checks.rs"]
pub mod checks;
#[path = "../../src/rbac/config.rs"]
pub mod config;
#[path = "../../src/rbac/guard.rs"]
pub mod guard;
#[path = "../../src/rbac/snapshot.rs"]
pub mod snapshot;

pub type Result<T, E = RbacError> = std::result::Result<T, E>;

/// The variants of the main crate's `RbacError` the included files use, with
/// the same messages.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error("{path}: object #{index} ({kind} {name:?}): {message}")]
    BadObject {
        path: PathBuf,
        index: usize,
        kind: String,
        name: String,
        message: String,
    },
    #[error("audit event {audit_id}: {message}")]
    BadEvent { audit_id: String, message: String },
    #[error("config: {0}")]
    Config(String),
    #[error("{0}")]
    Invalid(String),
}

//! RBAC guardrails: the snapshot of roles and bindings, the authorizer that
//! evaluates it exactly like the API server's RBAC authorizer, the risk audit
//! (every row of RBAC_RISKS.md as a check), least-privilege recommendations
//! from observed usage, and the admission webhook that blocks unsafe RBAC writes.
//!
//! The one design decision a reader must know: every question ("can X do Y?",
//! "is this grant risky?", "would this generated role allow that request?",
//! "does this admission request hit a Critical row?") goes through the same
//! rule matcher in [`authorizer`], so the risk checks, who-can, the recommender
//! and the webhook can never disagree about what a rule grants.
//!
//! Modules: [`snapshot`] (loading, audit-event updates), [`versions`]
//! (snapshot versions in the catalog),
//! [`authorizer`] (matching semantics, effective permissions, who-can),
//! [`checks`] (findings, severities, exceptions, table/JSON/SARIF output),
//! [`recommend`] (roles from the `requests` view), [`drift`] (new and removed
//! grants since last week, over-privilege per identity per day, for the
//! nightly report), [`guard`] (webhook and
//! ValidatingAdmissionPolicy export), [`guard_server`] (the webhook's HTTPS
//! server), [`config`] (the `[rbac]` and `[guard]`
//! config sections), [`synthetic`] (generated large snapshots for benchmarks),
//! [`cli`] (the `auditlens rbac` and `auditlens guard` commands).

pub mod authorizer;
pub mod checks;
pub mod cli;
pub mod config;
pub mod drift;
pub mod guard;
pub mod guard_server;
pub mod recommend;
pub mod snapshot;
pub mod synthetic;
pub mod versions;

pub use authorizer::{Authorizer, Decision, Grant, RequestAttributes, UserInfo, who_can};
pub use checks::{Finding, FindingSubject, Origin, audit_snapshot};
pub use cli::{CommandError, FindingsGate, GuardArgs, RbacArgs, run, run_guard};
pub use config::{GuardConfig, RbacConfig, RbacException};
pub use recommend::{RecommendOptions, RoleRecommendation, recommend};
pub use snapshot::{ApplyOutcome, Snapshot};
pub use versions::{
    SnapshotVersion, ensure_rbac_tables, list_snapshot_versions, load_latest_snapshot,
    load_snapshot_at, load_snapshot_version, save_snapshot,
};

use std::path::PathBuf;

pub type Result<T, E = RbacError> = std::result::Result<T, E>;

/// What can go wrong in the RBAC module. Each variant names the file, object,
/// statement or address it was about.
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
    #[error("{context}: {source}")]
    /// Boxed, like `Store`: it keeps the error small for every `Result`
    /// that carries it (clippy's `result_large_err`).
    DuckDb {
        context: String,
        #[source]
        source: Box<duckdb::Error>,
    },
    #[error("{context}: {source}")]
    Store {
        context: String,
        #[source]
        source: Box<crate::store::StoreError>,
    },
    #[error("config: {0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Invalid(String),
}

impl RbacError {
    pub(crate) fn duckdb(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> RbacError {
        let context = context.into();
        move |source| RbacError::DuckDb {
            context,
            source: Box::new(source),
        }
    }
}

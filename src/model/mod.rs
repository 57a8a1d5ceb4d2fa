//! Per-identity behaviour models: feature extraction, specs, training,
//! the model registry and scoring (DESIGN.md "Detection", layer 3).
//!
//! The flow is `sql/features.sql` (one feature row per cluster, identity and
//! window, computed by DuckDB straight from the Parquet events) → a spec from
//! `models/*.toml` picks the features, the scaling and the clustering
//! algorithm → training writes a versioned JSON artifact under
//! `data/models/<name>/<version>.json` → scoring measures how far a window
//! lies from the archetypes (cluster centres) its identity usually falls in.
//!
//! The one design decision a reader must know: an identity is judged against
//! *its own* usual archetypes and *its own* training ranges, never against a
//! global average. The clustering is shared by all identities of a spec (so a
//! human with little history still lands near some archetype), but the
//! per-identity membership learnt in training decides what "usual" means, and
//! the explanation quotes that identity's own ranges ("read 41 secrets; usual
//! 0-2"). Everything here is blocking (DuckDB, training): the daemon calls it
//! from blocking threads.

pub mod cli;
pub mod features;
pub mod kmeans;
pub mod registry;
pub mod schedule;
pub mod score;
pub mod spec;
pub mod train;

pub use cli::{TrainArgs, run};
pub use features::{FeatureRange, FeatureTable, WindowKey, compute_features};
pub use registry::{ModelArtifact, ModelRegistry, ensure_model_tables};
pub use score::{detect_range, score_closed_window, score_windows};
pub use spec::{ModelSpec, load_specs};
pub use train::{ExcludedWindow, TrainOptions, TrainedModel, train_all, train_model};

use std::path::PathBuf;

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// What can go wrong in the model layer. Each variant names the file, model
/// or statement it was about.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{context}: {source}")]
    DuckDb {
        context: String,
        #[source]
        source: duckdb::Error,
    },
    #[error("{context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A spec file that does not parse or does not make sense.
    #[error("model spec {path}: {message}")]
    InvalidSpec { path: PathBuf, message: String },
    /// A spec names a feature the feature query does not produce.
    #[error("model spec {path}: unknown feature {feature:?} (the feature query has: {available})")]
    UnknownFeature {
        path: PathBuf,
        feature: String,
        available: String,
    },
    /// A model artifact that cannot be used: corrupt, truncated or written by
    /// an older format.
    #[error("model artifact {path}: {message}")]
    BadArtifact { path: PathBuf, message: String },
    /// Too little data to train a model.
    #[error("model {model}: {message}")]
    NotEnoughData { model: String, message: String },
    /// The clustering itself failed (e.g. a singular covariance).
    #[error("model {model}: training failed: {message}")]
    Training { model: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl ModelError {
    pub(crate) fn duckdb(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> ModelError {
        let context = context.into();
        move |source| ModelError::DuckDb { context, source }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ModelError {
        let path = path.into();
        move |source| ModelError::Io { path, source }
    }
}

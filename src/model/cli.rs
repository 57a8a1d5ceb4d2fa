//! `auditlens train`: train the models of `models/*.toml` on stored history.

use super::features::{FeatureRange, feature_names, open_feature_session};
use super::registry::ensure_model_tables;
use super::spec::load_specs;
use super::train::{TrainOptions, models_dir, train_all};
use super::{ModelError, Result};
use crate::cli::GlobalOptions;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `auditlens train` (`--data-dir` is global).
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Train on history before this instant (RFC 3339, default now).
    #[arg(long)]
    pub until: Option<String>,
    /// Train only this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Also write the feature rows of the training range to this Parquet
    /// file (for inspection and the scikit-learn comparison in benches/).
    #[arg(long)]
    pub dump_features: Option<PathBuf>,
    /// Folder of model specs; the built-in specs when it does not exist.
    #[arg(long, env = "AUDITLENS_MODELS_DIR", default_value = "models")]
    pub models_dir: PathBuf,
}

pub fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| {
            ModelError::Invalid(format!("--until {text:?} is not an RFC 3339 time: {error}"))
        })
}

/// Runs `auditlens train`. Prints one line per trained model on stdout; a
/// model that cannot be trained is reported on stderr, and the command fails
/// when no model could be trained.
pub fn run(args: TrainArgs, global: &GlobalOptions) -> Result<()> {
    let data_dir = &global.data_dir;
    let until = args.until.as_deref().map(parse_time).transpose()?;
    let session = open_feature_session(data_dir)?;
    let available = feature_names(&session)?;
    let specs = load_specs(&args.models_dir, &available)?;
    let mut options = TrainOptions {
        until,
        only_model: args.model.clone(),
        excluded_windows: Vec::new(),
    };

    if let Some(path) = &args.dump_features {
        let spec = specs
            .iter()
            .find(|spec| args.model.as_ref().is_none_or(|name| &spec.name == name))
            .ok_or_else(|| {
                ModelError::Invalid("no model spec to take the feature range from".into())
            })?;
        let range = FeatureRange::aligned(
            until.unwrap_or_else(Utc::now),
            spec.lookback(),
            spec.window(),
            spec.lookback(),
        );
        let started = Instant::now();
        super::features::dump_features(&session, &range, path)?;
        eprintln!(
            "wrote the features of {} to {} for every identity kind to {} in {:.3} s",
            range.start,
            range.end,
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    drop(session);

    std::fs::create_dir_all(data_dir).map_err(ModelError::io(data_dir))?;
    let catalog_path = data_dir.join("catalog.duckdb");
    // The daemon holds the catalog open for writing while it runs; training
    // from the command line then still writes its artifacts, which the
    // daemon's registry picks up, and only the catalog row is missing.
    let catalog = match duckdb::Connection::open(&catalog_path) {
        Ok(connection) => match ensure_model_tables(&connection) {
            Ok(()) => Some(connection),
            Err(error) => {
                tracing::warn!(%error, "cannot create the models table; not recording models in the catalog");
                None
            }
        },
        Err(error) => {
            tracing::warn!(path = %catalog_path.display(), %error, "cannot open the catalog; not recording models in it");
            None
        }
    };
    // Windows people resolved as true positives never become anyone's usual
    // (src/feedback/learning.rs); benign ones stay in the training data.
    if let Some(connection) = &catalog {
        match crate::feedback::learning::training_exclusions(connection) {
            Ok(windows) => {
                tracing::info!(
                    excluded = windows.len(),
                    "windows resolved as true positives are excluded from training"
                );
                options.excluded_windows = windows;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read triage verdicts; training without exclusions")
            }
        }
    }
    let report = train_all(data_dir, catalog.as_ref(), &specs, &options)?;
    for trained in &report.trained {
        let artifact = &trained.artifact;
        println!(
            "{name}\tversion {version}\twindows {windows}\tidentities {identities} ({profiled} profiled)\tk {k}\tthreshold {threshold:.3}\t{path}",
            name = artifact.name,
            version = artifact.version,
            windows = artifact.training.windows,
            identities = artifact.training.identities,
            profiled = artifact.training.profiled_identities,
            k = artifact.training.k,
            threshold = artifact.threshold,
            path = trained.path.display(),
        );
    }
    for (name, error) in &report.failed {
        eprintln!("model {name} not trained: {error}");
    }
    if report.trained.is_empty() {
        return Err(ModelError::Invalid(format!(
            "no model trained (artifacts would go to {})",
            models_dir(data_dir).display()
        )));
    }
    Ok(())
}

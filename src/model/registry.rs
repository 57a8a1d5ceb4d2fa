//! Model artifacts on disk, the catalog's `models` table, and the
//! [`ModelRegistry`] that loads the newest usable artifact of each model.
//!
//! An artifact is one self-contained JSON file, `data/models/<name>/<version>.json`,
//! written tmp → fsync → rename → fsync dir, so a reader sees the old file or
//! the new one, never half of one. Versions are ULIDs, so the newest sorts
//! last. A file that does not parse, or carries another `format_version`, is
//! logged and skipped: detection falls back to an older artifact, or to rules
//! and novelty alone, and the model is listed in `needs_training`.

use super::spec::{ModelSpec, Scaling, is_count_feature};
use super::{ModelError, Result};
use chrono::{DateTime, Utc};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The artifact layout this build writes and reads. Bump it when a field's
/// meaning changes; older files are then skipped and retrained.
pub const FORMAT_VERSION: u32 = 1;

/// The catalog table of trained models (idempotent, run at start).
pub const MODELS_TABLE_SQL: &str = "
CREATE TABLE IF NOT EXISTS models (
    name VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    trained_at TIMESTAMP NOT NULL,
    window_start TIMESTAMP NOT NULL,   -- the training range
    window_end TIMESTAMP NOT NULL,
    rows BIGINT NOT NULL,              -- feature windows trained on
    identities BIGINT NOT NULL,
    threshold DOUBLE NOT NULL,
    path VARCHAR NOT NULL,
    PRIMARY KEY (name, version)
);";

/// Creates the `models` catalog table if it is missing.
pub fn ensure_model_tables(connection: &duckdb::Connection) -> Result<()> {
    connection
        .execute_batch(MODELS_TABLE_SQL)
        .map_err(ModelError::duckdb("creating the models catalog table"))
}

/// Records a trained artifact in the catalog.
pub fn record_model(
    connection: &duckdb::Connection,
    artifact: &ModelArtifact,
    path: &Path,
) -> Result<()> {
    ensure_model_tables(connection)?;
    let time = |value: DateTime<Utc>| value.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    connection
        .execute(
            "INSERT OR REPLACE INTO models VALUES (?, ?, CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP), \
             CAST(? AS TIMESTAMP), ?, ?, ?, ?)",
            duckdb::params![
                artifact.name,
                artifact.version,
                time(artifact.trained_at),
                time(artifact.training.window_start),
                time(artifact.training.window_end),
                artifact.training.windows as i64,
                artifact.training.identities as i64,
                artifact.threshold,
                path.to_string_lossy().to_string(),
            ],
        )
        .map_err(ModelError::duckdb(format!("recording model {} in the catalog", artifact.name)))?;
    Ok(())
}

/// How raw features become the space the clustering works in:
/// optional ln(1 + x) of count features, then centre and scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub kind: Scaling,
    /// Per feature: whether ln(1 + x) is applied first.
    pub log: Vec<bool>,
    pub center: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Scaler {
    /// Fits to raw rows (rows × features of `names`).
    pub fn fit(
        raw: ArrayView2<'_, f64>,
        names: &[String],
        kind: Scaling,
        log_counts: bool,
    ) -> Scaler {
        let log: Vec<bool> = names
            .iter()
            .map(|name| log_counts && is_count_feature(name))
            .collect();
        let mut center = Vec::with_capacity(names.len());
        let mut scale = Vec::with_capacity(names.len());
        for (column, &logged) in log.iter().enumerate() {
            let mut values: Vec<f64> = raw
                .column(column)
                .iter()
                .map(|&value| pre_transform(value, logged))
                .collect();
            values.sort_by(f64::total_cmp);
            let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
            let deviation = (values
                .iter()
                .map(|value| (value - mean).powi(2))
                .sum::<f64>()
                / values.len().max(1) as f64)
                .sqrt();
            let (middle, spread) = match kind {
                Scaling::Standard => (mean, deviation),
                Scaling::Robust => {
                    let iqr = percentile_sorted(&values, 75.0) - percentile_sorted(&values, 25.0);
                    let spread = if iqr > 0.0 { iqr / 1.349 } else { deviation };
                    (percentile_sorted(&values, 50.0), spread)
                }
            };
            // A floor keeps near-constant features (no secret reads in
            // training) from turning one odd value into a huge distance:
            // 0.5 in ln units is a factor of ~1.65 in the count.
            let floor = if logged { 0.5 } else { 0.1 };
            center.push(middle);
            scale.push(if spread.is_finite() {
                spread.max(floor)
            } else {
                floor
            });
        }
        Scaler {
            kind,
            log,
            center,
            scale,
        }
    }

    pub fn transform_row(&self, raw: &[f64], out: &mut [f64]) {
        for (index, slot) in out.iter_mut().enumerate() {
            let value = pre_transform(raw.get(index).copied().unwrap_or(0.0), self.log[index]);
            *slot = (value - self.center[index]) / self.scale[index];
        }
    }

    pub fn transform(&self, raw: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut scaled = Array2::zeros(raw.dim());
        for (row, mut out) in raw.rows().into_iter().zip(scaled.rows_mut()) {
            let values: Vec<f64> = row.to_vec();
            if let Some(slice) = out.as_slice_mut() {
                self.transform_row(&values, slice);
            }
        }
        scaled
    }
}

fn pre_transform(value: f64, logged: bool) -> f64 {
    if !value.is_finite() {
        0.0
    } else if logged {
        value.max(0.0).ln_1p()
    } else {
        value
    }
}

/// Nearest-rank percentile of sorted values (0 for none).
pub fn percentile_sorted(sorted: &[f64], percentile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((percentile / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One behaviour archetype: a cluster centre in scaled space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Archetype {
    pub centroid: Vec<f64>,
    /// Training windows that fell in it.
    pub windows: usize,
}

/// What training learnt about one identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityProfile {
    pub cluster: String,
    pub identity: String,
    pub identity_kind: String,
    pub windows: usize,
    /// Archetypes holding at least `usual_share` of its windows.
    pub usual_archetypes: Vec<usize>,
    /// Per feature, in raw units: the 2.5th and 97.5th percentile of its windows.
    pub feature_ranges: Vec<[f64; 2]>,
    /// Its highest training score.
    pub max_score: f64,
}

/// Facts about one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingStats {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub windows: usize,
    pub identities: usize,
    pub profiled_identities: usize,
    pub excluded_windows: usize,
    pub repaired_values: usize,
    pub k: usize,
    /// (k, selection score) for every candidate tried.
    pub k_scores: Vec<(usize, f64)>,
    pub score_percentiles: BTreeMap<String, f64>,
    pub training_seconds: f64,
}

/// A trained model, exactly as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub format_version: u32,
    pub name: String,
    pub version: String,
    pub trained_at: DateTime<Utc>,
    /// The spec it was trained with (scoring uses this copy, not today's file).
    pub spec: ModelSpec,
    pub features: Vec<String>,
    pub scaler: Scaler,
    pub algorithm: String,
    pub archetypes: Vec<Archetype>,
    /// Anomalous above this distance to the identity's usual archetypes.
    pub threshold: f64,
    /// For identities without a profile: anomalous above this distance to the
    /// nearest of all archetypes.
    pub population_threshold: f64,
    /// Raw-unit feature ranges over all training windows (for identities
    /// without a profile of their own).
    pub population_ranges: Vec<[f64; 2]>,
    pub identities: Vec<IdentityProfile>,
    pub training: TrainingStats,
}

impl ModelArtifact {
    pub fn centroids(&self) -> Array2<f64> {
        let columns = self.features.len();
        let values: Vec<f64> = self
            .archetypes
            .iter()
            .flat_map(|archetype| archetype.centroid.iter().copied())
            .collect();
        Array2::from_shape_vec((self.archetypes.len(), columns), values)
            .unwrap_or_else(|_| Array2::zeros((0, columns)))
    }

    /// Checks the internal shapes agree (a hand-edited or truncated-but-valid
    /// JSON must not panic the scorer).
    pub fn validate(&self) -> std::result::Result<(), String> {
        let columns = self.features.len();
        if columns == 0 || self.archetypes.is_empty() {
            return Err("no features or no archetypes".into());
        }
        if self.scaler.center.len() != columns
            || self.scaler.scale.len() != columns
            || self.scaler.log.len() != columns
        {
            return Err("scaler does not match the feature list".into());
        }
        if self
            .scaler
            .scale
            .iter()
            .any(|scale| !(scale.is_finite() && *scale > 0.0))
        {
            return Err("scaler has a zero or non-finite scale".into());
        }
        if self
            .archetypes
            .iter()
            .any(|archetype| archetype.centroid.len() != columns)
        {
            return Err("an archetype has the wrong number of features".into());
        }
        if self.population_ranges.len() != columns {
            return Err("population ranges do not match the feature list".into());
        }
        for profile in &self.identities {
            if profile.feature_ranges.len() != columns
                || profile
                    .usual_archetypes
                    .iter()
                    .any(|&index| index >= self.archetypes.len())
            {
                return Err(format!(
                    "profile of {} does not match the model",
                    profile.identity
                ));
            }
        }
        if !(self.threshold.is_finite() && self.population_threshold.is_finite()) {
            return Err("threshold is not finite".into());
        }
        Ok(())
    }

    /// Writes the artifact atomically to `<models_dir>/<name>/<version>.json`.
    pub fn write(&self, models_dir: &Path) -> Result<PathBuf> {
        let folder = models_dir.join(&self.name);
        std::fs::create_dir_all(&folder).map_err(ModelError::io(&folder))?;
        let path = folder.join(format!("{}.json", self.version));
        let temporary = folder.join(format!(".{}.json.tmp", self.version));
        let json = serde_json::to_vec_pretty(self).map_err(|error| {
            ModelError::Invalid(format!("serialising model {}: {error}", self.name))
        })?;
        // If we die before the rename, only the hidden tmp file exists and the
        // registry never looks at it; after the rename the file is complete.
        let mut file = std::fs::File::create(&temporary).map_err(ModelError::io(&temporary))?;
        file.write_all(&json).map_err(ModelError::io(&temporary))?;
        file.sync_all().map_err(ModelError::io(&temporary))?;
        drop(file);
        std::fs::rename(&temporary, &path).map_err(ModelError::io(&path))?;
        if let Ok(directory) = std::fs::File::open(&folder) {
            directory.sync_all().map_err(ModelError::io(&folder))?;
        }
        Ok(path)
    }

    /// Reads and checks one artifact file.
    pub fn read(path: &Path) -> Result<ModelArtifact> {
        let bad = |message: String| ModelError::BadArtifact {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(ModelError::io(path))?;
        #[derive(Deserialize)]
        struct VersionOnly {
            format_version: Option<u32>,
        }
        let header: VersionOnly = serde_json::from_slice(&bytes)
            .map_err(|error| bad(format!("not a model artifact: {error}")))?;
        match header.format_version {
            Some(FORMAT_VERSION) => {}
            Some(other) => {
                return Err(bad(format!(
                    "format version {other}, this build reads {FORMAT_VERSION}; retrain"
                )));
            }
            None => return Err(bad("no format_version field".into())),
        }
        let artifact: ModelArtifact = serde_json::from_slice(&bytes)
            .map_err(|error| bad(format!("corrupt artifact: {error}")))?;
        artifact.validate().map_err(bad)?;
        Ok(artifact)
    }
}

/// A loaded artifact with its identity index.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    pub artifact: ModelArtifact,
    pub path: PathBuf,
    pub centroids: Array2<f64>,
    profiles: HashMap<(String, String), usize>,
}

impl LoadedModel {
    pub fn new(artifact: ModelArtifact, path: PathBuf) -> LoadedModel {
        let profiles = artifact
            .identities
            .iter()
            .enumerate()
            .map(|(index, profile)| ((profile.cluster.clone(), profile.identity.clone()), index))
            .collect();
        LoadedModel {
            centroids: artifact.centroids(),
            artifact,
            path,
            profiles,
        }
    }

    pub fn profile(&self, cluster: &str, identity: &str) -> Option<&IdentityProfile> {
        self.profiles
            .get(&(cluster.to_string(), identity.to_string()))
            .and_then(|&index| self.artifact.identities.get(index))
    }
}

/// The newest usable artifact of every model under `data/models/`.
#[derive(Debug, Clone, Default)]
pub struct ModelRegistry {
    models: Vec<LoadedModel>,
    /// Artifacts that could not be used, with the reason (already logged).
    pub skipped: Vec<(PathBuf, String)>,
    /// Models whose newest artifact was unusable: retrain them.
    pub needs_training: Vec<String>,
}

impl ModelRegistry {
    /// Loads `<models_dir>/<name>/<version>.json`, newest usable version per
    /// model. Never fails: a missing folder is an empty registry.
    pub fn load(models_dir: &Path) -> ModelRegistry {
        let mut registry = ModelRegistry::default();
        let Ok(entries) = std::fs::read_dir(models_dir) else {
            return registry;
        };
        let mut folders: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect();
        folders.sort();
        for folder in folders {
            let name = folder
                .file_name()
                .map(|name| name.to_string_lossy().to_string())
                .unwrap_or_default();
            let mut versions: Vec<PathBuf> = std::fs::read_dir(&folder)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|entry| entry.path())
                        .filter(|path| {
                            path.extension()
                                .is_some_and(|extension| extension == "json")
                                && !path
                                    .file_name()
                                    .is_some_and(|file| file.to_string_lossy().starts_with('.'))
                        })
                        .collect()
                })
                .unwrap_or_default();
            versions.sort();
            let mut newest_failed = false;
            for (rank, path) in versions.iter().rev().enumerate() {
                match ModelArtifact::read(path) {
                    Ok(artifact) => {
                        registry
                            .models
                            .push(LoadedModel::new(artifact, path.clone()));
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(model = %name, path = %path.display(), %error,
                            "skipping unusable model artifact; detection falls back to older versions, rules and novelty");
                        registry.skipped.push((path.clone(), error.to_string()));
                        if rank == 0 {
                            newest_failed = true;
                        }
                    }
                }
            }
            if newest_failed {
                registry.needs_training.push(name);
            }
        }
        registry
    }

    /// A registry of already loaded models (tests, the trainer's hand-off).
    pub fn from_models(models: Vec<LoadedModel>) -> ModelRegistry {
        ModelRegistry {
            models,
            ..ModelRegistry::default()
        }
    }

    pub fn models(&self) -> &[LoadedModel] {
        &self.models
    }

    pub fn get(&self, name: &str) -> Option<&LoadedModel> {
        self.models.iter().find(|model| model.artifact.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Spec names without a usable model, plus models whose newest artifact
    /// was bad or whose spec changed since training.
    pub fn models_to_train(&self, specs: &[ModelSpec]) -> Vec<String> {
        let mut names: Vec<String> = specs
            .iter()
            .filter(|spec| {
                self.get(&spec.name)
                    .is_none_or(|model| model.artifact.spec != **spec)
            })
            .map(|spec| spec.name.clone())
            .collect();
        for name in &self.needs_training {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::train::tests::{range, spec, table};
    use crate::model::train::train_model;

    fn trained() -> ModelArtifact {
        train_model(
            &spec("kind = \"kmeans\"\nk = 2"),
            &table(&[]),
            &range(),
            &[],
        )
        .expect("trains")
    }

    #[test]
    fn writes_atomically_and_loads_the_newest() {
        let folder = tempfile::tempdir().expect("temp dir");
        let older = trained();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let newer = trained();
        assert!(newer.version > older.version, "ULID versions sort by time");
        older.write(folder.path()).expect("writes");
        let path = newer.write(folder.path()).expect("writes");
        assert!(path.ends_with(format!("people/{}.json", newer.version)));
        let leftovers: Vec<_> = std::fs::read_dir(folder.path().join("people"))
            .expect("folder")
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        let registry = ModelRegistry::load(folder.path());
        assert_eq!(registry.models().len(), 1);
        let loaded = &registry.get("people").expect("loaded").artifact;
        // JSON keeps floats to ~1 ulp, so compare what identifies the model.
        assert_eq!(loaded.version, newer.version);
        assert_eq!(loaded.spec, newer.spec);
        assert_eq!(loaded.identities.len(), newer.identities.len());
        assert!((loaded.threshold - newer.threshold).abs() < 1e-12);
        assert!(registry.needs_training.is_empty());
        assert!(
            registry
                .models_to_train(&[spec("kind = \"kmeans\"\nk = 2")])
                .is_empty()
        );
        assert_eq!(
            registry.models_to_train(&[spec("kind = \"kmeans\"\nk = 3")]),
            vec!["people".to_string()]
        );
    }

    #[test]
    fn a_corrupt_newest_artifact_falls_back_and_asks_for_training() {
        let folder = tempfile::tempdir().expect("temp dir");
        let good = trained();
        good.write(folder.path()).expect("writes");
        let corrupt = folder
            .path()
            .join("people")
            .join("ZZZZZZZZZZZZZZZZZZZZZZZZZZ.json");
        let mut text = serde_json::to_string(&trained()).expect("json");
        text.truncate(text.len() / 2);
        std::fs::write(&corrupt, text).expect("writes");
        let registry = ModelRegistry::load(folder.path());
        assert_eq!(
            registry.get("people").expect("falls back").artifact.version,
            good.version
        );
        assert_eq!(registry.skipped.len(), 1);
        assert!(
            registry.skipped[0].1.contains("corrupt")
                || registry.skipped[0].1.contains("not a model")
        );
        assert_eq!(registry.needs_training, vec!["people".to_string()]);
    }

    #[test]
    fn an_older_format_or_inconsistent_artifact_is_skipped() {
        let folder = tempfile::tempdir().expect("temp dir");
        let model_folder = folder.path().join("people");
        std::fs::create_dir_all(&model_folder).expect("folder");
        let mut old = serde_json::to_value(trained()).expect("json");
        old["format_version"] = serde_json::json!(0);
        std::fs::write(model_folder.join("01A.json"), old.to_string()).expect("writes");
        let mut inconsistent = serde_json::to_value(trained()).expect("json");
        inconsistent["scaler"]["scale"] = serde_json::json!([1.0]);
        std::fs::write(model_folder.join("01B.json"), inconsistent.to_string()).expect("writes");
        std::fs::write(model_folder.join("01C.json"), b"\x00\x01 not json").expect("writes");
        let registry = ModelRegistry::load(folder.path());
        assert!(registry.is_empty());
        assert_eq!(registry.skipped.len(), 3);
        assert!(
            registry
                .skipped
                .iter()
                .any(|(_, reason)| reason.contains("format version 0"))
        );
        assert!(
            registry
                .skipped
                .iter()
                .any(|(_, reason)| reason.contains("scaler"))
        );
        assert_eq!(registry.needs_training, vec!["people".to_string()]);
        // A missing folder is simply an empty registry.
        assert!(ModelRegistry::load(&folder.path().join("absent")).is_empty());
    }

    #[test]
    fn records_the_model_in_the_catalog() {
        let connection = duckdb::Connection::open_in_memory().expect("duckdb");
        ensure_model_tables(&connection).expect("table");
        ensure_model_tables(&connection).expect("idempotent");
        let artifact = trained();
        record_model(
            &connection,
            &artifact,
            Path::new("data/models/people/x.json"),
        )
        .expect("records");
        let (name, rows, threshold): (String, i64, f64) = connection
            .query_row("SELECT name, rows, threshold FROM models", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .expect("one row");
        assert_eq!(name, "people");
        assert_eq!(rows, artifact.training.windows as i64);
        assert_eq!(threshold, artifact.threshold);
    }
}

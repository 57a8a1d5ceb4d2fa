//! Training: feature rows → scaled matrix → clustering → archetypes,
//! per-identity profiles and the score threshold → artifact + catalog row.
//!
//! `train_model` is a pure function of a spec and a feature table (tested
//! without files); `train_all` adds the DuckDB feature query, the artifact
//! files and the catalog. Windows already resolved as attacks are passed in
//! `TrainOptions::excluded_windows` and never become "usual".

use super::features::{FeatureRange, FeatureTable, open_feature_session};
use super::kmeans::{self, KMeansConfig};
use super::registry::{
    Archetype, FORMAT_VERSION, IdentityProfile, ModelArtifact, Scaler, TrainingStats,
    percentile_sorted, record_model,
};
use super::spec::{Algorithm, KSelection, ModelSpec};
use super::{ModelError, Result};
use chrono::{DateTime, Utc};
use linfa::prelude::*;
use linfa_clustering::{Dbscan, GaussianMixtureModel, GmmError};
use ndarray::{Array2, ArrayView2, Axis};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A window of one identity that must not be learnt as normal (an attack
/// resolved by a person, issue 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludedWindow {
    /// `None`: the identity in every cluster.
    pub cluster: Option<String>,
    pub identity: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What to train.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Train on history before this instant (default: now).
    pub until: Option<DateTime<Utc>>,
    /// Only this model (default: every spec).
    pub only_model: Option<String>,
    pub excluded_windows: Vec<ExcludedWindow>,
}

/// One model trained and stored.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    pub artifact: ModelArtifact,
    pub path: PathBuf,
}

/// The outcome of `train_all`: models trained, models that could not be.
#[derive(Debug, Default)]
pub struct TrainReport {
    pub trained: Vec<TrainedModel>,
    pub failed: Vec<(String, ModelError)>,
}

/// Where artifacts live: `<data_dir>/models`.
pub fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

/// Trains every spec (or `options.only_model`) on the history in `data_dir`,
/// writes the artifacts and records them in `catalog` when given. A model
/// that cannot be trained (too little data, failed fit) is reported in
/// `failed` and the others still train.
pub fn train_all(
    data_dir: &Path,
    catalog: Option<&duckdb::Connection>,
    specs: &[ModelSpec],
    options: &TrainOptions,
) -> Result<TrainReport> {
    let until = options.until.unwrap_or_else(Utc::now);
    let chosen: Vec<&ModelSpec> = specs
        .iter()
        .filter(|spec| {
            options
                .only_model
                .as_ref()
                .is_none_or(|name| &spec.name == name)
        })
        .collect();
    if let Some(name) = &options.only_model
        && chosen.is_empty()
    {
        let known: Vec<&str> = specs.iter().map(|spec| spec.name.as_str()).collect();
        return Err(ModelError::Invalid(format!(
            "no model spec named {name:?} (known: {})",
            known.join(", ")
        )));
    }
    let session = open_feature_session(data_dir)?;
    let mut cache: HashMap<(i64, i64), (FeatureRange, FeatureTable)> = HashMap::new();
    let mut report = TrainReport::default();
    for spec in chosen {
        let (range, table) = match cache.entry((spec.window_minutes, spec.lookback_days)) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let range =
                    FeatureRange::aligned(until, spec.lookback(), spec.window(), spec.lookback());
                let started = Instant::now();
                let table = super::features::compute_features(&session, &range)?;
                tracing::info!(
                    rows = table.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "computed training features"
                );
                entry.insert((range, table))
            }
        };
        let outcome =
            train_model(spec, table, range, &options.excluded_windows).and_then(|artifact| {
                let path = artifact.write(&models_dir(data_dir))?;
                if let Some(catalog) = catalog {
                    record_model(catalog, &artifact, &path)?;
                }
                Ok(TrainedModel { artifact, path })
            });
        match outcome {
            Ok(trained) => report.trained.push(trained),
            Err(error) => {
                tracing::warn!(model = %spec.name, %error, "model not trained");
                report.failed.push((spec.name.clone(), error));
            }
        }
    }
    Ok(report)
}

fn overlaps_excluded(key: &super::features::WindowKey, excluded: &[ExcludedWindow]) -> bool {
    excluded.iter().any(|window| {
        window.identity == key.identity
            && window
                .cluster
                .as_ref()
                .is_none_or(|cluster| cluster == &key.cluster)
            && window.start < key.window_end
            && key.window_start < window.end
    })
}

/// Trains one spec on a feature table (rows of other identity kinds and
/// excluded windows are dropped here).
pub fn train_model(
    spec: &ModelSpec,
    features: &FeatureTable,
    range: &FeatureRange,
    excluded: &[ExcludedWindow],
) -> Result<ModelArtifact> {
    let started = Instant::now();
    let mut excluded_count = 0;
    let rows = features.filter(|key| {
        let applies = spec.applies_to(&key.identity_kind);
        if applies && overlaps_excluded(key, excluded) {
            excluded_count += 1;
            return false;
        }
        applies
    });
    let mut columns = Vec::with_capacity(spec.features.len());
    for name in &spec.features {
        let column = rows.column(name).ok_or_else(|| {
            ModelError::Invalid(format!(
                "model {}: the feature query has no column {name:?}",
                spec.name
            ))
        })?;
        columns.push(column);
    }
    let raw = rows.values.select(Axis(1), &columns);
    let minimum_rows = spec
        .algorithm
        .k_candidates()
        .map_or(2, |ks| ks.into_iter().min().unwrap_or(2).max(2));
    if raw.nrows() < minimum_rows {
        return Err(ModelError::NotEnoughData {
            model: spec.name.clone(),
            message: format!(
                "{} feature windows of {} between {} and {}; need at least {minimum_rows}",
                raw.nrows(),
                kinds_text(spec),
                range.start,
                range.end
            ),
        });
    }
    let scaler = Scaler::fit(raw.view(), &spec.features, spec.scaling, spec.log_counts);
    let scaled = scaler.transform(raw.view());
    let (centroids, labels, k_scores) = cluster(spec, scaled.view())?;

    let archetype_count = centroids.nrows();
    let mut archetypes: Vec<Archetype> = centroids
        .rows()
        .into_iter()
        .map(|row| Archetype {
            centroid: row.to_vec(),
            windows: 0,
        })
        .collect();
    for &label in &labels {
        archetypes[label].windows += 1;
    }

    // Group the rows by identity.
    let mut by_identity: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (row, key) in rows.keys.iter().enumerate() {
        by_identity
            .entry((key.cluster.clone(), key.identity.clone()))
            .or_default()
            .push(row);
    }
    let mut profiles = Vec::new();
    let mut usual_scores = Vec::new();
    for ((cluster, identity), members) in &by_identity {
        if members.len() < spec.min_windows_per_identity {
            continue;
        }
        let mut counts = vec![0usize; archetype_count];
        for &row in members {
            counts[labels[row]] += 1;
        }
        let mut usual: Vec<usize> = (0..archetype_count)
            .filter(|&index| counts[index] as f64 >= spec.usual_share * members.len() as f64)
            .collect();
        if usual.is_empty()
            && let Some(top) = (0..archetype_count).max_by_key(|&index| counts[index])
        {
            usual.push(top);
        }
        let mut max_score: f64 = 0.0;
        for &row in members {
            let row_values = scaled.row(row).to_vec();
            let (_, distance) =
                kmeans::nearest(centroids.view(), &row_values, Some(usual.as_slice()));
            max_score = max_score.max(distance);
            usual_scores.push(distance);
        }
        profiles.push(IdentityProfile {
            cluster: cluster.clone(),
            identity: identity.clone(),
            identity_kind: rows.keys[members[0]].identity_kind.clone(),
            windows: members.len(),
            usual_archetypes: usual,
            feature_ranges: ranges(raw.view(), members),
            max_score,
        });
    }
    let all_rows: Vec<usize> = (0..raw.nrows()).collect();
    let mut population_scores: Vec<f64> = (0..scaled.nrows())
        .map(|row| kmeans::nearest(centroids.view(), &scaled.row(row).to_vec(), None).1)
        .collect();
    population_scores.sort_by(f64::total_cmp);
    usual_scores.sort_by(f64::total_cmp);
    let population_threshold = percentile_sorted(&population_scores, spec.threshold_percentile);
    // Without any profiled identity the population scores are all we have.
    let threshold = if usual_scores.is_empty() {
        population_threshold
    } else {
        percentile_sorted(&usual_scores, spec.threshold_percentile)
    };
    let reference = if usual_scores.is_empty() {
        &population_scores
    } else {
        &usual_scores
    };
    let score_percentiles: BTreeMap<String, f64> = [50.0, 90.0, 99.0, 99.9, 100.0]
        .into_iter()
        .map(|percentile| {
            (
                format!("p{percentile}"),
                percentile_sorted(reference, percentile),
            )
        })
        .collect();

    let trained_at = Utc::now();
    Ok(ModelArtifact {
        format_version: FORMAT_VERSION,
        name: spec.name.clone(),
        version: ulid::Ulid::new().to_string(),
        trained_at,
        spec: spec.clone(),
        features: spec.features.clone(),
        scaler,
        algorithm: spec.algorithm.name().to_string(),
        archetypes,
        threshold,
        population_threshold,
        population_ranges: ranges(raw.view(), &all_rows),
        training: TrainingStats {
            window_start: range.start,
            window_end: range.end,
            windows: raw.nrows(),
            identities: by_identity.len(),
            profiled_identities: profiles.len(),
            excluded_windows: excluded_count,
            repaired_values: features.repaired_values,
            k: archetype_count,
            k_scores,
            score_percentiles,
            training_seconds: started.elapsed().as_secs_f64(),
        },
        identities: profiles,
    })
}

fn kinds_text(spec: &ModelSpec) -> String {
    spec.identity_kinds
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join("/")
}

/// Per feature, the 2.5th and 97.5th percentile of the given rows.
fn ranges(raw: ArrayView2<'_, f64>, rows: &[usize]) -> Vec<[f64; 2]> {
    (0..raw.ncols())
        .map(|column| {
            let mut values: Vec<f64> = rows.iter().map(|&row| raw[[row, column]]).collect();
            values.sort_by(f64::total_cmp);
            [
                percentile_sorted(&values, 2.5),
                percentile_sorted(&values, 97.5),
            ]
        })
        .collect()
}

/// Centroids, each row's archetype, and (k, selection score) per candidate.
type Clustering = (Array2<f64>, Vec<usize>, Vec<(usize, f64)>);

/// Runs the spec's algorithm, choosing k if asked.
fn cluster(spec: &ModelSpec, scaled: ArrayView2<'_, f64>) -> Result<Clustering> {
    let rows = scaled.nrows();
    let failed = |message: String| ModelError::Training {
        model: spec.name.clone(),
        message,
    };
    if let Algorithm::Dbscan { min_points, radius } = &spec.algorithm {
        let labels = Dbscan::params(*min_points)
            .tolerance(*radius)
            .transform(&scaled.to_owned())
            .map_err(|error| failed(error.to_string()))?;
        let clusters = labels
            .iter()
            .flatten()
            .copied()
            .max()
            .map_or(0, |max| max + 1);
        if clusters == 0 {
            return Err(failed(format!(
                "DBSCAN found no cluster in {rows} windows (min_points {min_points}, radius {radius}); \
                 lower min_points or raise radius"
            )));
        }
        let mut sums = Array2::<f64>::zeros((clusters, scaled.ncols()));
        let mut counts = vec![0usize; clusters];
        for (row, label) in labels.iter().enumerate() {
            if let Some(label) = label {
                sums.row_mut(*label).scaled_add(1.0, &scaled.row(row));
                counts[*label] += 1;
            }
        }
        for (mut centre, count) in sums.rows_mut().into_iter().zip(&counts) {
            centre /= (*count).max(1) as f64;
        }
        // Noise windows still belong somewhere: their nearest archetype.
        let assigned: Vec<usize> = (0..rows)
            .map(|row| match labels[row] {
                Some(label) => label,
                None => kmeans::nearest(sums.view(), &scaled.row(row).to_vec(), None).0,
            })
            .collect();
        let score = kmeans::silhouette(scaled, &assigned, 1500);
        return Ok((sums, assigned, vec![(clusters, score)]));
    }
    let candidates: Vec<usize> = spec
        .algorithm
        .k_candidates()
        .unwrap_or_else(|| vec![2])
        .into_iter()
        .filter(|&k| k <= rows)
        .collect();
    if candidates.is_empty() {
        return Err(ModelError::NotEnoughData {
            model: spec.name.clone(),
            message: format!("{rows} windows are fewer than the smallest k"),
        });
    }
    let mut best: Option<(f64, Array2<f64>, Vec<usize>)> = None;
    let mut k_scores = Vec::new();
    for k in candidates.iter().copied() {
        let (centroids, labels, inertia) = fit_k(spec, scaled, k)?;
        let score = if candidates.len() == 1 {
            0.0
        } else {
            match spec.algorithm.selection() {
                KSelection::Silhouette => kmeans::silhouette(scaled, &labels, 1500),
                KSelection::Bic => -spherical_bic(inertia, rows, scaled.ncols(), k),
            }
        };
        k_scores.push((k, score));
        if best
            .as_ref()
            .is_none_or(|(best_score, _, _)| score > *best_score)
        {
            best = Some((score, centroids, labels));
        }
    }
    let (_, centroids, labels) = best.ok_or_else(|| failed("no k could be fitted".into()))?;
    Ok((centroids, labels, k_scores))
}

/// BIC of a spherical Gaussian around the centres (lower is better).
fn spherical_bic(inertia: f64, rows: usize, columns: usize, k: usize) -> f64 {
    let points = (rows * columns).max(1) as f64;
    let variance = (inertia / points).max(1e-12);
    points * variance.ln() + (k * (columns + 1)) as f64 * (rows.max(2) as f64).ln()
}

/// Fits one k: centroids, labels and inertia.
fn fit_k(
    spec: &ModelSpec,
    scaled: ArrayView2<'_, f64>,
    k: usize,
) -> Result<(Array2<f64>, Vec<usize>, f64)> {
    let failed = |message: String| ModelError::Training {
        model: spec.name.clone(),
        message,
    };
    match &spec.algorithm {
        Algorithm::Kmeans {
            n_init,
            max_iterations,
            tolerance,
            ..
        } => {
            let config = KMeansConfig {
                k,
                n_init: *n_init,
                max_iterations: *max_iterations,
                tolerance: *tolerance,
                seed: spec.seed,
                ..KMeansConfig::new(k)
            };
            let fit = kmeans::fit(scaled, &config).map_err(|error| failed(error.to_string()))?;
            Ok((fit.centroids, fit.labels, fit.inertia))
        }
        Algorithm::Gmm {
            n_init,
            max_iterations,
            ..
        } => {
            let dataset = DatasetBase::from(scaled.to_owned());
            let fitted: std::result::Result<GaussianMixtureModel<f64>, GmmError> =
                GaussianMixtureModel::params(k)
                    .n_runs(*n_init as u64)
                    .max_n_iterations(*max_iterations as u64)
                    .reg_covariance(1e-3)
                    .fit(&dataset);
            let model = fitted
                .map_err(|error| failed(format!("Gaussian mixture with k = {k}: {error}")))?;
            let centroids = model.means().clone();
            let labels: Vec<usize> = model.predict(&scaled.to_owned()).to_vec();
            let inertia = labels
                .iter()
                .enumerate()
                .map(|(row, &label)| {
                    scaled
                        .row(row)
                        .iter()
                        .zip(centroids.row(label))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                })
                .sum();
            Ok((centroids, labels, inertia))
        }
        Algorithm::Dbscan { .. } => Err(failed("DBSCAN has no k".into())),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::features::WindowKey;
    use crate::model::registry::{LoadedModel, ModelRegistry};
    use crate::model::score::score_windows;
    use crate::model::spec::ModelSpec;
    use chrono::{Duration, TimeZone};
    use std::path::Path;

    pub const NAMES: [&str; 4] = [
        "secret_reads",
        "distinct_namespaces",
        "log_request_count",
        "write_fraction",
    ];

    pub fn spec(algorithm: &str) -> ModelSpec {
        let available: Vec<String> = NAMES.map(String::from).to_vec();
        let text = format!(
            "name = \"people\"\nidentity_kinds = [\"user\"]\nfeatures = {NAMES:?}\nmin_windows_per_identity = 5\n\
             threshold_percentile = 99.0\n[algorithm]\n{algorithm}\n"
        );
        ModelSpec::parse(Path::new("people.toml"), &text, &available).expect("valid spec")
    }

    /// 3 users × 100 hourly windows with small jitter: alice reads 0-2
    /// secrets in 1 namespace, bob writes a lot in 2-3 namespaces, carol is
    /// quiet; plus a node that the spec must ignore.
    pub fn table(extra: &[(&str, [f64; 4])]) -> FeatureTable {
        let start = Utc
            .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
            .single()
            .expect("time");
        let mut keys = Vec::new();
        let mut values = Vec::new();
        let mut push = |identity: &str, kind: &str, hour: i64, row: [f64; 4]| {
            keys.push(WindowKey {
                cluster: "default".into(),
                identity: identity.into(),
                identity_kind: kind.into(),
                window_start: start + Duration::hours(hour),
                window_end: start + Duration::hours(hour + 1),
            });
            values.extend(row);
        };
        for hour in 0..100 {
            let jitter = (hour % 5) as f64;
            push(
                "alice",
                "user",
                hour,
                [(hour % 3) as f64, 1.0, (40.0 + jitter).ln_1p(), 0.05],
            );
            push(
                "bob",
                "user",
                hour,
                [
                    0.0,
                    2.0 + (hour % 2) as f64,
                    (300.0 + 10.0 * jitter).ln_1p(),
                    0.6,
                ],
            );
            push(
                "carol",
                "user",
                hour,
                [0.0, 1.0, (5.0 + jitter).ln_1p(), 0.0],
            );
            push("node-1", "node", hour, [0.0, 30.0, 9.0, 0.9]);
        }
        for (offset, (identity, row)) in extra.iter().enumerate() {
            push(identity, "user", 200 + offset as i64, *row);
        }
        let rows = keys.len();
        FeatureTable {
            names: NAMES.map(String::from).to_vec(),
            keys,
            values: Array2::from_shape_vec((rows, 4), values).expect("shape"),
            repaired_values: 0,
        }
    }

    pub fn range() -> FeatureRange {
        let start = Utc
            .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
            .single()
            .expect("time");
        FeatureRange {
            start,
            end: start + Duration::hours(100),
            window: Duration::hours(1),
            lookback: Duration::days(14),
        }
    }

    fn registry(artifact: ModelArtifact) -> ModelRegistry {
        ModelRegistry::from_models(vec![LoadedModel::new(artifact, PathBuf::from("memory"))])
    }

    #[test]
    fn learns_profiles_and_flags_only_the_odd_window() {
        let artifact = train_model(
            &spec("kind = \"kmeans\"\nk_range = [2, 4]"),
            &table(&[]),
            &range(),
            &[],
        )
        .expect("trains");
        assert_eq!(
            artifact.training.windows, 300,
            "the node's rows are not the spec's"
        );
        assert_eq!(artifact.identities.len(), 3);
        let alice = artifact
            .identities
            .iter()
            .find(|profile| profile.identity == "alice")
            .expect("alice");
        assert_eq!(alice.feature_ranges[0], [0.0, 2.0]);
        artifact.validate().expect("consistent artifact");

        // Nothing from training itself is anomalous.
        let registry = registry(artifact);
        assert!(score_windows(&registry, &table(&[])).is_empty());
        // alice reading 41 secrets across 7 namespaces is; the same window is
        // ordinary for nobody.
        let odd = table(&[("alice", [41.0, 7.0, 45f64.ln_1p(), 0.05])]);
        let anomalies = score_windows(&registry, &odd);
        assert_eq!(anomalies.len(), 1, "{anomalies:#?}");
        let anomaly = &anomalies[0];
        assert_eq!(anomaly.identity, "alice");
        assert_eq!(anomaly.detector, "model.people");
        assert!(
            anomaly
                .reasons
                .iter()
                .any(|reason| reason == "read 41 secrets; usual 0-2"),
            "{:?}",
            anomaly.reasons
        );
        assert!(
            anomaly
                .reasons
                .iter()
                .any(|reason| reason == "touched 7 namespaces; usual 1"),
            "{:?}",
            anomaly.reasons
        );
    }

    #[test]
    fn an_identity_judged_by_its_own_archetypes() {
        let artifact = train_model(
            &spec("kind = \"kmeans\"\nk = 3"),
            &table(&[]),
            &range(),
            &[],
        )
        .expect("trains");
        let registry = registry(artifact);
        // carol behaving exactly like bob: usual for the population, not for her.
        let odd = table(&[("carol", [0.0, 3.0, 340f64.ln_1p(), 0.6])]);
        let anomalies = score_windows(&registry, &odd);
        assert_eq!(anomalies.len(), 1, "{anomalies:#?}");
        assert_eq!(anomalies[0].identity, "carol");
    }

    #[test]
    fn excluded_windows_are_not_learnt() {
        let attack = ("alice", [41.0, 7.0, 45f64.ln_1p(), 0.05]);
        let features = table(&[attack]);
        let attack_key = features.keys.last().expect("row").clone();
        let excluded = [ExcludedWindow {
            cluster: None,
            identity: "alice".into(),
            start: attack_key.window_start,
            end: attack_key.window_end,
        }];
        let artifact = train_model(
            &spec("kind = \"kmeans\"\nk = 3"),
            &features,
            &range(),
            &excluded,
        )
        .expect("trains");
        assert_eq!(artifact.training.excluded_windows, 1);
        let registry = registry(artifact);
        assert_eq!(
            score_windows(&registry, &features).len(),
            1,
            "the attack stays anomalous"
        );
        // Trained with it, the attack is "usual" for alice and nothing fires.
        let polluted = train_model(&spec("kind = \"kmeans\"\nk = 3"), &features, &range(), &[])
            .expect("trains");
        let alice = polluted
            .identities
            .iter()
            .find(|profile| profile.identity == "alice")
            .expect("alice");
        assert_eq!(
            alice.feature_ranges[0][1], 2.0,
            "2.5-97.5 percentiles keep one outlier out of the range"
        );
    }

    #[test]
    fn gmm_and_dbscan_train_and_score() {
        for algorithm in [
            "kind = \"gmm\"\nk = 3",
            "kind = \"dbscan\"\nmin_points = 4\nradius = 1.0",
        ] {
            let artifact =
                train_model(&spec(algorithm), &table(&[]), &range(), &[]).expect(algorithm);
            assert!(!artifact.archetypes.is_empty(), "{algorithm}");
            let registry = registry(artifact);
            let odd = table(&[("alice", [41.0, 7.0, 45f64.ln_1p(), 0.05])]);
            let anomalies = score_windows(&registry, &odd);
            assert!(
                anomalies.iter().any(|anomaly| anomaly.identity == "alice"),
                "{algorithm}: {anomalies:#?}"
            );
        }
    }

    #[test]
    fn too_little_data_is_an_error_not_a_panic() {
        let empty = FeatureTable::empty(NAMES.map(String::from).to_vec());
        let error = train_model(&spec("kind = \"kmeans\"\nk = 2"), &empty, &range(), &[])
            .expect_err("no rows");
        assert!(matches!(error, ModelError::NotEnoughData { .. }), "{error}");
        assert!(error.to_string().contains("0 feature windows"), "{error}");
        // One window of one identity with one event.
        let one =
            table(&[]).filter(|key| key.identity == "alice" && key.window_start == range().start);
        let error = train_model(&spec("kind = \"kmeans\"\nk = 2"), &one, &range(), &[])
            .expect_err("one row");
        assert!(matches!(error, ModelError::NotEnoughData { .. }), "{error}");
        // Two rows: trains a k = 2 model without profiles, and scores without panicking.
        let two = table(&[]).filter(|key| {
            key.identity == "alice" && key.window_start < range().start + Duration::hours(2)
        });
        let artifact =
            train_model(&spec("kind = \"kmeans\"\nk = 2"), &two, &range(), &[]).expect("two rows");
        assert!(artifact.identities.is_empty());
        let _ = score_windows(&registry(artifact), &table(&[]));
    }

    #[test]
    fn constant_and_nan_features_do_not_break_training() {
        let mut features = table(&[]);
        features.values.column_mut(3).fill(0.25);
        let artifact = train_model(&spec("kind = \"kmeans\"\nk = 2"), &features, &range(), &[])
            .expect("trains");
        assert!(
            artifact
                .scaler
                .scale
                .iter()
                .all(|scale| scale.is_finite() && *scale > 0.0)
        );
        // NaN reaching the scorer directly (not through FeatureTable::from_batches).
        let mut broken = table(&[("alice", [f64::NAN, f64::INFINITY, 1.0, 0.0])]);
        broken.values[[0, 0]] = f64::NAN;
        let _ = score_windows(&registry(artifact), &broken);
    }
}

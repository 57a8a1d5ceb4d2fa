//! Model specs: the declarative `models/*.toml` files.
//!
//! A spec is checked once, at load, against the columns the feature query
//! really produces: a typo in a feature name is an error naming the file and
//! the feature, not a silently empty model at 02:00.

use super::schedule::Schedule;
use super::{ModelError, Result};
use crate::audit::IdentityKind;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The specs shipped with auditlens, used when no models folder exists.
pub const BUILTIN_SPECS: [(&str, &str); 2] = [
    (
        "models/humans.toml",
        include_str!("../../models/humans.toml"),
    ),
    (
        "models/workloads.toml",
        include_str!("../../models/workloads.toml"),
    ),
];

/// How features are put on one scale before clustering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// (x - mean) / standard deviation.
    Standard,
    /// (x - median) / (interquartile range / 1.349): outliers in training
    /// barely move it.
    #[default]
    Robust,
}

/// How k is chosen when the spec gives a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KSelection {
    /// The k with the best mean silhouette on a sample of the training rows.
    #[default]
    Silhouette,
    /// The k with the lowest Bayesian information criterion of a spherical
    /// Gaussian fit around the centres (cheap, works for any algorithm).
    Bic,
}

/// The clustering algorithm and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Algorithm {
    /// Lloyd's k-means with k-means++ initialisation (our own, see `kmeans`).
    Kmeans {
        /// A fixed k; or leave it out and give `k_range`.
        k: Option<usize>,
        /// Inclusive range of k to choose from with `selection`.
        k_range: Option<[usize; 2]>,
        #[serde(default)]
        selection: KSelection,
        #[serde(default = "default_n_init")]
        n_init: usize,
        #[serde(default = "default_max_iterations")]
        max_iterations: usize,
        #[serde(default = "default_tolerance")]
        tolerance: f64,
    },
    /// A Gaussian mixture (linfa-clustering); archetypes are component means.
    Gmm {
        k: Option<usize>,
        k_range: Option<[usize; 2]>,
        #[serde(default)]
        selection: KSelection,
        #[serde(default = "default_n_init")]
        n_init: usize,
        #[serde(default = "default_gmm_iterations")]
        max_iterations: usize,
    },
    /// DBSCAN (linfa-clustering); archetypes are the means of its clusters.
    Dbscan {
        #[serde(default = "default_min_points")]
        min_points: usize,
        /// Neighbourhood radius in scaled units.
        #[serde(default = "default_radius")]
        radius: f64,
    },
}

fn default_n_init() -> usize {
    4
}
fn default_max_iterations() -> usize {
    300
}
fn default_gmm_iterations() -> usize {
    100
}
fn default_tolerance() -> f64 {
    1e-4
}
fn default_min_points() -> usize {
    5
}
fn default_radius() -> f64 {
    1.0
}

impl Algorithm {
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::Kmeans { .. } => "kmeans",
            Algorithm::Gmm { .. } => "gmm",
            Algorithm::Dbscan { .. } => "dbscan",
        }
    }

    /// The candidate values of k, for the algorithms that take one.
    pub fn k_candidates(&self) -> Option<Vec<usize>> {
        let (k, k_range) = match self {
            Algorithm::Kmeans { k, k_range, .. } | Algorithm::Gmm { k, k_range, .. } => {
                (k, k_range)
            }
            Algorithm::Dbscan { .. } => return None,
        };
        Some(match (k, k_range) {
            (Some(k), _) => vec![*k],
            (None, Some([low, high])) => (*low..=*high).collect(),
            (None, None) => (2..=8).collect(),
        })
    }

    pub fn selection(&self) -> KSelection {
        match self {
            Algorithm::Kmeans { selection, .. } | Algorithm::Gmm { selection, .. } => *selection,
            Algorithm::Dbscan { .. } => KSelection::Silhouette,
        }
    }
}

/// One model spec, as written in `models/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The model's name: its artifact folder and the `model.<name>` detector.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Which identities the model learns and scores.
    pub identity_kinds: Vec<IdentityKind>,
    /// Feature columns of sql/features.sql.
    pub features: Vec<String>,
    /// Count-like features (not fractions, shares, hour or weekend) go
    /// through ln(1 + x) before scaling, so 0 → 2 and 2 → 40 secret reads
    /// weigh alike rather than the second dwarfing everything.
    #[serde(default = "default_true")]
    pub log_counts: bool,
    #[serde(default)]
    pub scaling: Scaling,
    pub algorithm: Algorithm,
    #[serde(default = "default_window_minutes")]
    pub window_minutes: i64,
    /// How much history training reads, and how far back novelty counts look.
    #[serde(default = "default_lookback_days")]
    pub lookback_days: i64,
    #[serde(default)]
    pub schedule: Schedule,
    /// A window is anomalous above this percentile of the training scores.
    #[serde(default = "default_threshold_percentile")]
    pub threshold_percentile: f64,
    /// Identities with fewer training windows have no profile of their own and
    /// are scored against every archetype with the population threshold.
    #[serde(default = "default_min_windows")]
    pub min_windows_per_identity: usize,
    /// Whether identities without a profile are scored at all (against the
    /// population). `false` treats them as still learning, like the novelty
    /// layer: people have few windows each, and judging a newcomer against
    /// everyone else's archetypes raised most of the model's false alarms.
    #[serde(default = "default_true")]
    pub score_unprofiled: bool,
    /// An archetype is "usual" for an identity when at least this share of its
    /// training windows fall in it.
    #[serde(default = "default_usual_share")]
    pub usual_share: f64,
    /// Seed of every random choice in training (reproducible models).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Bounds of automatic threshold changes after benign verdicts (issue 9,
    /// `src/feedback/learning.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<SpecFeedback>,
}

/// `[feedback]` of a model spec: how far verdicts may raise this model's
/// threshold. Scores are multiples of the model's own limit (1.0 = the limit
/// training set), so `score_bound = 1.5` means a window half again as far
/// as the limit always alerts, whatever people said.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFeedback {
    #[serde(default = "default_score_bound")]
    pub score_bound: f64,
    #[serde(default = "default_score_step")]
    pub score_step: f64,
}

fn default_score_bound() -> f64 {
    1.5
}
fn default_score_step() -> f64 {
    0.1
}

fn default_true() -> bool {
    true
}
fn default_window_minutes() -> i64 {
    60
}
fn default_lookback_days() -> i64 {
    14
}
fn default_threshold_percentile() -> f64 {
    99.9
}
fn default_min_windows() -> usize {
    12
}
fn default_usual_share() -> f64 {
    0.05
}
fn default_seed() -> u64 {
    42
}

impl ModelSpec {
    pub fn window(&self) -> Duration {
        Duration::minutes(self.window_minutes)
    }

    pub fn lookback(&self) -> Duration {
        Duration::days(self.lookback_days)
    }

    pub fn detector(&self) -> String {
        format!("model.{}", self.name)
    }

    pub fn applies_to(&self, identity_kind: &str) -> bool {
        self.identity_kinds
            .iter()
            .any(|kind| kind.as_str() == identity_kind)
    }

    /// Parses a spec file's text and checks it against `available_features`.
    pub fn parse(path: &Path, text: &str, available_features: &[String]) -> Result<ModelSpec> {
        let invalid = |message: String| ModelError::InvalidSpec {
            path: path.to_path_buf(),
            message,
        };
        let spec: ModelSpec = toml::from_str(text).map_err(|error| invalid(error.to_string()))?;
        if spec.name.is_empty()
            || !spec
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(format!(
                "name {:?} must be non-empty letters, digits, '-' or '_' (it names a folder)",
                spec.name
            )));
        }
        if spec.identity_kinds.is_empty() {
            return Err(invalid(
                "identity_kinds is empty: the model would apply to no one".into(),
            ));
        }
        if spec.features.is_empty() {
            return Err(invalid("features is empty".into()));
        }
        let mut seen = BTreeSet::new();
        for feature in &spec.features {
            if !available_features.contains(feature) {
                return Err(ModelError::UnknownFeature {
                    path: path.to_path_buf(),
                    feature: feature.clone(),
                    available: available_features.join(", "),
                });
            }
            if !seen.insert(feature) {
                return Err(invalid(format!("feature {feature:?} is listed twice")));
            }
        }
        if !(spec.threshold_percentile > 0.0 && spec.threshold_percentile <= 100.0) {
            return Err(invalid(format!(
                "threshold_percentile {} must be in (0, 100]",
                spec.threshold_percentile
            )));
        }
        if let Some(feedback) = &spec.feedback
            && !(feedback.score_bound >= 1.0
                && feedback.score_bound <= 10.0
                && feedback.score_step > 0.0
                && feedback.score_step <= feedback.score_bound)
        {
            return Err(invalid(format!(
                "[feedback] score_bound {} must be 1 to 10 and score_step {} in (0, score_bound]",
                feedback.score_bound, feedback.score_step
            )));
        }
        if !(spec.usual_share > 0.0 && spec.usual_share <= 1.0) {
            return Err(invalid(format!(
                "usual_share {} must be in (0, 1]",
                spec.usual_share
            )));
        }
        if !(1..=24 * 60).contains(&spec.window_minutes) {
            return Err(invalid(format!(
                "window_minutes {} must be 1 to 1440",
                spec.window_minutes
            )));
        }
        if !(1..=366).contains(&spec.lookback_days) {
            return Err(invalid(format!(
                "lookback_days {} must be 1 to 366",
                spec.lookback_days
            )));
        }
        match &spec.algorithm {
            Algorithm::Kmeans {
                k,
                k_range,
                n_init,
                max_iterations,
                tolerance,
                ..
            } => {
                check_k(*k, *k_range).map_err(invalid)?;
                if *n_init == 0 || *max_iterations == 0 || tolerance.is_nan() || *tolerance < 0.0 {
                    return Err(invalid(
                        "n_init and max_iterations must be at least 1, tolerance >= 0".into(),
                    ));
                }
            }
            Algorithm::Gmm {
                k,
                k_range,
                n_init,
                max_iterations,
                ..
            } => {
                check_k(*k, *k_range).map_err(invalid)?;
                if *n_init == 0 || *max_iterations == 0 {
                    return Err(invalid(
                        "n_init and max_iterations must be at least 1".into(),
                    ));
                }
            }
            Algorithm::Dbscan { min_points, radius } => {
                if *min_points < 2 || radius.is_nan() || *radius <= 0.0 {
                    return Err(invalid(
                        "dbscan needs min_points >= 2 and radius > 0".into(),
                    ));
                }
            }
        }
        Ok(spec)
    }
}

fn check_k(k: Option<usize>, k_range: Option<[usize; 2]>) -> std::result::Result<(), String> {
    match (k, k_range) {
        (Some(_), Some(_)) => Err("give either k or k_range, not both".into()),
        (Some(0), _) => Err("k must be at least 1".into()),
        (_, Some([low, high])) if low < 2 || high < low || high > 64 => Err(format!(
            "k_range [{low}, {high}] must satisfy 2 <= low <= high <= 64"
        )),
        _ => Ok(()),
    }
}

/// Loads every `*.toml` in `folder` (sorted by file name), or the built-in
/// specs when the folder does not exist. Any bad spec is an error: the caller
/// refuses to start rather than run with a model silently missing.
pub fn load_specs(folder: &Path, available_features: &[String]) -> Result<Vec<ModelSpec>> {
    let mut sources: Vec<(PathBuf, String)> = Vec::new();
    if folder.is_dir() {
        let entries = std::fs::read_dir(folder).map_err(ModelError::io(folder))?;
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "toml")
            })
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(ModelError::io(&path))?;
            sources.push((path, text));
        }
    }
    if sources.is_empty() {
        tracing::info!(folder = %folder.display(), "no model specs (*.toml) there; using the built-in model specs");
        sources = BUILTIN_SPECS
            .iter()
            .map(|(path, text)| (PathBuf::from(path), text.to_string()))
            .collect();
    }
    let mut specs: Vec<ModelSpec> = Vec::new();
    for (path, text) in sources {
        let spec = ModelSpec::parse(&path, &text, available_features)?;
        if specs.iter().any(|other| other.name == spec.name) {
            return Err(ModelError::InvalidSpec {
                path,
                message: format!("another spec is already named {:?}", spec.name),
            });
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// Whether a feature counts things (and so goes through ln(1 + x) when the
/// spec asks for `log_counts`).
pub fn is_count_feature(name: &str) -> bool {
    !(name.ends_with("_fraction")
        || name.ends_with("_share")
        || name.starts_with("hour_")
        || name == "weekend"
        || name.starts_with("log_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn available() -> Vec<String> {
        ["secret_reads", "distinct_namespaces", "write_fraction"]
            .map(String::from)
            .to_vec()
    }

    const GOOD: &str = r#"
name = "humans"
identity_kinds = ["user"]
features = ["secret_reads", "distinct_namespaces"]
[algorithm]
kind = "kmeans"
k_range = [2, 5]
"#;

    #[test]
    fn parses_a_spec_with_defaults() {
        let spec =
            ModelSpec::parse(Path::new("humans.toml"), GOOD, &available()).expect("valid spec");
        assert_eq!(spec.scaling, Scaling::Robust);
        assert_eq!(spec.window_minutes, 60);
        assert_eq!(spec.schedule, Schedule::default());
        assert_eq!(spec.algorithm.k_candidates(), Some(vec![2, 3, 4, 5]));
        assert!(spec.applies_to("user"));
        assert!(!spec.applies_to("node"));
    }

    #[test]
    fn unknown_feature_names_file_and_feature() {
        let text = GOOD.replace("\"distinct_namespaces\"", "\"distinct_namespacez\"");
        let error = ModelSpec::parse(Path::new("models/humans.toml"), &text, &available())
            .expect_err("must fail");
        let message = error.to_string();
        assert!(message.contains("models/humans.toml"), "{message}");
        assert!(message.contains("distinct_namespacez"), "{message}");
    }

    #[test]
    fn rejects_bad_values() {
        for (from, to) in [
            ("k_range = [2, 5]", "k_range = [5, 2]"),
            ("k_range = [2, 5]", "k = 0"),
            ("identity_kinds = [\"user\"]", "identity_kinds = []"),
            (
                "identity_kinds = [\"user\"]",
                "identity_kinds = [\"robot\"]",
            ),
            ("name = \"humans\"", "name = \"../etc\""),
            ("kind = \"kmeans\"", "kind = \"spectral\""),
        ] {
            let text = GOOD.replace(from, to);
            assert!(
                ModelSpec::parse(Path::new("x.toml"), &text, &available()).is_err(),
                "{to}"
            );
        }
        let text = format!("threshold_percentile = 0.0\n{GOOD}");
        assert!(ModelSpec::parse(Path::new("x.toml"), &text, &available()).is_err());
    }

    #[test]
    fn count_features_exclude_fractions_and_time() {
        assert!(is_count_feature("secret_reads"));
        assert!(!is_count_feature("write_fraction"));
        assert!(!is_count_feature("hour_sin"));
        assert!(!is_count_feature("log_request_count"));
    }

    #[test]
    fn an_empty_models_folder_means_the_built_in_specs() {
        let folder = tempfile::tempdir().expect("temp dir");
        std::fs::write(folder.path().join("README.md"), "not a spec").expect("write");
        // The real feature names, from the feature query over an empty folder.
        let data = tempfile::tempdir().expect("data dir");
        let session = crate::model::features::open_feature_session(data.path()).expect("session");
        let features = crate::model::features::feature_names(&session).expect("feature names");
        let specs = load_specs(folder.path(), &features).expect("built-in specs load");
        assert_eq!(specs.len(), BUILTIN_SPECS.len());
    }
}

//! Scoring: how far each window lies from its identity's usual archetypes,
//! and the plain-words reasons and evidence of the windows that lie too far.
//!
//! Score = Euclidean distance, in the model's scaled space, from the window
//! to the nearest archetype its identity usually falls in (an identity
//! without a profile: to the nearest of all archetypes). A window is anomalous
//! when the score passes both the model's threshold (a percentile of all
//! training scores) and the identity's own highest training score, so a noisy
//! identity is held to its own noise. The anomaly's `score` is that distance
//! divided by the limit it passed (1.0 = on the line).

use super::features::{
    FeatureRange, FeatureTable, WindowKey, install_features, open_feature_session,
    timestamp_literal,
};
use super::kmeans;
use super::registry::{LoadedModel, ModelRegistry};
use super::{ModelError, Result};
use crate::detect::{Anomaly, AnomalyKind, Severity};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::path::Path;

/// How many audit IDs an anomaly names as evidence.
pub const EVIDENCE_LIMIT: usize = 5;

/// One anomalous window before its evidence is looked up.
#[derive(Debug, Clone)]
pub struct ModelFinding {
    pub anomaly: Anomaly,
    /// The feature that contributed most.
    pub top_feature: String,
    /// The novelty lookback of the model (for "new namespace" evidence).
    pub lookback: chrono::Duration,
}

/// Scores every row of `features` with every model that applies to its
/// identity kind. Anomalies carry no evidence yet (see [`detect_range`]).
pub fn score_windows(registry: &ModelRegistry, features: &FeatureTable) -> Vec<Anomaly> {
    find_anomalies(registry, features)
        .into_iter()
        .map(|finding| finding.anomaly)
        .collect()
}

/// Like [`score_windows`], keeping what the evidence query needs.
pub fn find_anomalies(registry: &ModelRegistry, features: &FeatureTable) -> Vec<ModelFinding> {
    let mut findings = Vec::new();
    for model in registry.models() {
        let artifact = &model.artifact;
        let columns: Option<Vec<usize>> = artifact
            .features
            .iter()
            .map(|name| features.column(name))
            .collect();
        let Some(columns) = columns else {
            tracing::warn!(model = %artifact.name, "the feature rows lack some of this model's features; not scoring it");
            continue;
        };
        let mut raw = vec![0.0; columns.len()];
        let mut scaled = vec![0.0; columns.len()];
        for (row, key) in features.keys.iter().enumerate() {
            if !artifact.spec.applies_to(&key.identity_kind) {
                continue;
            }
            for (slot, &column) in raw.iter_mut().zip(&columns) {
                *slot = features.values[[row, column]];
            }
            if let Some(finding) = score_one(model, key, &raw, &mut scaled) {
                findings.push(finding);
            }
        }
    }
    findings
}

fn score_one(
    model: &LoadedModel,
    key: &WindowKey,
    raw: &[f64],
    scaled: &mut [f64],
) -> Option<ModelFinding> {
    let artifact = &model.artifact;
    artifact.scaler.transform_row(raw, scaled);
    let profile = model.profile(&key.cluster, &key.identity);
    let (archetype, distance, limit, ranges, basis) = match profile {
        Some(profile) => {
            let (archetype, distance) = kmeans::nearest(
                model.centroids.view(),
                scaled,
                Some(profile.usual_archetypes.as_slice()),
            );
            let limit = artifact.threshold.max(profile.max_score);
            (
                archetype,
                distance,
                limit,
                &profile.feature_ranges,
                "its usual archetypes",
            )
        }
        None if !artifact.spec.score_unprofiled => return None,
        None => {
            let (archetype, distance) = kmeans::nearest(model.centroids.view(), scaled, None);
            (
                archetype,
                distance,
                artifact.population_threshold,
                &artifact.population_ranges,
                "every archetype",
            )
        }
    };
    if !(distance.is_finite() && limit.is_finite()) || distance <= limit || limit <= 0.0 {
        return None;
    }
    let ratio = distance / limit;
    let centroid = &artifact.archetypes[archetype].centroid;
    // Features ranked by their share of the squared distance.
    let mut contributions: Vec<(usize, f64)> = scaled
        .iter()
        .zip(centroid)
        .map(|(value, centre)| (value - centre) * (value - centre))
        .enumerate()
        .collect();
    contributions.sort_by(|left, right| right.1.total_cmp(&left.1));
    let total: f64 = contributions
        .iter()
        .map(|(_, share)| share)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let mut reasons = Vec::new();
    let mut top_feature = None;
    for &(feature, share) in contributions.iter().take(6) {
        if share / total < 0.05 && !reasons.is_empty() {
            break;
        }
        let [low, high] = ranges[feature];
        let value = raw[feature];
        let outside = !(low - 1e-9..=high + 1e-9).contains(&value);
        if !outside && !reasons.is_empty() {
            continue;
        }
        let name = &artifact.features[feature];
        top_feature.get_or_insert_with(|| name.clone());
        reasons.push(describe(name, value, low, high));
        if reasons.len() == 3 {
            break;
        }
    }
    let top_feature = top_feature.unwrap_or_else(|| artifact.features[contributions[0].0].clone());
    reasons.push(format!(
        "distance {distance:.2} from {basis} (limit {limit:.2}; model {} version {})",
        artifact.name, artifact.version
    ));
    let severity = if ratio >= 3.0 {
        Severity::High
    } else if ratio >= 1.5 {
        Severity::Medium
    } else {
        Severity::Low
    };
    let detector = artifact.spec.detector();
    let title = format!(
        "{} acted unlike its usual self: {}",
        key.identity, reasons[0]
    );
    Some(ModelFinding {
        anomaly: Anomaly {
            id: anomaly_id(&detector, key),
            detector,
            kind: AnomalyKind::Model,
            identity: key.identity.clone(),
            cluster: key.cluster.clone(),
            window_start: key.window_start,
            window_end: key.window_end,
            severity,
            score: ratio,
            title,
            reasons,
            evidence_audit_ids: Vec::new(),
        },
        top_feature,
        lookback: artifact.spec.lookback(),
    })
}

/// Deterministic, so scoring a window twice yields the same anomaly id.
fn anomaly_id(detector: &str, key: &WindowKey) -> String {
    let text = format!(
        "{detector}\u{1f}{}\u{1f}{}\u{1f}{}",
        key.cluster,
        key.identity,
        key.window_start.timestamp()
    );
    format!("model-{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

fn number(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{}", value.round() as i64)
    } else {
        format!("{value:.2}")
    }
}

fn percent(value: f64) -> String {
    format!("{:.0}%", value * 100.0)
}

/// A feature value in plain words, with the identity's usual range.
pub fn describe(feature: &str, value: f64, low: f64, high: f64) -> String {
    let usual = |format: fn(f64) -> String| {
        if format(low) == format(high) {
            format(low)
        } else {
            format!("{}-{}", format(low), format(high))
        }
    };
    let counted = |what: &str| format!("{what}; usual {}", usual(number));
    match feature {
        "secret_reads" => counted(&format!("read {} secrets", number(value))),
        "exec_calls" => counted(&format!(
            "made {} exec/attach/port-forward calls",
            number(value)
        )),
        "rbac_writes" => counted(&format!("wrote RBAC objects {} times", number(value))),
        "distinct_namespaces" => counted(&format!("touched {} namespaces", number(value))),
        "new_namespaces" => counted(&format!(
            "used {} namespaces it had not used before",
            number(value)
        )),
        "distinct_source_ips" => counted(&format!("came from {} addresses", number(value))),
        "new_source_ips" => counted(&format!("came from {} addresses new to it", number(value))),
        "distinct_user_agents" => counted(&format!("used {} user agents", number(value))),
        "new_user_agents" => counted(&format!("used {} user agents new to it", number(value))),
        "distinct_verbs" => counted(&format!("used {} verbs", number(value))),
        "distinct_resources" => counted(&format!("touched {} resource types", number(value))),
        "request_count" => counted(&format!("made {} requests", number(value))),
        "denied_requests" => counted(&format!("had {} requests denied", number(value))),
        "log_request_count" => format!(
            "made {} requests; usual {}",
            number(value.exp_m1().round()),
            usual(|bound| number(bound.exp_m1().round()))
        ),
        "write_fraction" => format!(
            "{} of requests were writes; usual {}",
            percent(value),
            usual(percent)
        ),
        "denied_fraction" => format!(
            "{} of requests were denied; usual {}",
            percent(value),
            usual(percent)
        ),
        "list_watch_share" => format!(
            "{} of requests were list/watch; usual {}",
            percent(value),
            usual(percent)
        ),
        "server_error_fraction" => format!(
            "{} of requests failed (5xx); usual {}",
            percent(value),
            usual(percent)
        ),
        "hour_sin" | "hour_cos" => "active at an hour unusual for it".to_string(),
        "weekend" if value > 0.5 => "active on a weekend, unusual for it".to_string(),
        "weekend" => "active on a weekday, unusual for it".to_string(),
        other => format!("{other} = {}; usual {}", number(value), usual(number)),
    }
}

/// The SQL condition that picks the requests illustrating a feature, and the
/// column whose distinct values the evidence should spread over.
fn evidence_condition(feature: &str) -> (&'static str, Option<&'static str>) {
    const WRITES: &str = "verb IN ('create', 'update', 'patch', 'delete', 'deletecollection')";
    match feature {
        "secret_reads" => (
            "resource = 'secrets' AND verb IN ('get', 'list', 'watch')",
            Some("name"),
        ),
        "exec_calls" => (
            "subresource IN ('exec', 'attach', 'portforward')",
            Some("namespace"),
        ),
        "rbac_writes" => (
            "api_group = 'rbac.authorization.k8s.io' AND verb IN ('create', 'update', 'patch', 'delete', 'deletecollection')",
            Some("name"),
        ),
        "denied_fraction" | "denied_requests" => (
            "(response_code IN (401, 403) OR decision = 'forbid')",
            Some("resource"),
        ),
        "write_fraction" => (WRITES, Some("resource")),
        "list_watch_share" => ("verb IN ('list', 'watch')", Some("resource")),
        "server_error_fraction" => ("response_code >= 500", None),
        "distinct_namespaces" | "new_namespaces" => ("namespace IS NOT NULL", Some("namespace")),
        "distinct_source_ips" | "new_source_ips" => ("source_ip IS NOT NULL", Some("source_ip")),
        "distinct_user_agents" | "new_user_agents" => {
            ("user_agent IS NOT NULL", Some("user_agent"))
        }
        "distinct_verbs" => ("true", Some("verb")),
        _ => ("true", Some("resource")),
    }
}

/// Fills `evidence_audit_ids` with up to [`EVIDENCE_LIMIT`] requests of the
/// window that best show its top feature. Namespaces, addresses and user
/// agents the identity had not used in the lookback come first (for the
/// "new ..." features, only those); then one request per distinct value.
pub fn attach_evidence(
    connection: &duckdb::Connection,
    findings: &mut [ModelFinding],
) -> Result<()> {
    for finding in findings.iter_mut() {
        let anomaly = &finding.anomaly;
        let (condition, spread) = evidence_condition(&finding.top_feature);
        let (novelty_column, only_new) = match finding.top_feature.as_str() {
            "new_namespaces" => (Some("namespace"), true),
            "new_source_ips" => (Some("source_ip"), true),
            "new_user_agents" => (Some("user_agent"), true),
            "distinct_namespaces" => (Some("namespace"), false),
            "distinct_source_ips" => (Some("source_ip"), false),
            "distinct_user_agents" => (Some("user_agent"), false),
            _ => (None, false),
        };
        let start = timestamp_literal(anomaly.window_start);
        let end = timestamp_literal(anomaly.window_end);
        let history_start = timestamp_literal(anomaly.window_start - finding.lookback);
        let is_new = novelty_column.map_or("false".to_string(), |column| {
            format!(
                "{column} NOT IN (SELECT DISTINCT {column} FROM events WHERE cluster = $1 AND username = $2 \
                 AND date >= CAST({history_start} AS DATE) AND date <= CAST({start} AS DATE) \
                 AND ts >= {history_start} AND ts < {start} AND {column} IS NOT NULL)"
            )
        });
        let only_new = if only_new { "WHERE is_new" } else { "" };
        let spread_column = spread.unwrap_or("verb");
        let sql = format!(
            "SELECT audit_id FROM (
                 SELECT audit_id, first_ts, is_new,
                        row_number() OVER (PARTITION BY spread_value ORDER BY first_ts) AS spread_rank
                 FROM (
                     SELECT audit_id, min(ts) AS first_ts, any_value({spread_column}) AS spread_value,
                            bool_or(is_new) AS is_new
                     FROM (
                         SELECT audit_id, ts, {spread_column}, {is_new} AS is_new
                         FROM events
                         WHERE cluster = $1 AND username = $2
                           AND date >= CAST({start} AS DATE) AND date <= CAST({end} AS DATE)
                           AND ts >= {start} AND ts < {end} AND {condition}
                     )
                     GROUP BY audit_id
                 )
                 {only_new}
             )
             ORDER BY is_new DESC, spread_rank, first_ts
             LIMIT {EVIDENCE_LIMIT}"
        );
        let context = format!(
            "finding evidence for {} {}",
            anomaly.detector, anomaly.identity
        );
        let mut statement = connection
            .prepare(&sql)
            .map_err(ModelError::duckdb(context.clone()))?;
        let ids = statement
            .query_map(duckdb::params![anomaly.cluster, anomaly.identity], |row| {
                row.get::<_, String>(0)
            })
            .map_err(ModelError::duckdb(context.clone()))?
            .collect::<std::result::Result<Vec<String>, _>>()
            .map_err(ModelError::duckdb(context))?;
        finding.anomaly.evidence_audit_ids = ids;
    }
    Ok(())
}

/// Scores the windows of `[since, until)` in a session that has the views:
/// features per distinct (window, lookback) of the loaded models, anomalies
/// with evidence. This is what `auditlens detect` calls for the model layer.
pub fn score_range(
    connection: &duckdb::Connection,
    registry: &ModelRegistry,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Anomaly>> {
    install_features(connection)?;
    let mut groups: HashMap<(i64, i64), Vec<LoadedModel>> = HashMap::new();
    for model in registry.models() {
        let spec = &model.artifact.spec;
        let key = (spec.window().num_seconds(), spec.lookback().num_seconds());
        groups.entry(key).or_default().push(model.clone());
    }
    let mut anomalies = Vec::new();
    for ((window_seconds, lookback_seconds), models) in groups {
        let group = ModelRegistry::from_models(models);
        let window = chrono::Duration::seconds(window_seconds);
        let range = FeatureRange::aligned(
            until,
            until - since,
            window,
            chrono::Duration::seconds(lookback_seconds),
        );
        if range.end <= range.start {
            continue;
        }
        let features = super::features::compute_features(connection, &range)?;
        let mut findings = find_anomalies(&group, &features);
        attach_evidence(connection, &mut findings)?;
        anomalies.extend(findings.into_iter().map(|finding| finding.anomaly));
    }
    anomalies.sort_by(|left, right| {
        (left.window_start, &left.identity, &left.detector).cmp(&(
            right.window_start,
            &right.identity,
            &right.detector,
        ))
    });
    Ok(anomalies)
}

/// The `Detector`-style entry point over stored history: loads nothing but
/// what it is given, opens its own DuckDB session on `data_dir`, returns the
/// model anomalies of every whole window in `[since, until)`.
pub fn detect_range(
    data_dir: &Path,
    registry: &ModelRegistry,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Anomaly>> {
    if registry.is_empty() {
        return Ok(Vec::new());
    }
    let connection = open_feature_session(data_dir)?;
    score_range(&connection, registry, since, until)
}

/// Scores one window that just closed (the daemon calls this at each window
/// boundary, on a blocking thread, with its catalog session).
pub fn score_closed_window(
    connection: &duckdb::Connection,
    registry: &ModelRegistry,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
) -> Result<Vec<Anomaly>> {
    score_range(connection, registry, window_start, window_end)
}

/// The model layer as a window detector of `auditlens detect` and `eval`:
/// the models trained into `<data-dir>/models` score the stored windows of
/// the replayed range, in the replay's own DuckDB session.
pub struct ModelDetector {
    registry: ModelRegistry,
}

impl ModelDetector {
    /// `None` when no model has been trained yet (rules and novelty still run).
    pub fn load(data_dir: &Path) -> Option<ModelDetector> {
        let registry = ModelRegistry::load(&super::train::models_dir(data_dir));
        (!registry.is_empty()).then_some(ModelDetector { registry })
    }
}

impl crate::detect::history::WindowDetector for ModelDetector {
    fn name(&self) -> &str {
        "model"
    }

    fn detect(
        &mut self,
        connection: &duckdb::Connection,
        since: i64,
        until: i64,
    ) -> std::result::Result<Vec<Anomaly>, String> {
        let (Some(since), Some(until)) = (
            DateTime::<Utc>::from_timestamp_micros(since),
            DateTime::<Utc>::from_timestamp_micros(until),
        ) else {
            return Err(format!("window range {since}..{until} is out of range"));
        };
        score_range(connection, &self.registry, since, until).map_err(|error| error.to_string())
    }
}

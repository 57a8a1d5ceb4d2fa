//! `GetIdentityProfile`: what an identity normally does, from the `requests`
//! view.
//!
//! The profile runs through the same sandboxed [`QueryRunner`] as any user
//! query (one statement, the identity bound as `$identity`), returning
//! `(dimension, value, count)` rows that are folded into the message here.
//! The archetype stays empty until a model registry is handed to the API.

use super::ApiError;
use super::proto;
use crate::store::query::{QueryOutput, QueryRequest, QueryRunner, ResultEncoding};
use std::collections::BTreeMap;

const PROFILE_SQL: &str = "
WITH mine AS (
    SELECT * FROM requests
    WHERE username = $identity
      AND ts >= CAST($since AS TIMESTAMP) AND ts < CAST($until AS TIMESTAMP)
)
SELECT 'namespace' AS dimension, namespace AS value, count(*) AS n FROM mine WHERE namespace IS NOT NULL GROUP BY ALL
UNION ALL SELECT 'verb', verb, count(*) FROM mine GROUP BY ALL
UNION ALL SELECT 'resource', resource, count(*) FROM mine WHERE resource IS NOT NULL GROUP BY ALL
UNION ALL SELECT 'source_ip', source_ip, count(*) FROM mine WHERE source_ip IS NOT NULL GROUP BY ALL
UNION ALL SELECT 'user_agent', user_agent, count(*) FROM mine WHERE user_agent IS NOT NULL GROUP BY ALL
UNION ALL SELECT 'hour', CAST(hour(ts) AS VARCHAR), count(*) FROM mine GROUP BY ALL
UNION ALL SELECT 'identity_kind', identity_kind, count(*) FROM mine GROUP BY ALL
UNION ALL SELECT 'total', NULL, count(*) FROM mine
UNION ALL SELECT 'denied', NULL, count(*) FROM mine WHERE response_code = 403 OR decision = 'forbid'
UNION ALL SELECT 'first_seen', CAST(epoch_us(min(ts)) AS VARCHAR), 0 FROM mine
UNION ALL SELECT 'last_seen', CAST(epoch_us(max(ts)) AS VARCHAR), 0 FROM mine
";

fn timestamp_text(timestamp: Option<&prost_types::Timestamp>, default: &str) -> String {
    match timestamp.and_then(|timestamp| {
        chrono::DateTime::from_timestamp(timestamp.seconds, timestamp.nanos as u32)
    }) {
        Some(time) => time.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        None => default.to_string(),
    }
}

/// Builds the profile. Blocking.
pub fn identity_profile(
    runner: &QueryRunner,
    request: &proto::GetIdentityProfileRequest,
) -> Result<proto::IdentityProfile, ApiError> {
    if request.identity.is_empty() {
        return Err(ApiError::InvalidArgument("identity is required".into()));
    }
    let top = if request.top == 0 {
        20
    } else {
        request.top as usize
    };
    let mut parameters = BTreeMap::new();
    parameters.insert("identity".to_string(), request.identity.clone());
    parameters.insert(
        "since".to_string(),
        timestamp_text(request.since.as_ref(), "1970-01-01 00:00:00"),
    );
    parameters.insert(
        "until".to_string(),
        timestamp_text(request.until.as_ref(), "9999-12-31 00:00:00"),
    );
    let query = QueryRequest {
        sql: PROFILE_SQL.to_string(),
        parameters,
        encoding: ResultEncoding::JsonRows,
        ..QueryRequest::default()
    };
    let mut rows: Vec<serde_json::Value> = Vec::new();
    runner.run(&query, |output| {
        if let QueryOutput::JsonRows { rows: chunk } = output {
            rows.extend(
                chunk
                    .iter()
                    .filter_map(|row| serde_json::from_str(row).ok()),
            );
        }
        Ok(())
    })?;

    let mut profile = proto::IdentityProfile {
        identity: request.identity.clone(),
        active_hours: vec![0; 24],
        ..proto::IdentityProfile::default()
    };
    let mut lists: BTreeMap<String, Vec<proto::Count>> = BTreeMap::new();
    for row in rows {
        let dimension = row["dimension"].as_str().unwrap_or_default();
        let value = row["value"].as_str().unwrap_or_default().to_string();
        let count = row["n"].as_i64().unwrap_or_default();
        match dimension {
            "total" => profile.requests = count,
            "denied" => profile.denied_requests = count,
            "first_seen" | "last_seen" => {
                let Ok(micros) = value.parse::<i64>() else {
                    continue;
                };
                let timestamp = prost_types::Timestamp {
                    seconds: micros.div_euclid(1_000_000),
                    nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
                };
                if dimension == "first_seen" {
                    profile.first_seen = Some(timestamp);
                } else {
                    profile.last_seen = Some(timestamp);
                }
            }
            "hour" => {
                if let Ok(hour) = value.parse::<usize>()
                    && hour < 24
                {
                    profile.active_hours[hour] = count;
                }
            }
            "identity_kind" => profile.identity_kind = value,
            other => lists
                .entry(other.to_string())
                .or_default()
                .push(proto::Count { value, count }),
        }
    }
    let mut take = |name: &str| {
        let mut counts = lists.remove(name).unwrap_or_default();
        counts.sort_by(|left, right| {
            right
                .count
                .cmp(&left.count)
                .then_with(|| left.value.cmp(&right.value))
        });
        counts.truncate(top);
        counts
    };
    profile.namespaces = take("namespace");
    profile.verbs = take("verb");
    profile.resources = take("resource");
    profile.source_ips = take("source_ip");
    profile.user_agents = take("user_agent");
    Ok(profile)
}

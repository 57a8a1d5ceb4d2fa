//! Builds a [`Report`] from the events view and the catalog tables.
//!
//! The day's requests (final stage of each audit ID) are copied once into a
//! slim temporary table, so the dozen aggregations below scan the day's
//! Parquet once instead of once each. Tables other modules own (`models`,
//! RBAC findings) are optional: absent means "not available", never an error.

use super::model::*;
use super::{ReportError, Result};
use crate::detect::Severity;
use crate::store::views::{install_views, sql_string_literal};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Tables the RBAC work may write risky-grant findings to, in order of preference.
pub const RISKY_GRANT_TABLES: [&str; 3] = ["rbac_findings", "findings", "rbac_risks"];
/// Tables the RBAC work may write unused sensitive grants to.
pub const UNUSED_GRANT_TABLES: [&str; 3] = [
    "rbac_unused_grants",
    "unused_grants",
    "rbac_recommendations",
];
/// The model registry table.
pub const MODEL_TABLES: [&str; 1] = ["models"];

/// Rows kept in a list before it is marked truncated.
const RBAC_CHANGE_LIMIT: usize = 10_000;
const SECRET_ACCESS_LIMIT: usize = 2_000;
const TABLE_SECTION_LIMIT: usize = 200;
const FIRST_SEEN_LIMIT: usize = 200;
const ANOMALIES_PER_INCIDENT: usize = 50;

/// What the caller may tune; [`BuildOptions::default`] is what the nightly run uses.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Identities listed in the activity section.
    pub top_identities: usize,
    /// History used to decide that a namespace or IP is new for an identity.
    pub first_seen_lookback_days: u32,
    /// Shown as `catalog_source`.
    pub catalog_source: String,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions {
            top_identities: 15,
            first_seen_lookback_days: 30,
            catalog_source: "catalog".to_string(),
        }
    }
}

fn duckdb_error(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> ReportError {
    let context = context.into();
    move |source| ReportError::DuckDb { context, source }
}

fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// Runs `sql` and maps each row.
fn query<T>(
    connection: &duckdb::Connection,
    context: &str,
    sql: &str,
    mut map: impl FnMut(&duckdb::Row<'_>) -> duckdb::Result<T>,
) -> Result<Vec<T>> {
    let mut statement = connection.prepare(sql).map_err(duckdb_error(context))?;
    let rows = statement
        .query_map([], |row| map(row))
        .map_err(duckdb_error(context))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(duckdb_error(context))?);
    }
    Ok(out)
}

fn count(connection: &duckdb::Connection, context: &str, sql: &str) -> Result<u64> {
    let value: i64 = connection
        .query_row(sql, [], |row| row.get(0))
        .map_err(duckdb_error(context))?;
    Ok(value.max(0) as u64)
}

fn json_strings(text: Option<String>) -> Vec<String> {
    text.and_then(|text| serde_json::from_str::<Vec<Option<String>>>(&text).ok())
        .map(|values| values.into_iter().flatten().collect())
        .unwrap_or_default()
}

/// Whether `name` is a table or view of the session's default database.
pub fn table_exists(connection: &duckdb::Connection, name: &str) -> Result<bool> {
    let found: i64 = connection
        .query_row(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = 'main' AND table_name = ?",
            [name],
            |row| row.get(0),
        )
        .map_err(duckdb_error("looking up catalog tables"))?;
    Ok(found > 0)
}

fn table_columns(connection: &duckdb::Connection, name: &str) -> Result<Vec<String>> {
    let mut statement = connection
        .prepare(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() \
             AND table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        )
        .map_err(duckdb_error("reading table columns"))?;
    let rows = statement
        .query_map([name], |row| row.get::<_, String>(0))
        .map_err(duckdb_error("reading table columns"))?;
    let mut columns = Vec::new();
    for row in rows {
        columns.push(row.map_err(duckdb_error("reading table columns"))?);
    }
    Ok(columns)
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Reads the first table of `candidates` that exists, every column as text.
/// `order_by` names columns to sort by (descending) if the table has them.
pub fn read_table_section(
    connection: &duckdb::Connection,
    candidates: &[&str],
    order_by: &[&str],
    what: &str,
) -> Result<TableSection> {
    for name in candidates {
        if !table_exists(connection, name)? {
            continue;
        }
        let columns = table_columns(connection, name)?;
        let select: Vec<String> = columns
            .iter()
            .map(|column| format!("CAST({} AS VARCHAR)", quote_identifier(column)))
            .collect();
        let order: Vec<String> = order_by
            .iter()
            .filter(|column| columns.iter().any(|existing| existing == *column))
            .map(|column| format!("{} DESC NULLS LAST", quote_identifier(column)))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} {} LIMIT {}",
            if select.is_empty() {
                "1".to_string()
            } else {
                select.join(", ")
            },
            quote_identifier(name),
            if order.is_empty() {
                String::new()
            } else {
                format!("ORDER BY {}", order.join(", "))
            },
            TABLE_SECTION_LIMIT + 1
        );
        let width = columns.len();
        let mut rows = query(connection, &format!("reading table {name}"), &sql, |row| {
            (0..width)
                .map(|index| {
                    row.get::<_, Option<String>>(index)
                        .map(Option::unwrap_or_default)
                })
                .collect()
        })?;
        let truncated = rows.len() > TABLE_SECTION_LIMIT;
        rows.truncate(TABLE_SECTION_LIMIT);
        return Ok(TableSection {
            available: true,
            source: Some((*name).to_string()),
            note: if rows.is_empty() {
                format!("{what}: the table is empty")
            } else {
                String::new()
            },
            columns,
            rows,
            truncated,
        });
    }
    Ok(TableSection {
        available: false,
        source: None,
        note: format!(
            "{what}: not available (no table {} in the catalog)",
            candidates.join(" / ")
        ),
        ..TableSection::default()
    })
}

const DENIED: &str =
    "(coalesce(decision = 'forbid', false) OR coalesce(response_code IN (401, 403), false))";
const WRITE_VERBS: &str = "('create', 'update', 'patch', 'delete', 'deletecollection')";

/// Builds the report of `date` (a UTC day) for `cluster`.
///
/// `connection` must see the catalog tables by their plain names (the
/// daemon's catalog connection, or a reader session from
/// [`super::open_reader_session`]); the `events` view is (re)installed here.
pub fn build_report(
    data_dir: &Path,
    connection: &duckdb::Connection,
    date: NaiveDate,
    cluster: &str,
) -> Result<Report> {
    build_report_with(
        data_dir,
        connection,
        date,
        cluster,
        &BuildOptions::default(),
    )
}

pub fn build_report_with(
    data_dir: &Path,
    connection: &duckdb::Connection,
    date: NaiveDate,
    cluster: &str,
    options: &BuildOptions,
) -> Result<Report> {
    install_views(connection, data_dir)?;
    let window_start = date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let window_end = window_start + Duration::days(1);
    let cluster_literal = sql_string_literal(cluster);
    let day = sql_string_literal(&date.format("%Y-%m-%d").to_string());
    let week_start = sql_string_literal(&(date - Duration::days(7)).format("%Y-%m-%d").to_string());
    let lookback_start = sql_string_literal(
        &(date - Duration::days(i64::from(options.first_seen_lookback_days.max(1))))
            .format("%Y-%m-%d")
            .to_string(),
    );
    let yesterday = sql_string_literal(&(date - Duration::days(1)).format("%Y-%m-%d").to_string());
    let in_cluster_day = format!("cluster = {cluster_literal} AND date = CAST({day} AS DATE)");

    connection
        .execute_batch(&format!(
            "CREATE OR REPLACE TEMP TABLE report_day AS \
             SELECT audit_id, ts, username, identity_kind, verb, api_group, resource, subresource, namespace, name, \
                    response_code, decision, source_ip \
             FROM (SELECT *, row_number() OVER (PARTITION BY audit_id ORDER BY \
                     stage_rank(stage) DESC, \
                     stage_ts DESC) AS request_rank \
                   FROM events WHERE {in_cluster_day}) \
             WHERE request_rank = 1"
        ))
        .map_err(duckdb_error("collecting the day's requests"))?;

    let result = (|| -> Result<Report> {
        let mut summary = Summary {
            events: count(
                connection,
                "counting events",
                &format!("SELECT count(*) FROM events WHERE {in_cluster_day}"),
            )?,
            requests: count(
                connection,
                "counting requests",
                "SELECT count(*) FROM report_day",
            )?,
            identities: count(
                connection,
                "counting identities",
                "SELECT count(DISTINCT username) FROM report_day",
            )?,
            denied_requests: count(
                connection,
                "counting denied requests",
                &format!("SELECT count(*) FROM report_day WHERE {DENIED}"),
            )?,
            ..Summary::default()
        };

        let events_by_hour = query(
            connection,
            "events per hour",
            &format!(
                "SELECT hour(ts)::INTEGER, coalesce(identity_kind, 'unknown'), count(*) FROM events \
                 WHERE {in_cluster_day} GROUP BY ALL ORDER BY 1, 2"
            ),
            |row| {
                Ok(HourlyCount {
                    hour: row.get::<_, i32>(0)?.clamp(0, 23) as u32,
                    series: row.get(1)?,
                    count: row.get::<_, i64>(2)?.max(0) as u64,
                })
            },
        )?;

        let (incidents, ungrouped_anomalies, anomalies_by_hour) = read_anomalies(
            connection,
            &cluster_literal,
            window_start,
            window_end,
            &mut summary,
        )?;

        let identity_activity = read_identity_activity(
            connection,
            &cluster_literal,
            &week_start,
            &yesterday,
            options.top_identities,
        )?;

        let known_identities = format!(
            "(SELECT DISTINCT username FROM events WHERE cluster = {cluster_literal} \
              AND date BETWEEN CAST({lookback_start} AS DATE) AND CAST({yesterday} AS DATE))"
        );
        let new_identities = query(
            connection,
            "new identities",
            &format!(
                "SELECT DISTINCT username FROM report_day WHERE username NOT IN {known_identities} ORDER BY 1 LIMIT {FIRST_SEEN_LIMIT}"
            ),
            |row| row.get::<_, String>(0),
        )?;
        let mut first_seen = Vec::new();
        for (what, column) in [("namespace", "namespace"), ("source_ip", "source_ip")] {
            first_seen.extend(query(
                connection,
                "first-seen values",
                &format!(
                    "WITH history AS (SELECT DISTINCT username, {column} AS value FROM events \
                        WHERE cluster = {cluster_literal} AND date BETWEEN CAST({lookback_start} AS DATE) AND CAST({yesterday} AS DATE) \
                        AND {column} IS NOT NULL) \
                     SELECT d.username, d.{column}, epoch_us(min(d.ts)), count(*) FROM report_day d \
                     WHERE d.{column} IS NOT NULL AND d.username IN {known_identities} \
                       AND NOT EXISTS (SELECT 1 FROM history h WHERE h.username = d.username AND h.value = d.{column}) \
                     GROUP BY ALL ORDER BY 3 LIMIT {FIRST_SEEN_LIMIT}"
                ),
                |row| {
                    Ok(FirstSeen {
                        identity: row.get(0)?,
                        what: what.to_string(),
                        value: row.get(1)?,
                        first_at: micros_to_time(row.get(2)?),
                        requests: row.get::<_, i64>(3)?.max(0) as u64,
                    })
                },
            )?);
        }
        first_seen.sort_by_key(|seen| seen.first_at);

        let denied = read_denied(
            connection,
            &cluster_literal,
            &week_start,
            day.as_str(),
            date,
        )?;

        let mut rbac_changes = query(
            connection,
            "RBAC changes",
            &format!(
                "SELECT epoch_us(ts), username, verb, coalesce(resource, ''), namespace, name, response_code, audit_id FROM report_day \
                 WHERE api_group = 'rbac.authorization.k8s.io' AND verb IN {WRITE_VERBS} ORDER BY ts, audit_id LIMIT {}",
                RBAC_CHANGE_LIMIT + 1
            ),
            |row| {
                let response_code: Option<i32> = row.get(6)?;
                Ok(RbacChange {
                    at: micros_to_time(row.get(0)?),
                    identity: row.get(1)?,
                    verb: row.get(2)?,
                    resource: row.get(3)?,
                    namespace: row.get(4)?,
                    name: row.get(5)?,
                    response_code,
                    succeeded: response_code.is_none_or(|code| (200..300).contains(&code)),
                    audit_id: row.get(7)?,
                })
            },
        )?;
        let rbac_changes_truncated = rbac_changes.len() > RBAC_CHANGE_LIMIT;
        rbac_changes.truncate(RBAC_CHANGE_LIMIT);

        let mut secret_access = query(
            connection,
            "secret reads",
            &format!(
                "SELECT username, namespace, verb, to_json(list(DISTINCT name) FILTER (WHERE name IS NOT NULL AND verb = 'get'))::VARCHAR, \
                        count(*), epoch_us(min(ts)), epoch_us(max(ts)) FROM report_day \
                 WHERE resource = 'secrets' AND coalesce(api_group, '') = '' AND subresource IS NULL \
                   AND verb IN ('get', 'list', 'watch') AND coalesce(response_code BETWEEN 200 AND 299, true) \
                 GROUP BY username, namespace, verb ORDER BY count(*) DESC, username, namespace, verb LIMIT {}",
                SECRET_ACCESS_LIMIT + 1
            ),
            |row| {
                let mut names = json_strings(row.get(3)?);
                names.sort();
                Ok(SecretAccess {
                    identity: row.get(0)?,
                    namespace: row.get(1)?,
                    verb: row.get(2)?,
                    names,
                    requests: row.get::<_, i64>(4)?.max(0) as u64,
                    first_at: micros_to_time(row.get(5)?),
                    last_at: micros_to_time(row.get(6)?),
                })
            },
        )?;
        let secret_access_truncated = secret_access.len() > SECRET_ACCESS_LIMIT;
        secret_access.truncate(SECRET_ACCESS_LIMIT);

        let compliance = Compliance {
            secret_access,
            secret_access_truncated,
            rbac_change_count: count(
                connection,
                "counting RBAC changes",
                &format!(
                    "SELECT count(*) FROM report_day WHERE api_group = 'rbac.authorization.k8s.io' AND verb IN {WRITE_VERBS}"
                ),
            )?,
            incident_evidence: incidents
                .iter()
                .map(|incident| {
                    let mut evidence: Vec<String> = incident
                        .anomalies
                        .iter()
                        .flat_map(|anomaly| anomaly.evidence_audit_ids.iter().cloned())
                        .collect();
                    evidence.sort();
                    evidence.dedup();
                    IncidentEvidence {
                        incident_id: incident.id.clone(),
                        severity: incident.severity.clone(),
                        identity: incident.identity.clone(),
                        evidence_audit_ids: evidence,
                    }
                })
                .collect(),
        };

        let rbac_risky_grants = read_table_section(
            connection,
            &RISKY_GRANT_TABLES,
            &["score", "risk_score", "created_at"],
            "RBAC risky grants",
        )?;
        let rbac_unused_grants = read_table_section(
            connection,
            &UNUSED_GRANT_TABLES,
            &["score", "overprivilege_score", "created_at"],
            "Unused sensitive grants",
        )?;
        let models = read_table_section(
            connection,
            &MODEL_TABLES,
            &["trained_at", "created_at", "version"],
            "Model status",
        )?;
        let ingest = read_ingest_health(connection, data_dir, &cluster_literal, date)?;
        // The feedback section never fails the report: a catalog it cannot
        // read gives an empty section, logged.
        let feedback = crate::feedback::report::build_section(connection, date, cluster)
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "feedback section unavailable");
                crate::feedback::report::FeedbackSection::default()
            });

        // Like the feedback section, RBAC drift never fails the report.
        let rbac_drift =
            crate::rbac::drift::build_drift(connection, cluster, date).unwrap_or_else(|error| {
                tracing::warn!(%error, "RBAC drift section unavailable");
                crate::rbac::drift::RbacDrift::default()
            });

        Ok(Report {
            schema_version: SCHEMA_VERSION,
            generated_at: Utc::now(),
            cluster: cluster.to_string(),
            date,
            window_start,
            window_end,
            catalog_source: options.catalog_source.clone(),
            summary,
            incidents,
            ungrouped_anomalies,
            events_by_hour,
            anomalies_by_hour,
            identity_activity,
            new_identities,
            first_seen,
            denied,
            rbac_changes,
            rbac_changes_truncated,
            compliance,
            rbac_risky_grants,
            rbac_unused_grants,
            models,
            ingest,
            feedback,
            rbac_drift,
        })
    })();
    // The temporary table lives as long as the connection; free it now.
    let _ = connection.execute_batch("DROP TABLE IF EXISTS temp.report_day");
    result
}

fn severity_rank(severity: &str) -> u8 {
    severity
        .parse::<Severity>()
        .map(|severity| severity as u8 + 1)
        .unwrap_or(0)
}

type AnomalySections = (Vec<IncidentEntry>, Vec<AnomalyEntry>, Vec<HourlyCount>);

fn read_anomalies(
    connection: &duckdb::Connection,
    cluster_literal: &str,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    summary: &mut Summary,
) -> Result<AnomalySections> {
    let start = window_start.timestamp_micros();
    let end = window_end.timestamp_micros();
    let mut incidents = Vec::new();
    if table_exists(connection, "incidents")? {
        incidents = query(
            connection,
            "reading incidents",
            &format!(
                "SELECT id, identity, severity, title, epoch_us(first_seen), epoch_us(last_seen), to_json(detectors)::VARCHAR, anomaly_count \
                 FROM incidents WHERE cluster = {cluster_literal} AND first_seen < make_timestamp({end}) AND last_seen >= make_timestamp({start})"
            ),
            |row| {
                Ok(IncidentEntry {
                    id: row.get(0)?,
                    identity: row.get(1)?,
                    severity: row.get(2)?,
                    title: row.get(3)?,
                    first_seen: micros_to_time(row.get(4)?),
                    last_seen: micros_to_time(row.get(5)?),
                    detectors: json_strings(row.get(6)?),
                    anomaly_count: row.get::<_, i64>(7)?.max(0) as u64,
                    anomalies: Vec::new(),
                })
            },
        )?;
    }
    let mut ungrouped = Vec::new();
    let mut by_hour: BTreeMap<(u32, String), u64> = BTreeMap::new();
    if table_exists(connection, "anomalies")? {
        let incident_ids: Vec<String> = incidents
            .iter()
            .map(|incident| sql_string_literal(&incident.id))
            .collect();
        let of_incidents = if incident_ids.is_empty() {
            "false".to_string()
        } else {
            format!("incident_id IN ({})", incident_ids.join(", "))
        };
        let anomalies = query(
            connection,
            "reading anomalies",
            &format!(
                "SELECT id, detector, kind, identity, severity, score, title, epoch_us(window_start), epoch_us(window_end), \
                        to_json(reasons)::VARCHAR, to_json(evidence_audit_ids)::VARCHAR, incident_id, \
                        (window_start < make_timestamp({end}) AND window_end >= make_timestamp({start})) AS in_day \
                 FROM anomalies WHERE cluster = {cluster_literal} \
                   AND ((window_start < make_timestamp({end}) AND window_end >= make_timestamp({start})) OR {of_incidents}) \
                 ORDER BY window_start, id"
            ),
            |row| {
                Ok((
                    AnomalyEntry {
                        id: row.get(0)?,
                        detector: row.get(1)?,
                        kind: row.get(2)?,
                        identity: row.get(3)?,
                        severity: row.get(4)?,
                        score: row.get(5)?,
                        title: row.get(6)?,
                        window_start: micros_to_time(row.get(7)?),
                        window_end: micros_to_time(row.get(8)?),
                        reasons: json_strings(row.get(9)?),
                        evidence_audit_ids: json_strings(row.get(10)?),
                        incident_id: row.get(11)?,
                    },
                    row.get::<_, bool>(12)?,
                ))
            },
        )?;
        let positions: HashMap<String, usize> = incidents
            .iter()
            .enumerate()
            .map(|(index, incident)| (incident.id.clone(), index))
            .collect();
        for (anomaly, in_day) in anomalies {
            if in_day {
                summary.anomalies += 1;
                *summary
                    .anomalies_by_severity
                    .entry(anomaly.severity.clone())
                    .or_default() += 1;
                let hour = anomaly
                    .window_start
                    .max(window_start)
                    .format("%H")
                    .to_string()
                    .parse::<u32>()
                    .unwrap_or(0);
                *by_hour.entry((hour, anomaly.severity.clone())).or_default() += 1;
            }
            match anomaly
                .incident_id
                .as_ref()
                .and_then(|id| positions.get(id))
            {
                Some(&position) => incidents[position].anomalies.push(anomaly),
                None if in_day => ungrouped.push(anomaly),
                None => {}
            }
        }
    }
    let by_score = |left: &AnomalyEntry, right: &AnomalyEntry| {
        severity_rank(&right.severity)
            .cmp(&severity_rank(&left.severity))
            .then(right.score.total_cmp(&left.score))
            .then(left.window_start.cmp(&right.window_start))
    };
    for incident in &mut incidents {
        incident.anomalies.sort_by(by_score);
        incident.anomalies.truncate(ANOMALIES_PER_INCIDENT);
    }
    incidents.sort_by(|left, right| {
        severity_rank(&right.severity)
            .cmp(&severity_rank(&left.severity))
            .then(right.anomaly_count.cmp(&left.anomaly_count))
            .then(left.first_seen.cmp(&right.first_seen))
    });
    ungrouped.sort_by(by_score);
    summary.incidents = incidents.len() as u64;
    let anomalies_by_hour = by_hour
        .into_iter()
        .map(|((hour, severity), count)| HourlyCount {
            hour,
            series: severity,
            count,
        })
        .collect();
    Ok((incidents, ungrouped, anomalies_by_hour))
}

fn read_identity_activity(
    connection: &duckdb::Connection,
    cluster_literal: &str,
    week_start: &str,
    yesterday: &str,
    limit: usize,
) -> Result<Vec<IdentityActivity>> {
    query(
        connection,
        "identity activity",
        &format!(
            "WITH today AS ( \
                SELECT username, any_value(identity_kind) AS identity_kind, count(*) AS requests, \
                       count(*) FILTER (WHERE {DENIED}) AS denied, count(*) FILTER (WHERE verb IN {WRITE_VERBS}) AS writes, \
                       count(DISTINCT namespace) AS namespaces, count(DISTINCT source_ip) AS source_ips \
                FROM report_day GROUP BY username ORDER BY requests DESC, username LIMIT {limit}), \
             history AS ( \
                SELECT username, count(DISTINCT audit_id) AS requests, count(DISTINCT date) AS days FROM events \
                WHERE cluster = {cluster_literal} AND date BETWEEN CAST({week_start} AS DATE) AND CAST({yesterday} AS DATE) \
                  AND username IN (SELECT username FROM today) GROUP BY username) \
             SELECT t.username, coalesce(t.identity_kind, 'unknown'), t.requests, t.denied, t.writes, t.namespaces, t.source_ips, \
                    coalesce(h.requests, 0) / 7.0, coalesce(h.days, 0) \
             FROM today t LEFT JOIN history h USING (username) ORDER BY t.requests DESC, t.username"
        ),
        |row| {
            let requests = row.get::<_, i64>(2)?.max(0) as u64;
            let usual: f64 = row.get(7)?;
            Ok(IdentityActivity {
                identity: row.get(0)?,
                identity_kind: row.get(1)?,
                requests,
                denied: row.get::<_, i64>(3)?.max(0) as u64,
                writes: row.get::<_, i64>(4)?.max(0) as u64,
                namespaces: row.get::<_, i64>(5)?.max(0) as u64,
                source_ips: row.get::<_, i64>(6)?.max(0) as u64,
                usual_daily_requests: usual,
                usual_active_days: row.get::<_, i64>(8)?.max(0) as u64,
                ratio_to_usual: (usual > 0.0).then(|| requests as f64 / usual),
            })
        },
    )
}

fn read_denied(
    connection: &duckdb::Connection,
    cluster_literal: &str,
    week_start: &str,
    day: &str,
    date: NaiveDate,
) -> Result<DeniedRequests> {
    let mut by_hour = vec![0u64; 24];
    for (hour, denied) in query(
        connection,
        "denied per hour",
        &format!("SELECT hour(ts)::INTEGER, count(*) FROM report_day WHERE {DENIED} GROUP BY 1"),
        |row| Ok((row.get::<_, i32>(0)?, row.get::<_, i64>(1)?)),
    )? {
        if let Some(slot) = by_hour.get_mut(hour.clamp(0, 23) as usize) {
            *slot = denied.max(0) as u64;
        }
    }
    let per_day: HashMap<NaiveDate, u64> = query(
        connection,
        "denied per day",
        &format!(
            "SELECT strftime(date, '%Y-%m-%d'), count(DISTINCT audit_id) FILTER (WHERE {DENIED}) FROM events \
             WHERE cluster = {cluster_literal} AND date BETWEEN CAST({week_start} AS DATE) AND CAST({day} AS DATE) - 1 GROUP BY 1"
        ),
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
    )?
    .into_iter()
    .filter_map(|(text, denied)| NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok().map(|date| (date, denied.max(0) as u64)))
    .collect();
    let total: u64 = by_hour.iter().sum();
    let daily: Vec<DailyCount> = (0..=7)
        .rev()
        .map(|back| {
            let day = date - Duration::days(back);
            DailyCount {
                date: day,
                count: if back == 0 {
                    total
                } else {
                    per_day.get(&day).copied().unwrap_or(0)
                },
            }
        })
        .collect();
    let previous_daily_average = daily
        .iter()
        .take(7)
        .map(|entry| entry.count as f64)
        .sum::<f64>()
        / 7.0;
    let top = query(
        connection,
        "top denials",
        &format!(
            "SELECT username, verb, coalesce(resource, '') || coalesce('/' || subresource, ''), count(*) FROM report_day \
             WHERE {DENIED} GROUP BY ALL ORDER BY 4 DESC, 1, 2, 3 LIMIT 20"
        ),
        |row| {
            Ok(DeniedGroup {
                identity: row.get(0)?,
                verb: row.get(1)?,
                resource: row.get(2)?,
                count: row.get::<_, i64>(3)?.max(0) as u64,
            })
        },
    )?;
    Ok(DeniedRequests {
        total,
        by_hour,
        previous_daily_average,
        daily,
        top,
    })
}

fn read_ingest_health(
    connection: &duckdb::Connection,
    data_dir: &Path,
    cluster_literal: &str,
    date: NaiveDate,
) -> Result<IngestHealth> {
    let mut health = IngestHealth::default();
    let day = sql_string_literal(&date.format("%Y-%m-%d").to_string());
    if table_exists(connection, "parts")? {
        health.manifest_available = true;
        let (parts, bytes, rows, mean_lag, max_lag) = connection
            .query_row(
                &format!(
                    "WITH compaction_outputs AS ( \
                        SELECT DISTINCT substr(removed_reason, length('compacted into ') + 1) AS part_id FROM parts \
                        WHERE starts_with(removed_reason, 'compacted into ')), \
                     written AS ( \
                        SELECT bytes, rows, (epoch_us(created_at) - epoch_us(max_ts)) / 1e6 AS lag_seconds FROM parts \
                        WHERE cluster = {cluster_literal} AND CAST(created_at AS DATE) = CAST({day} AS DATE) \
                          AND part_id NOT IN (SELECT part_id FROM compaction_outputs)) \
                     SELECT count(*), coalesce(sum(bytes), 0)::BIGINT, coalesce(sum(rows), 0)::BIGINT, \
                            avg(lag_seconds), max(lag_seconds) FROM written"
                ),
                [],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, Option<f64>>(3)?,
                        row.get::<_, Option<f64>>(4)?,
                    ))
                },
            )
            .map_err(duckdb_error("reading the manifest"))?;
        health.parts_written = parts.max(0) as u64;
        health.part_bytes = bytes.max(0) as u64;
        health.rows_written = rows.max(0) as u64;
        health.mean_commit_lag_seconds = mean_lag;
        health.max_commit_lag_seconds = max_lag;
        health.parts_for_day = count(
            connection,
            "counting the day's parts",
            &format!(
                "SELECT count(*) FROM parts WHERE cluster = {cluster_literal} AND date = CAST({day} AS DATE) AND removed_at IS NULL"
            ),
        )?;
    }
    let quarantine_file = data_dir
        .join("quarantine")
        .join(format!("{}.jsonl", date.format("%Y-%m-%d")));
    match std::fs::read_to_string(&quarantine_file) {
        Ok(text) => {
            for line in text.lines().filter(|line| !line.trim().is_empty()) {
                let reason =
                    serde_json::from_str::<crate::store::quarantine::QuarantineEntry>(line)
                        .map(|entry| entry.reason)
                        .unwrap_or_else(|_| "unreadable_quarantine_entry".to_string());
                *health.quarantined_by_reason.entry(reason).or_default() += 1;
                health.quarantined_total += 1;
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ReportError::Io {
                path: quarantine_file,
                source,
            });
        }
    }
    Ok(health)
}

//! Shared helpers of the model tests: audit events written by DuckDB itself
//! into auditlens's Parquet layout.

#![allow(dead_code)]

use std::path::Path;

/// Writes the rows of `requests_sql` (columns ts, audit_id, username,
/// identity_kind, verb, api_group, resource, subresource, namespace, name,
/// source_ip, user_agent, response_code) as events of cluster `default` under
/// `<data_dir>/events/cluster=default/date=D/hour=H/`.
pub fn write_events(data_dir: &Path, requests_sql: &str) {
    let events_dir = data_dir.join("events");
    std::fs::create_dir_all(&events_dir).expect("events folder");
    let connection = duckdb::Connection::open_in_memory().expect("duckdb");
    let sql = format!(
        "COPY (
            SELECT
                ts, ts + INTERVAL 5 MILLISECOND AS stage_ts, audit_id, 'ResponseComplete' AS stage,
                'Metadata' AS level, verb, '/api/v1/' || resource AS request_uri, username,
                ['system:authenticated'] AS user_groups, CAST(NULL AS VARCHAR) AS impersonated_user,
                identity_kind, CAST(NULL AS VARCHAR) AS sa_namespace, CAST(NULL AS VARCHAR) AS sa_name,
                source_ip, [source_ip] AS source_ips, user_agent, api_group, 'v1' AS api_version,
                resource, subresource, namespace, name, CAST(response_code AS INTEGER) AS response_code,
                CAST(NULL AS VARCHAR) AS response_reason,
                CASE WHEN response_code = 403 THEN 'forbid' ELSE 'allow' END AS decision,
                CAST(NULL AS VARCHAR) AS authz_reason, CAST(NULL AS VARCHAR) AS annotations,
                CAST(NULL AS VARCHAR) AS request_object, CAST(NULL AS VARCHAR) AS response_object,
                'audit.log' AS source_file, 'test' AS source_fingerprint,
                CAST(row_number() OVER (ORDER BY ts, audit_id) AS BIGINT) AS source_offset,
                'default' AS cluster, strftime(ts, '%Y-%m-%d') AS date, strftime(ts, '%H') AS hour
            FROM ({requests_sql}) ORDER BY ts
        ) TO '{}' (FORMAT parquet, PARTITION_BY (cluster, date, hour), OVERWRITE_OR_IGNORE true, FILENAME_PATTERN 'part-{{uuid}}')",
        events_dir.display()
    );
    connection.execute_batch(&sql).expect("writing test events");
}

/// A week of a small cluster, 2026-11-20 to 2026-11-27, plus one attack:
/// four humans (alice, bob, carol, dave) working in their own namespace from
/// their own address; six service accounts listing and watching config
/// maps; `eve` makes a single request. On 2026-11-26 14:00-15:00 alice reads
/// 40 secrets across 8 namespaces she never used, from a new address; those
/// requests' audit IDs start with `attack-`.
pub const SMALL_CLUSTER_SQL: &str = "
WITH hours AS (
    SELECT TIMESTAMP '2026-11-20 00:00:00' + to_hours(h) AS hour_start, h
    FROM range(0, 168) AS t(h)
),
humans AS (
    SELECT * FROM (VALUES ('alice', 0), ('bob', 1), ('carol', 2), ('dave', 3)) AS t(username, number)
),
human_requests AS (
    SELECT
        hour_start + to_seconds(CAST(r * 150 + hash(username, h, r) % 100 AS BIGINT)) AS ts,
        username || '-' || CAST(h AS VARCHAR) || '-' || CAST(r AS VARCHAR) AS audit_id,
        username, 'user' AS identity_kind,
        CASE hash(username, h, r) % 10 WHEN 0 THEN 'update' WHEN 1 THEN 'list' ELSE 'get' END AS verb,
        '' AS api_group,
        CASE hash(username, h, r, 1) % 4 WHEN 0 THEN 'configmaps' ELSE 'pods' END AS resource,
        CAST(NULL AS VARCHAR) AS subresource,
        'team-' || CAST(number AS VARCHAR) AS namespace,
        'object-' || CAST(hash(username, h, r) % 7 AS VARCHAR) AS name,
        '10.1.0.' || CAST(number AS VARCHAR) AS source_ip,
        'kubectl/v1.34.1 (linux/amd64) kubernetes/abc1234' AS user_agent,
        200 AS response_code
    FROM hours, humans, range(0, 24) AS r(r)
    WHERE r < 12 + hash(username, h) % 12
      AND (username <> 'alice' OR hash(h, 99) % 10 <> 0)
),
services AS (
    SELECT 'system:serviceaccount:apps:sa-' || CAST(n AS VARCHAR) AS username, n AS number FROM range(0, 6) AS t(n)
),
service_requests AS (
    SELECT
        hour_start + to_seconds(CAST(r * 60 + hash(username, h, r) % 50 AS BIGINT)) AS ts,
        'sa-' || CAST(number AS VARCHAR) || '-' || CAST(h AS VARCHAR) || '-' || CAST(r AS VARCHAR) AS audit_id,
        username, 'service_account' AS identity_kind,
        CASE hash(username, h, r) % 3 WHEN 0 THEN 'watch' ELSE 'list' END AS verb,
        '' AS api_group, 'configmaps' AS resource, CAST(NULL AS VARCHAR) AS subresource,
        'apps' AS namespace, CAST(NULL AS VARCHAR) AS name,
        '10.2.0.' || CAST(number AS VARCHAR) AS source_ip,
        'controller/v0.1.0' AS user_agent,
        200 AS response_code
    FROM hours, services, range(0, 60) AS r(r)
    WHERE r < 40 + hash(username, h) % 20
),
attack AS (
    SELECT
        TIMESTAMP '2026-11-26 14:05:00' + to_seconds(r * 20) AS ts,
        'attack-' || CAST(r AS VARCHAR) AS audit_id,
        'alice' AS username, 'user' AS identity_kind, 'get' AS verb, '' AS api_group,
        'secrets' AS resource, CAST(NULL AS VARCHAR) AS subresource,
        'prod-' || CAST(r % 8 AS VARCHAR) AS namespace,
        'secret-' || CAST(r AS VARCHAR) AS name,
        '203.0.113.7' AS source_ip,
        'kubectl/v1.34.1 (linux/amd64) kubernetes/abc1234' AS user_agent,
        200 AS response_code
    FROM range(0, 40) AS t(r)
),
single AS (
    SELECT TIMESTAMP '2026-11-23 10:00:00' AS ts, 'eve-1' AS audit_id, 'eve' AS username, 'user' AS identity_kind,
        'get' AS verb, '' AS api_group, 'pods' AS resource, CAST(NULL AS VARCHAR) AS subresource,
        'default' AS namespace, 'x' AS name, '10.9.9.9' AS source_ip, 'curl/8.0' AS user_agent, 200 AS response_code
)
SELECT * FROM human_requests
UNION ALL SELECT * FROM service_requests
UNION ALL SELECT * FROM attack
UNION ALL SELECT * FROM single
";

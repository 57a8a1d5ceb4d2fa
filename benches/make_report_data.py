#!/usr/bin/env python3
"""Writes a data folder for measuring `auditlens report`: DAYS days of audit
events as Hive-partitioned Parquet in auditlens' layout (schema of
src/store/schema.rs), PER_DAY events a day spread over the 24 hours, ending
on 2026-11-26. Uses the duckdb Python package.

Usage: python3 benches/make_report_data.py DATA_DIR [PER_DAY=2000000] [DAYS=8]
Then:  /usr/bin/time -v auditlens report --data-dir DATA_DIR --date 2026-11-26 --format html --out /tmp/r.html
"""
import os, sys, duckdb

data_dir = sys.argv[1]
per_day = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000
days = int(sys.argv[3]) if len(sys.argv) > 3 else 8

os.makedirs(os.path.join(data_dir, 'events'), exist_ok=True)
con = duckdb.connect()
con.execute(f"""
COPY (
  WITH base AS (
    SELECT d, i, hash(d * 1000003 + i) AS h,
           TIMESTAMP '2026-11-26 00:00:00' - INTERVAL (d) DAY + to_microseconds(CAST(i * (86400000000 // {per_day}) AS BIGINT)) AS ts
    FROM range({days}) t(d), range({per_day}) s(i)
  )
  SELECT
    ts, ts AS stage_ts, 'id-' || d || '-' || i AS audit_id, 'ResponseComplete' AS stage, 'Metadata' AS level,
    ['get', 'list', 'watch', 'update', 'patch', 'create', 'delete'][1 + (h % 7)::INTEGER] AS verb,
    '/api/v1/x' AS request_uri,
    CASE WHEN h % 10 < 5 THEN 'system:node:worker-' || (h // 10 % 50)
         WHEN h % 10 < 8 THEN 'system:serviceaccount:team-' || (h // 10 % 40) || ':app'
         WHEN h % 10 < 9 THEN 'system:kube-controller-manager'
         ELSE ['alice', 'bob', 'carol', 'dave'][1 + (h // 10 % 4)::INTEGER] || '@example.com' END AS username,
    ['system:authenticated'] AS user_groups, NULL::VARCHAR AS impersonated_user,
    CASE WHEN h % 10 < 5 THEN 'node' WHEN h % 10 < 8 THEN 'service_account' WHEN h % 10 < 9 THEN 'control_plane' ELSE 'user' END AS identity_kind,
    NULL::VARCHAR AS sa_namespace, NULL::VARCHAR AS sa_name,
    '10.0.' || (h // 7 % 4) || '.' || (h // 13 % 250) AS source_ip, ['10.0.0.1'] AS source_ips, 'kubectl/v1.31.0' AS user_agent,
    CASE WHEN h % 997 = 0 THEN 'rbac.authorization.k8s.io' ELSE NULL END AS api_group, 'v1' AS api_version,
    CASE WHEN h % 997 = 0 THEN 'rolebindings' ELSE ['pods', 'configmaps', 'secrets', 'leases', 'nodes', 'events'][1 + (h // 3 % 6)::INTEGER] END AS resource,
    NULL::VARCHAR AS subresource, 'team-' || (h // 11 % 40) AS namespace, 'obj-' || (h // 17 % 1000) AS name,
    CASE WHEN h % 211 = 0 THEN 403 ELSE 200 END::INTEGER AS response_code, NULL::VARCHAR AS response_reason,
    CASE WHEN h % 211 = 0 THEN 'forbid' ELSE 'allow' END AS decision, NULL::VARCHAR AS authz_reason,
    NULL::VARCHAR AS annotations, NULL::VARCHAR AS request_object, NULL::VARCHAR AS response_object,
    'audit.log' AS source_file, 'fp-bench' AS source_fingerprint, i::BIGINT AS source_offset,
    'default' AS cluster, CAST(ts AS DATE) AS date, hour(ts) AS hour
  FROM base ORDER BY ts
) TO '{data_dir}/events' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (cluster, date, hour), OVERWRITE_OR_IGNORE true)
""")
print(f"wrote {per_day * days} events over {days} days to {data_dir}/events")

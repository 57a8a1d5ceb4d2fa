-- Synthetic audit events for the model benchmarks, written by DuckDB itself
-- into auditlens's Parquet layout (events/cluster=C/date=D/hour=H/*.parquet).
-- Placeholders: {{OUT_DIR}} (the events folder), {{START}} (a TIMESTAMP
-- literal), {{EVENTS_PER_SECOND}}, {{SECONDS}}.
-- 320 identities with skewed volume: 16 humans, 200 service accounts, 64 nodes,
-- 40 control-plane users. Each keeps to a home namespace and a home address
-- most of the time; humans read secrets and exec now and then.
COPY (
    WITH numbered AS (
        SELECT
            n,
            {{START}} + to_microseconds(CAST(n * 1000000 // {{EVENTS_PER_SECOND}} AS BIGINT)) AS ts,
            hash(n) AS h1,
            hash(n + 1000000007) AS h2
        FROM range(0, CAST({{EVENTS_PER_SECOND}} AS BIGINT) * {{SECONDS}}) AS t(n)
    ),
    actors AS (
        SELECT
            *,
            -- a skewed actor index in [0, 320): low indexes are busy
            CAST(floor(320 * power((h1 % 1000003) / 1000003.0, 2.2)) AS INTEGER) AS actor,
            (h2 % 1000) AS roll
        FROM numbered
    ),
    shaped AS (
        SELECT
            *,
            CASE
                WHEN actor < 40 THEN 'control_plane'
                WHEN actor < 104 THEN 'node'
                WHEN actor < 304 THEN 'service_account'
                ELSE 'user'
            END AS identity_kind
        FROM actors
    )
    SELECT
        ts,
        ts + to_microseconds(CAST(2000 + roll * 37 AS BIGINT)) AS stage_ts,
        md5(CAST(n AS VARCHAR)) AS audit_id,
        'ResponseComplete' AS stage,
        'Metadata' AS level,
        CASE
            WHEN roll < 450 THEN 'get'
            WHEN roll < 700 THEN 'list'
            WHEN roll < 800 THEN 'watch'
            WHEN roll < 880 THEN 'update'
            WHEN roll < 940 THEN 'patch'
            WHEN roll < 975 THEN 'create'
            ELSE 'delete'
        END AS verb,
        '/api/v1/namespaces/ns-' || CAST(actor % 40 AS VARCHAR) || '/pods' AS request_uri,
        CASE identity_kind
            WHEN 'control_plane' THEN 'system:kube-controller-' || CAST(actor AS VARCHAR)
            WHEN 'node' THEN 'system:node:node-' || CAST(actor AS VARCHAR)
            WHEN 'service_account' THEN 'system:serviceaccount:ns-' || CAST(actor % 40 AS VARCHAR) || ':sa-' || CAST(actor AS VARCHAR)
            ELSE 'user-' || CAST(actor AS VARCHAR) || '@example.com'
        END AS username,
        ['system:authenticated'] AS user_groups,
        CAST(NULL AS VARCHAR) AS impersonated_user,
        identity_kind,
        CASE WHEN identity_kind = 'service_account' THEN 'ns-' || CAST(actor % 40 AS VARCHAR) END AS sa_namespace,
        CASE WHEN identity_kind = 'service_account' THEN 'sa-' || CAST(actor AS VARCHAR) END AS sa_name,
        '10.0.' || CAST(actor // 200 AS VARCHAR) || '.' || CAST(actor % 200 + CASE WHEN roll = 999 THEN 50 ELSE 0 END AS VARCHAR) AS source_ip,
        ['10.0.' || CAST(actor // 200 AS VARCHAR) || '.' || CAST(actor % 200 AS VARCHAR)] AS source_ips,
        CASE identity_kind
            WHEN 'user' THEN 'kubectl/v1.34.1 (linux/amd64) kubernetes/abc1234'
            WHEN 'node' THEN 'kubelet/v1.34.1 (linux/amd64) kubernetes/abc1234'
            ELSE 'controller/v1.34.1 (linux/amd64) kubernetes/abc1234'
        END AS user_agent,
        CASE WHEN roll % 11 = 0 THEN 'rbac.authorization.k8s.io' WHEN roll % 5 = 0 THEN 'apps' ELSE '' END AS api_group,
        'v1' AS api_version,
        CASE
            WHEN identity_kind = 'user' AND roll % 13 = 0 THEN 'secrets'
            WHEN roll % 11 = 0 THEN 'roles'
            WHEN roll % 5 = 0 THEN 'deployments'
            WHEN roll % 3 = 0 THEN 'configmaps'
            ELSE 'pods'
        END AS resource,
        CASE WHEN identity_kind = 'user' AND roll % 17 = 0 THEN 'exec' END AS subresource,
        'ns-' || CAST(CASE WHEN roll % 23 = 0 THEN (actor + roll) % 40 ELSE actor % 40 END AS VARCHAR) AS namespace,
        'object-' || CAST(h2 % 500 AS VARCHAR) AS name,
        CASE WHEN roll % 97 = 0 THEN 403 ELSE 200 END AS response_code,
        CAST(NULL AS VARCHAR) AS response_reason,
        CASE WHEN roll % 97 = 0 THEN 'forbid' ELSE 'allow' END AS decision,
        CAST(NULL AS VARCHAR) AS authz_reason,
        CAST(NULL AS VARCHAR) AS annotations,
        CAST(NULL AS VARCHAR) AS request_object,
        CAST(NULL AS VARCHAR) AS response_object,
        '/var/log/kubernetes/audit.log' AS source_file,
        'benchmark' AS source_fingerprint,
        n * 400 AS source_offset,
        'bench' AS cluster,
        strftime(ts, '%Y-%m-%d') AS date,
        strftime(ts, '%H') AS hour
    FROM shaped
    ORDER BY ts
) TO '{{OUT_DIR}}' (FORMAT parquet, PARTITION_BY (cluster, date, hour), COMPRESSION zstd, ROW_GROUP_SIZE 131072, OVERWRITE_OR_IGNORE true);

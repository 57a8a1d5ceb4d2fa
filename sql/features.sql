-- auditlens model features: one row per (cluster, identity, window).
--
-- Installed by the model layer into a session that already has the `events`
-- view of sql/views.sql. Analysts can call it themselves:
--   SELECT * FROM identity_window_features(
--       TIMESTAMP '2026-11-26 00:00:00', TIMESTAMP '2026-11-27 00:00:00', 3600, 604800, true);
-- Arguments: range_start, range_end (TIMESTAMP, UTC; windows start at
-- range_start and only whole windows ending at or before range_end are
-- returned), window_seconds, lookback_seconds (how far back the novelty
-- counts look for a namespace, address or user agent this identity used),
-- has_unfinished_requests (see `unfinished` below; true is always correct).
--
-- One request counts once: like the `requests` view, its final stage wins
-- (Panic > ResponseComplete > ResponseStarted > RequestReceived). The macro
-- reads `events` directly with the time range as a filter, so DuckDB prunes
-- the date partitions and the row groups by their `ts` statistics; the
-- `requests` view would have to rank every stored row before filtering.
-- An identity with no request in a window has no row for it.
-- The column list after the key columns is the set of features a model spec
-- (models/*.toml) may name.
-- The stage rows from `scan_start` to `range_end`: `date` prunes partitions,
-- `ts` row groups. A macro rather than a CTE, so each use below is its own
-- scan that reads only the columns it needs (a CTE used three times would be
-- materialised whole, audit IDs included).
CREATE OR REPLACE MACRO feature_stage_rows(scan_start, range_end) AS TABLE
SELECT
    cluster, audit_id, ts, stage, username, identity_kind, verb, api_group,
    resource, subresource, namespace, source_ip, user_agent, response_code, decision
FROM events
WHERE date >= CAST(CAST(scan_start AS TIMESTAMP) AS DATE)
  AND date <= CAST(CAST(range_end AS TIMESTAMP) AS DATE)
  AND ts >= CAST(scan_start AS TIMESTAMP)
  AND ts < CAST(range_end AS TIMESTAMP);

CREATE OR REPLACE MACRO identity_window_features(range_start, range_end, window_seconds, lookback_seconds, has_unfinished_requests) AS TABLE
WITH
unfinished AS (
    -- Stage rows of requests whose final stage (ResponseComplete or Panic) is
    -- not stored: kept once, at their latest stage. Reading every audit_id
    -- is the costliest step of this query, so the caller passes
    -- has_unfinished_requests = false when the range holds no such stage row
    -- (one cheap count of the `stage` column) and DuckDB drops this branch.
    SELECT * FROM feature_stage_rows(
        CAST(range_start AS TIMESTAMP) - to_seconds(CAST(lookback_seconds AS BIGINT)), range_end) pending
    WHERE has_unfinished_requests
      AND pending.stage NOT IN ('ResponseComplete', 'Panic')
      AND NOT EXISTS (
          SELECT 1 FROM feature_stage_rows(
              CAST(range_start AS TIMESTAMP) - to_seconds(CAST(lookback_seconds AS BIGINT)), range_end) finished
          WHERE has_unfinished_requests
            AND finished.stage IN ('ResponseComplete', 'Panic')
            AND finished.cluster = pending.cluster
            AND finished.ts = pending.ts
            AND finished.audit_id = pending.audit_id)
    QUALIFY row_number() OVER (
        PARTITION BY cluster, audit_id
        ORDER BY CASE stage WHEN 'ResponseStarted' THEN 1 ELSE 0 END DESC) = 1
),
one_row_per_request AS (
    SELECT * FROM feature_stage_rows(
        CAST(range_start AS TIMESTAMP) - to_seconds(CAST(lookback_seconds AS BIGINT)), range_end)
    WHERE stage IN ('ResponseComplete', 'Panic')
    UNION ALL
    SELECT * FROM unfinished
),
cells AS (
    -- One pass over the raw rows: requests counted per identity, window and
    -- every value a feature looks at. Everything below reads this far
    -- smaller relation.
    SELECT
        cluster,
        username AS identity,
        identity_kind,
        -- floor, not `//`: integer division truncates toward zero and would
        -- fold the hour before range_start into the first window.
        CAST(floor((epoch_us(ts) - epoch_us(CAST(range_start AS TIMESTAMP)))
            / (CAST(window_seconds AS BIGINT) * 1000000.0)) AS BIGINT) AS window_index,
        verb, api_group, resource, subresource, namespace, source_ip, user_agent,
        (response_code IN (401, 403) OR decision = 'forbid') AS denied,
        coalesce(response_code >= 500, false) AS server_error,
        count(*) AS requests
    FROM one_row_per_request
    GROUP BY ALL
),
activity AS (
    SELECT
        cluster,
        identity,
        window_index,
        any_value(identity_kind) AS identity_kind,
        sum(requests) AS request_count,
        count(DISTINCT verb) AS distinct_verbs,
        count(DISTINCT resource) AS distinct_resources,
        count(DISTINCT namespace) AS distinct_namespaces,
        count(DISTINCT source_ip) AS distinct_source_ips,
        count(DISTINCT user_agent) AS distinct_user_agents,
        coalesce(sum(requests) FILTER (WHERE verb IN ('create', 'update', 'patch', 'delete', 'deletecollection')), 0) AS write_count,
        coalesce(sum(requests) FILTER (WHERE denied), 0) AS denied_count,
        coalesce(sum(requests) FILTER (WHERE resource = 'secrets' AND verb IN ('get', 'list', 'watch')), 0) AS secret_reads,
        coalesce(sum(requests) FILTER (WHERE subresource IN ('exec', 'attach', 'portforward')), 0) AS exec_calls,
        coalesce(sum(requests) FILTER (WHERE api_group = 'rbac.authorization.k8s.io'
                  AND verb IN ('create', 'update', 'patch', 'delete', 'deletecollection')), 0) AS rbac_writes,
        coalesce(sum(requests) FILTER (WHERE verb IN ('list', 'watch')), 0) AS list_watch_count,
        coalesce(sum(requests) FILTER (WHERE server_error), 0) AS server_error_count
    FROM cells
    GROUP BY cluster, identity, window_index
),
uses AS (
    -- Each namespace, address and user agent an identity used, per window,
    -- and how many windows earlier it last used the same value.
    SELECT
        cluster, identity, window_index, dimension,
        window_index - lag(window_index) OVER (
            PARTITION BY cluster, identity, dimension, value ORDER BY window_index
        ) AS windows_since_last_use
    FROM (
        SELECT DISTINCT cluster, identity, window_index, 'namespace' AS dimension, namespace AS value
        FROM cells WHERE namespace IS NOT NULL AND namespace <> ''
        UNION ALL
        SELECT DISTINCT cluster, identity, window_index, 'source_ip', source_ip
        FROM cells WHERE source_ip IS NOT NULL AND source_ip <> ''
        UNION ALL
        SELECT DISTINCT cluster, identity, window_index, 'user_agent', user_agent
        FROM cells WHERE user_agent IS NOT NULL AND user_agent <> ''
    )
),
first_window AS (
    SELECT cluster, identity, min(window_index) AS first_window_index
    FROM activity
    GROUP BY cluster, identity
),
novelty AS (
    -- A value is new in a window when the identity was active before but did
    -- not use the value within the lookback. An identity's first window
    -- counts nothing as new: there is no history to compare with.
    SELECT
        uses.cluster, uses.identity, uses.window_index,
        count(*) FILTER (WHERE uses.dimension = 'namespace') AS new_namespaces,
        count(*) FILTER (WHERE uses.dimension = 'source_ip') AS new_source_ips,
        count(*) FILTER (WHERE uses.dimension = 'user_agent') AS new_user_agents
    FROM uses
    JOIN first_window USING (cluster, identity)
    WHERE uses.window_index > first_window.first_window_index
      AND (uses.windows_since_last_use IS NULL
           OR uses.windows_since_last_use * CAST(window_seconds AS BIGINT) > CAST(lookback_seconds AS BIGINT))
    GROUP BY uses.cluster, uses.identity, uses.window_index
),
windows AS (
    SELECT
        activity.*,
        CAST(range_start AS TIMESTAMP) + to_seconds(window_index * CAST(window_seconds AS BIGINT)) AS window_start,
        CAST(range_start AS TIMESTAMP) + to_seconds((window_index + 1) * CAST(window_seconds AS BIGINT)) AS window_end
    FROM activity
    WHERE window_index >= 0
)
SELECT
    w.cluster,
    w.identity,
    w.identity_kind,
    w.window_start,
    w.window_end,
    CAST(w.request_count AS DOUBLE) AS request_count,
    ln(1 + w.request_count) AS log_request_count,
    CAST(w.distinct_verbs AS DOUBLE) AS distinct_verbs,
    CAST(w.distinct_resources AS DOUBLE) AS distinct_resources,
    CAST(w.distinct_namespaces AS DOUBLE) AS distinct_namespaces,
    CAST(w.distinct_source_ips AS DOUBLE) AS distinct_source_ips,
    CAST(w.distinct_user_agents AS DOUBLE) AS distinct_user_agents,
    CAST(w.write_count AS DOUBLE) / w.request_count AS write_fraction,
    CAST(w.denied_count AS DOUBLE) / w.request_count AS denied_fraction,
    CAST(w.denied_count AS DOUBLE) AS denied_requests,
    CAST(w.secret_reads AS DOUBLE) AS secret_reads,
    CAST(w.exec_calls AS DOUBLE) AS exec_calls,
    CAST(w.rbac_writes AS DOUBLE) AS rbac_writes,
    CAST(w.list_watch_count AS DOUBLE) / w.request_count AS list_watch_share,
    CAST(w.server_error_count AS DOUBLE) / w.request_count AS server_error_fraction,
    sin(2 * pi() * hour(w.window_start) / 24.0) AS hour_sin,
    cos(2 * pi() * hour(w.window_start) / 24.0) AS hour_cos,
    CAST(isodow(w.window_start) >= 6 AS DOUBLE) AS weekend,
    CAST(coalesce(n.new_namespaces, 0) AS DOUBLE) AS new_namespaces,
    CAST(coalesce(n.new_source_ips, 0) AS DOUBLE) AS new_source_ips,
    CAST(coalesce(n.new_user_agents, 0) AS DOUBLE) AS new_user_agents
FROM windows w
LEFT JOIN novelty n USING (cluster, identity, window_index)
WHERE w.window_end <= CAST(range_end AS TIMESTAMP)
ORDER BY w.cluster, w.identity, w.window_start;

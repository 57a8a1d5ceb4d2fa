-- auditlens views, created at start in every DuckDB session auditlens opens
-- (the daemon's catalog, `auditlens sql`, the gRPC query runner).
-- {{EVENTS_SOURCE}} is replaced by read_parquet over
-- <data>/events/cluster=*/date=*/hour=*/*.parquet with Hive partitioning,
-- or by a typed empty relation before the first part is written.
-- Timestamps are TIMESTAMP in UTC.

-- events: every stored row, one per audit event and stage, with the
-- partition columns cluster (VARCHAR), date (DATE) and hour (INTEGER).
CREATE OR REPLACE VIEW events AS
SELECT * FROM {{EVENTS_SOURCE}};

-- requests: one row per request: the columns of its final stage (Panic >
-- ResponseComplete > ResponseStarted > RequestReceived).
--
-- A request is (cluster, audit_id, ts, username, resource, namespace). The API
-- server writes every stage of a request from one event, so the stages share
-- requestReceivedTimestamp (ts), user and objectRef: these columns add no
-- split for real logs. They are in the key because DuckDB pushes a filter on a
-- window's partition columns below the window: `WHERE username = ...` or a ts
-- range reads and ranks only the matching rows instead of ranking every stored
-- row first (docs/ARCHITECTURE.md, "The requests view"). They also keep apart
-- two different requests that carry the same audit ID (a client may set the
-- Audit-ID header), which an audit_id-only key would merge into one.
-- stage_rank(stage): which stage of a request wins when they are folded into
-- one row: Panic > ResponseComplete > ResponseStarted > RequestReceived.
CREATE OR REPLACE MACRO stage_rank(stage) AS
    CASE stage
        WHEN 'Panic' THEN 3
        WHEN 'ResponseComplete' THEN 2
        WHEN 'ResponseStarted' THEN 1
        ELSE 0
    END;

CREATE OR REPLACE VIEW requests AS
SELECT * EXCLUDE (stage_rank, request_rank)
FROM (
    SELECT
        ranked.*,
        row_number() OVER (
            PARTITION BY ranked.cluster, ranked.audit_id, ranked.ts, ranked.username,
                         ranked.resource, ranked.namespace
            ORDER BY ranked.stage_rank DESC, ranked.stage_ts DESC, ranked.source_offset DESC
        ) AS request_rank
    FROM (SELECT e.*, stage_rank(e.stage) AS stage_rank FROM events e) ranked
)
WHERE request_rank = 1;

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

-- requests: one row per request (cluster, audit_id): the columns of its final
-- stage (Panic > ResponseComplete > ResponseStarted > RequestReceived), with
-- ts the earliest time any stage of it was received.
CREATE OR REPLACE VIEW requests AS
SELECT * EXCLUDE (stage_rank, request_rank)
FROM (
    SELECT
        ranked.* REPLACE (min(ranked.ts) OVER (PARTITION BY ranked.cluster, ranked.audit_id) AS ts),
        row_number() OVER (
            PARTITION BY ranked.cluster, ranked.audit_id
            ORDER BY ranked.stage_rank DESC, ranked.stage_ts DESC, ranked.source_offset DESC
        ) AS request_rank
    FROM (
        SELECT
            e.*,
            CASE e.stage
                WHEN 'Panic' THEN 3
                WHEN 'ResponseComplete' THEN 2
                WHEN 'ResponseStarted' THEN 1
                ELSE 0
            END AS stage_rank
        FROM events e
    ) ranked
)
WHERE request_rank = 1;

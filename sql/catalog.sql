-- Tables of the daemon's catalog (data/catalog.duckdb) that several modules
-- share. Each statement is idempotent; the catalog runs this file at start.
-- Times are TIMESTAMP in UTC.

-- Every anomaly any layer produced. Never deleted by triage or suppression;
-- `seq` grows monotonically so a Watch client can resume after the last one it saw.
CREATE SEQUENCE IF NOT EXISTS anomaly_seq START 1;
CREATE TABLE IF NOT EXISTS anomalies (
    seq BIGINT NOT NULL DEFAULT nextval('anomaly_seq'),
    id VARCHAR NOT NULL PRIMARY KEY,
    detector VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,              -- rule | novelty | model
    identity VARCHAR NOT NULL,          -- the authenticated actor
    cluster VARCHAR NOT NULL,
    window_start TIMESTAMP NOT NULL,
    window_end TIMESTAMP NOT NULL,
    severity VARCHAR NOT NULL,          -- info | low | medium | high | critical
    score DOUBLE NOT NULL,
    title VARCHAR NOT NULL,
    reasons VARCHAR[] NOT NULL,
    evidence_audit_ids VARCHAR[] NOT NULL,
    incident_id VARCHAR,                -- the incident it was grouped into
    detected_at TIMESTAMP NOT NULL
);

-- Anomalies of one identity close together, grouped so a person sees a handful a day.
CREATE TABLE IF NOT EXISTS incidents (
    id VARCHAR NOT NULL PRIMARY KEY,
    identity VARCHAR NOT NULL,
    cluster VARCHAR NOT NULL,
    first_seen TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL,
    severity VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    anomaly_count BIGINT NOT NULL,
    detectors VARCHAR[] NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- The manifest: every part auditlens wrote, and which source bytes it holds.
-- An index over data/events/: rebuilt from the parts' own metadata at start.
CREATE TABLE IF NOT EXISTS parts (
    part_id VARCHAR NOT NULL PRIMARY KEY,
    path VARCHAR NOT NULL,              -- relative to the data folder
    cluster VARCHAR NOT NULL,
    date DATE NOT NULL,
    hour INTEGER NOT NULL,
    flush_seq BIGINT NOT NULL,
    rows BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    min_ts TIMESTAMP,
    max_ts TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    removed_at TIMESTAMP,               -- compacted away or expired by retention
    removed_reason VARCHAR
);
CREATE TABLE IF NOT EXISTS part_sources (
    part_id VARCHAR NOT NULL,
    source_id VARCHAR NOT NULL,
    min_offset BIGINT NOT NULL,
    end_offset BIGINT NOT NULL,         -- exclusive end of the last line
    rows BIGINT NOT NULL
);

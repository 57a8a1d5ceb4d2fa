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

-- ---------------------------------------------------------------- feedback
-- The feedback loop (src/feedback): what people said about anomalies and
-- incidents, the suppressions they asked for, and the thresholds that moved
-- because of them. All three are append-only histories: current state is a
-- query over them, nothing is overwritten or deleted.

-- Set when an anomaly is recorded: the suppression (`sup-…`) or learnt
-- threshold (`thr-…`) that kept it from alerting. NULL: it alerts. Suppressed
-- anomalies are stored and counted like any other.
ALTER TABLE anomalies ADD COLUMN IF NOT EXISTS suppressed_by VARCHAR;

-- Every triage verdict, in order. The current state of an incident is its
-- latest row; an anomaly's is the latest of its own rows and its incident's
-- rows given after the anomaly was stored.
CREATE SEQUENCE IF NOT EXISTS triage_seq START 1;
CREATE TABLE IF NOT EXISTS triage_events (
    seq BIGINT NOT NULL DEFAULT nextval('triage_seq'),
    subject_kind VARCHAR NOT NULL,      -- incident | anomaly
    subject_id VARCHAR NOT NULL,
    state VARCHAR NOT NULL,             -- open | acknowledged | resolved_true_positive | resolved_benign
    reason VARCHAR,                     -- mandatory for resolved_benign
    actor VARCHAR NOT NULL,
    decided_at TIMESTAMP NOT NULL
);

-- "Detector D for identity/namespace/source pattern P is expected", with a
-- reason, an owner and an expiry. Patterns are globs (`*`, `?`); a NULL
-- namespace or source pattern matches anything. Config-file suppressions are
-- synced here at start (origin `config`); removing one from the file retires it.
CREATE TABLE IF NOT EXISTS suppressions (
    id VARCHAR NOT NULL PRIMARY KEY,
    detector VARCHAR NOT NULL,          -- a detector, or a prefix ending in `*`
    identity_pattern VARCHAR NOT NULL,
    namespace_pattern VARCHAR,
    source_pattern VARCHAR,
    reason VARCHAR NOT NULL,
    owner VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    origin VARCHAR NOT NULL,            -- verdict:<triage seq> | config
    retired_at TIMESTAMP                -- config entry removed from the file
);

-- Every automatic threshold change, with why. The threshold in force for a
-- (detector, identity) is the newest row; identity `*` is the detector-wide one.
-- Anomalies scoring below it are stored and marked `suppressed_by = id`.
CREATE TABLE IF NOT EXISTS threshold_changes (
    id VARCHAR NOT NULL PRIMARY KEY,
    detector VARCHAR NOT NULL,
    identity VARCHAR NOT NULL,          -- an identity, or `*` for every identity
    old_min_score DOUBLE NOT NULL,
    new_min_score DOUBLE NOT NULL,
    bound DOUBLE NOT NULL,              -- the highest it may go (model spec / [feedback.thresholds])
    benign_verdicts BIGINT NOT NULL,    -- verdicts that moved it
    reason VARCHAR NOT NULL,
    changed_at TIMESTAMP NOT NULL
);

-- RBAC findings accepted as known exceptions from the command line
-- (`auditlens rbac accept`): the catalog twin of `[rbac.exceptions.*]`, with
-- the rules of suppressions (reason, owner, expiry; never updated in place).
-- Unset selector columns match anything; the audit reads the rows in force
-- at its own clock, so an expired one stops applying without a restart.
CREATE TABLE IF NOT EXISTS rbac_exceptions (
    id VARCHAR NOT NULL PRIMARY KEY,
    check_id VARCHAR NOT NULL,          -- R01 ... R32
    subject_kind VARCHAR,
    subject_name VARCHAR,
    subject_namespace VARCHAR,
    binding VARCHAR,                    -- as printed in findings
    role VARCHAR,
    namespace VARCHAR,
    reason VARCHAR NOT NULL,
    owner VARCHAR NOT NULL,
    accepted_by VARCHAR NOT NULL,
    accepted_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- Least-privilege recommendations marked applied (`rbac recommend
-- --mark-applied`): the rules recommended, each with its scope. Every audit
-- compares the identity's grants with the newest row for it.
CREATE TABLE IF NOT EXISTS rbac_applied_recommendations (
    id VARCHAR NOT NULL PRIMARY KEY,
    identity VARCHAR NOT NULL,
    groups_json VARCHAR NOT NULL,       -- groups its requests carried
    rules_json VARCHAR NOT NULL,        -- [{"namespace": ns|null, "rule": PolicyRule}]
    applied_by VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL
);

-- Roles, role bindings and their cluster-wide kinds created, changed or deleted in a period.
-- One row per request (its final stage), like the `requests` view, but ranked
-- after the filter: only the RBAC writes of the period are read and ranked.
-- @param since = 1970-01-01 00:00:00 | start of the period (UTC, inclusive)
-- @param until = 9999-12-31 00:00:00 | end of the period (UTC, exclusive)
SELECT ts, username, verb, resource, namespace, name, response_code, source_ip, audit_id
FROM events
WHERE api_group = 'rbac.authorization.k8s.io'
  AND verb IN ('create', 'update', 'patch', 'delete', 'deletecollection', 'escalate', 'bind')
  AND ts >= CAST($since AS TIMESTAMP) AND ts < CAST($until AS TIMESTAMP)
QUALIFY row_number() OVER (
    PARTITION BY cluster, audit_id, ts
    ORDER BY stage_rank(stage) DESC, stage_ts DESC, source_offset DESC
) = 1
ORDER BY ts;

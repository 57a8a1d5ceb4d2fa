-- Roles, role bindings and their cluster-wide kinds created, changed or deleted in a period.
-- @param since = 1970-01-01 00:00:00 | start of the period (UTC, inclusive)
-- @param until = 9999-12-31 00:00:00 | end of the period (UTC, exclusive)
SELECT ts, username, verb, resource, namespace, name, response_code, source_ip, audit_id
FROM requests
WHERE api_group = 'rbac.authorization.k8s.io'
  AND verb IN ('create', 'update', 'patch', 'delete', 'deletecollection', 'escalate', 'bind')
  AND ts >= CAST($since AS TIMESTAMP) AND ts < CAST($until AS TIMESTAMP)
ORDER BY ts;

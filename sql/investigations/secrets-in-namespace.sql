-- Who read, listed, watched or changed secrets in one namespace.
-- @param namespace | the namespace to look at
-- @param since = 1970-01-01 00:00:00 | start of the period (UTC, inclusive)
-- @param until = 9999-12-31 00:00:00 | end of the period (UTC, exclusive)
SELECT ts, username, identity_kind, verb, name AS secret, response_code, source_ip, user_agent, audit_id
FROM requests
WHERE resource = 'secrets'
  AND namespace = $namespace
  AND ts >= CAST($since AS TIMESTAMP) AND ts < CAST($until AS TIMESTAMP)
ORDER BY ts;

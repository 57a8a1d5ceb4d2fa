-- Denied (HTTP 403) requests per identity, verb and resource, most denied first.
-- Reads `events`: a request's status is on its final stage only (RequestReceived
-- carries none), so each denied request is one row here, with no ranking of
-- every stored row as the `requests` view would do.
-- @param since = 1970-01-01 00:00:00 | start of the period (UTC, inclusive)
-- @param until = 9999-12-31 00:00:00 | end of the period (UTC, exclusive)
SELECT username, verb, resource, count(DISTINCT audit_id) AS denied, min(ts) AS first_denied,
       max(ts) AS last_denied, count(DISTINCT namespace) AS namespaces
FROM events
WHERE response_code = 403
  AND ts >= CAST($since AS TIMESTAMP) AND ts < CAST($until AS TIMESTAMP)
GROUP BY username, verb, resource
ORDER BY denied DESC, username, verb, resource;

-- Interactive sessions into pods: exec, attach and port-forward, who and where.
-- @param since = 1970-01-01 00:00:00 | start of the period (UTC, inclusive)
-- @param until = 9999-12-31 00:00:00 | end of the period (UTC, exclusive)
SELECT ts, username, subresource, namespace, name AS pod, response_code, source_ip, user_agent, request_uri, audit_id
FROM requests
WHERE resource = 'pods'
  AND subresource IN ('exec', 'attach', 'portforward')
  AND ts >= CAST($since AS TIMESTAMP) AND ts < CAST($until AS TIMESTAMP)
ORDER BY ts;

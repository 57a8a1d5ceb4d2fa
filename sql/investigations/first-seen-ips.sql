-- Source IPs each identity used for the first time in a period (never before `since`).
-- Reads `events` (every stage) and counts distinct audit IDs: the same answer as
-- `requests` without ranking every stored row.
-- @param since = 1970-01-01 00:00:00 | start of the period (UTC, inclusive)
-- @param until = 9999-12-31 00:00:00 | end of the period (UTC, exclusive)
SELECT username, source_ip, min(ts) AS first_seen, count(DISTINCT audit_id) AS requests
FROM events
WHERE source_ip IS NOT NULL AND ts < CAST($until AS TIMESTAMP)
GROUP BY username, source_ip
HAVING min(ts) >= CAST($since AS TIMESTAMP)
ORDER BY first_seen, username;

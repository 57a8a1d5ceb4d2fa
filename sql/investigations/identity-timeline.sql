-- Everything one identity did, in time order.
-- @param identity | the username (e.g. system:serviceaccount:ns:name)
-- @param since = 1970-01-01 00:00:00 | start of the period (UTC, inclusive)
-- @param until = 9999-12-31 00:00:00 | end of the period (UTC, exclusive)
SELECT ts, verb, coalesce(api_group, '') AS api_group, resource, subresource, namespace, name,
       response_code, source_ip, user_agent, impersonated_user, audit_id
FROM requests
WHERE username = $identity
  AND ts >= CAST($since AS TIMESTAMP) AND ts < CAST($until AS TIMESTAMP)
ORDER BY ts;

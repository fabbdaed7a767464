-- kind: timeline
-- title: Daily SMB guest logons allowed and rejected, per client host and per server
-- description: Allowed: client 31022 (the client let a guest logon through) and server 3023 (a guest session).
-- description: Rejected: client 31017 (the client refused) and server 551 for Guest or no user, 1007 and 1009 (the server refused anonymous or guest access).
-- description: A client's events count for the client (scope host) and for the server it named (scope server); a server's events count for the server. Drawn as the report's charts and top lists.
-- requires: Microsoft-Windows-SMBClient: 31017, 31022
-- requires: Microsoft-Windows-SMBServer: 551, 1007, 1009, 3023
WITH ev AS (
  SELECT CAST(CAST(time_created AS DATE) AS VARCHAR) AS day,
         lower(CAST(provider AS VARCHAR)) AS prov, event_id,
         split_part(CAST(computer AS VARCHAR), '.', 1) AS computer, server_name, user_name
  FROM smb_events WHERE time_created IS NOT NULL
),
client AS (
  SELECT * FROM ev WHERE prov = 'microsoft-windows-smbclient' AND event_id IN (31017, 31022)
),
server AS (
  SELECT * FROM ev WHERE prov = 'microsoft-windows-smbserver'
    AND (event_id IN (3023, 1007, 1009)
         OR (event_id = 551 AND (lower(user_name) = 'guest' OR user_name IS NULL)))
),
rows AS (
  SELECT day, 'host' AS scope, computer AS name,
         CASE WHEN event_id = 31022 THEN 1 ELSE 0 END AS allowed,
         CASE WHEN event_id = 31017 THEN 1 ELSE 0 END AS rejected
  FROM client
  UNION ALL
  SELECT day, 'server', coalesce(server_name, '(unknown)'),
         CASE WHEN event_id = 31022 THEN 1 ELSE 0 END,
         CASE WHEN event_id = 31017 THEN 1 ELSE 0 END
  FROM client
  UNION ALL
  SELECT day, 'server', computer,
         CASE WHEN event_id = 3023 THEN 1 ELSE 0 END,
         CASE WHEN event_id = 3023 THEN 0 ELSE 1 END
  FROM server
)
SELECT day, scope, name, CAST(sum(allowed) AS BIGINT) AS allowed,
       CAST(sum(rejected) AS BIGINT) AS rejected
FROM rows WHERE name IS NOT NULL
GROUP BY day, scope, name
ORDER BY scope, name, day;

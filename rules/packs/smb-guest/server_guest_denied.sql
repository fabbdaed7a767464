-- id: server_guest_denied
-- title: Windows server denied guest or anonymous SMB access
-- severity: low
-- description: A Windows server refused a guest or anonymous client: SMB session authentication failure for Guest or an empty user (SMBServer 551), anonymous access denied to a share (1007) or to the server (1009), or a failed logon of the Guest account (4625).
-- description: One finding per server (host) and client address. Clients still configured to use guest show here; a client denied by 3 or more servers is probing (servers_denying, probe).
-- tags: attack.t1135, attack.t1021.002, attack.discovery, smb, guest
-- references: https://learn.microsoft.com/windows-server/storage/file-server/enable-insecure-guest-logons-smb2-and-smb3
-- falsepositives: Printers and scanners with a stale guest configuration
-- requires: Microsoft-Windows-SMBServer: 551, 1007, 1009
-- requires: Microsoft-Windows-Security-Auditing: 4625
WITH ev AS (
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, client_ip AS client,
         user_name, client_name, event_id, time_created, status
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-smbserver'
    AND (event_id IN (1007, 1009)
         OR (event_id = 551 AND (user_name IS NULL OR lower(user_name) = 'guest'
                                 OR lower(user_name) LIKE '%\guest')))
  UNION ALL
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1), client_ip, 'Guest', workstation,
         event_id, time_created, status
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-security-auditing' AND event_id = 4625
    AND lower(user_name) = 'guest'
),
top_user AS (
  SELECT host, client, user_name FROM (
    SELECT host, client, user_name,
           row_number() OVER (PARTITION BY host, client ORDER BY count(*) DESC, user_name) AS rn
    FROM ev WHERE user_name IS NOT NULL AND user_name <> '-'
    GROUP BY host, client, user_name)
  WHERE rn = 1
),
probing AS (
  SELECT client, count(DISTINCT host) AS servers_denying FROM ev WHERE client IS NOT NULL GROUP BY client
),
g AS (
  SELECT host, client, min(time_created) AS first_seen, max(time_created) AS last_seen,
         count(*) AS count,
         array_to_string(array_sort(array_agg(DISTINCT CAST(event_id AS VARCHAR))), ', ') AS event_ids,
         array_to_string(array_sort(array_agg(DISTINCT ntstatus_name(status))), ', ') AS statuses,
         array_to_string(array_sort(array_agg(DISTINCT client_name)), ', ') AS client_names
  FROM ev GROUP BY host, client
)
SELECT g.host, CAST(NULL AS VARCHAR) AS server, u.user_name, g.first_seen, g.last_seen, g.count,
       concat('denied x', g.count, ' from ', coalesce(g.client, '?'), ' (events ', g.event_ids,
              CASE WHEN g.statuses <> '' THEN concat('; ', g.statuses) ELSE '' END, ')') AS evidence,
       g.client, nullif(g.client_names, '') AS client_names,
       coalesce(p.servers_denying, 1) AS servers_denying,
       coalesce(p.servers_denying, 1) >= 3 AS probe
FROM g LEFT JOIN top_user u ON g.host = u.host AND (g.client IS NOT DISTINCT FROM u.client)
       LEFT JOIN probing p ON g.client = p.client

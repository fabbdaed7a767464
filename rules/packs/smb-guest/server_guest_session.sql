-- id: server_guest_session
-- title: Windows server accepted a guest or anonymous SMB session
-- severity: medium
-- description: A Windows server logged a network logon (4624, logon type 3) of the Guest account (SID ending in -501) or of ANONYMOUS LOGON (S-1-5-7) that then opened a share other than IPC$ (5140/5145 with the same logon id), or logged an SMB guest session (SMBServer 3023) with no such logon in Security.
-- description: host is the server, client the client's address; shares lists what the sessions opened. Anonymous sessions that only touch IPC$ (null sessions) are left out.
-- tags: attack.t1078.001, attack.t1021.002, attack.initial_access, smb, guest
-- references: https://learn.microsoft.com/windows-server/storage/file-server/enable-insecure-guest-logons-smb2-and-smb3
-- references: https://learn.microsoft.com/windows/security/threat-protection/auditing/event-4624
-- falsepositives: Public drop shares for scanners and kiosks that are meant to be anonymous
-- requires: Microsoft-Windows-Security-Auditing: 4624, 5140, 5145
-- requires: Microsoft-Windows-SMBServer: 3023
WITH logons AS (
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, logon_id,
         max(time_created) AS logon_at, max(client_ip) AS client, max(user_name) AS user_name,
         max(target_sid) AS sid, max(workstation) AS workstation,
         max(auth_package) AS auth_package
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-security-auditing' AND event_id = 4624
    AND logon_type = 3
    AND (target_sid = 'S-1-5-7' OR (target_sid LIKE 'S-1-5-21-%' AND target_sid LIKE '%-501'))
  GROUP BY split_part(CAST(computer AS VARCHAR), '.', 1), logon_id
),
-- Share access in guest sessions only: the semi-join on logon_id runs before the per-row
-- host name work, so the fleet's other share checks cost one hash probe each.
share_rows AS (
  SELECT DISTINCT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, logon_id, share_name
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-security-auditing' AND event_id IN (5140, 5145)
    AND logon_id IN (SELECT logon_id FROM logons)
    AND share_name IS NOT NULL AND NOT ends_with(share_name, '\ipc$') AND share_name <> 'ipc$'
),
per_logon AS (SELECT host, logon_id, count(*) AS n FROM share_rows GROUP BY host, logon_id),
kept AS (
  SELECT l.* FROM logons l LEFT JOIN per_logon p ON l.host = p.host AND l.logon_id = p.logon_id
  WHERE l.sid <> 'S-1-5-7' OR p.n IS NOT NULL
),
shares AS (
  SELECT k.host, k.client, k.user_name,
         array_to_string(array_sort(array_agg(DISTINCT s.share_name)), ', ') AS shares
  FROM kept k JOIN share_rows s ON k.host = s.host AND k.logon_id = s.logon_id
  GROUP BY k.host, k.client, k.user_name
),
smb3023 AS (
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, client_ip AS client,
         max(user_name) AS user_name, max(client_name) AS workstation,
         min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS n
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-smbserver' AND event_id = 3023
  GROUP BY split_part(CAST(computer AS VARCHAR), '.', 1), client_ip
),
g AS (
  SELECT host, client, user_name, min(logon_at) AS first_seen, max(logon_at) AS last_seen,
         count(*) AS count, max(sid) AS sid,
         array_to_string(array_sort(array_agg(DISTINCT workstation)), ', ') AS workstations
  FROM kept GROUP BY host, client, user_name
),
from_logons AS (
  SELECT g.host, g.client, g.user_name, g.first_seen, g.last_seen, g.count,
         concat('4624 type 3 as ', g.user_name, ' (', g.sid, ') from ', coalesce(g.client, '?'),
                ' x', g.count, CASE WHEN m.n IS NOT NULL THEN concat('; 3023 x', m.n) ELSE '' END,
                CASE WHEN s.shares IS NOT NULL THEN concat('; shares: ', s.shares) ELSE '' END) AS evidence,
         s.shares, nullif(g.workstations, '') AS workstations
  FROM g LEFT JOIN shares s
         ON g.host = s.host AND (g.client IS NOT DISTINCT FROM s.client) AND (g.user_name IS NOT DISTINCT FROM s.user_name)
       LEFT JOIN smb3023 m ON g.host = m.host AND (g.client IS NOT DISTINCT FROM m.client)
),
only_3023 AS (
  SELECT m.host, m.client, m.user_name, m.first_seen, m.last_seen, m.n AS count,
         concat('SMBServer 3023 guest session from ', coalesce(m.client, '?'), ' x', m.n,
                ' (no matching 4624 in Security)') AS evidence,
         CAST(NULL AS VARCHAR) AS shares, m.workstation AS workstations
  FROM smb3023 m LEFT JOIN (SELECT DISTINCT host, client FROM g) x
       ON m.host = x.host AND (m.client IS NOT DISTINCT FROM x.client)
  WHERE x.host IS NULL
),
s AS (SELECT * FROM from_logons UNION ALL SELECT * FROM only_3023)
SELECT host, CAST(NULL AS VARCHAR) AS server, user_name, first_seen, last_seen, count, evidence,
       client, shares, workstations
FROM s

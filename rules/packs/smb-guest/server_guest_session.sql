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
-- Each CTE below is named once: DataFusion inlines a CTE wherever it is named, so every extra
-- reference grows the plan that is planned and optimized (13 scans of smb_events when the shares
-- and the 3023-only sessions were CTEs of their own, 4 in this shape; over the 10.5 M-event
-- store's relation, planning it took 0.54x the time and running it 0.40x).
-- Each kept logon once, with the shares it opened (NULL when none): anonymous logons only when
-- they opened a share.
per_logon AS (
  SELECT host, logon_id, array_agg(share_name) AS names FROM share_rows GROUP BY host, logon_id
),
kept AS (
  SELECT l.*, p.names FROM logons l LEFT JOIN per_logon p ON l.host = p.host AND l.logon_id = p.logon_id
  WHERE l.sid <> 'S-1-5-7' OR p.names IS NOT NULL
),
g AS (
  SELECT host, client, user_name, min(logon_at) AS first_seen, max(logon_at) AS last_seen,
         count(*) AS count, max(sid) AS sid,
         array_to_string(array_sort(array_agg(DISTINCT workstation)), ', ') AS workstations,
         CASE WHEN count(names) > 0 THEN array_to_string(array_sort(array_distinct(flatten(
           array_agg(names) FILTER (WHERE names IS NOT NULL)))), ', ') END AS shares
  FROM kept GROUP BY host, client, user_name
),
smb3023 AS (
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, client_ip AS client,
         max(user_name) AS user_name, max(client_name) AS workstation,
         min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS n
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-smbserver' AND event_id = 3023
  GROUP BY split_part(CAST(computer AS VARCHAR), '.', 1), client_ip
),
-- One join gives both kinds of row: logons (with the 3023 sessions from the same client, if
-- any: g.count is never NULL on that side) and 3023 sessions that no logon explains.
s AS (
  SELECT g.count IS NOT NULL AS from_logons, g.host AS g_host, g.client AS g_client,
         g.user_name AS g_user, g.first_seen AS g_first, g.last_seen AS g_last, g.count AS g_count,
         g.sid, g.shares, g.workstations AS g_workstations,
         m.host AS m_host, m.client AS m_client, m.user_name AS m_user, m.first_seen AS m_first,
         m.last_seen AS m_last, m.n, m.workstation AS m_workstation
  FROM g FULL JOIN smb3023 m ON g.host = m.host AND (g.client IS NOT DISTINCT FROM m.client)
)
SELECT CASE WHEN from_logons THEN g_host ELSE m_host END AS host,
       CAST(NULL AS VARCHAR) AS server,
       CASE WHEN from_logons THEN g_user ELSE m_user END AS user_name,
       CASE WHEN from_logons THEN g_first ELSE m_first END AS first_seen,
       CASE WHEN from_logons THEN g_last ELSE m_last END AS last_seen,
       CASE WHEN from_logons THEN g_count ELSE n END AS count,
       CASE WHEN from_logons THEN
         concat('4624 type 3 as ', g_user, ' (', sid, ') from ', coalesce(g_client, '?'),
                ' x', g_count, CASE WHEN n IS NOT NULL THEN concat('; 3023 x', n) ELSE '' END,
                CASE WHEN shares IS NOT NULL THEN concat('; shares: ', shares) ELSE '' END)
       ELSE concat('SMBServer 3023 guest session from ', coalesce(m_client, '?'), ' x', n,
                   ' (no matching 4624 in Security)') END AS evidence,
       CASE WHEN from_logons THEN g_client ELSE m_client END AS client,
       CASE WHEN from_logons THEN shares END AS shares,
       CASE WHEN from_logons THEN nullif(g_workstations, '') ELSE m_workstation END AS workstations
FROM s

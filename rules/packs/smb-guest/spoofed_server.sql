-- id: spoofed_server
-- title: Suspected spoofed SMB server taking guest logons
-- severity: critical
-- description: A server never seen before in the store (no SMB client event of any kind names it earlier) takes guest logons (31022) from 3 or more clients within 10 minutes of its first appearance, the footprint of a rogue server reached through name poisoning (LLMNR/NBT-NS/mDNS) or a hijacked name;
-- description: or clients log on as guest to a server whose name is a public IP address. hosts lists the clients; count the guest logons in the window; user_name is the most frequent user name among them.
-- tags: attack.t1557.001, attack.t1187, attack.credential_access, smb, guest
-- references: https://attack.mitre.org/techniques/T1557/001/
-- references: https://learn.microsoft.com/windows-server/storage/file-server/enable-insecure-guest-logons-smb2-and-smb3
-- falsepositives: A new NAS rolled out to many clients at once; a store that starts just before a server's first use
-- requires: Microsoft-Windows-SMBClient: 30803, 30804, 30805, 30806, 31001, 31010, 31017, 31022
WITH named AS (
  SELECT CASE WHEN event_id = 31010 THEN split_part(share_name, '\', 1) ELSE server_name END AS server,
         split_part(CAST(computer AS VARCHAR), '.', 1) AS host, event_id, time_created, record_id,
         user_name
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-smbclient'
    AND event_id IN (30803, 30804, 30805, 30806, 31001, 31010, 31017, 31022)
    AND time_created IS NOT NULL
),
first_seen AS (
  SELECT server, min(time_created) AS seen FROM named WHERE server IS NOT NULL GROUP BY server
),
-- Every guest logon (31022) to a named server, with the server's first sighting and whether
-- the logon came within 10 minutes of it. Each CTE here is named once or twice: DataFusion
-- inlines a CTE wherever it is named, and the plan that is planned and optimized grows with
-- every reference (14 scans of smb_events when the burst and the new servers were CTEs of
-- their own and read three times each, 8 in this shape).
guest AS (
  SELECT n.server, n.host, n.time_created, n.user_name, f.seen,
         n.time_created >= f.seen AND to_unixtime(n.time_created) - to_unixtime(f.seen) <= 600
           AS in_burst
  FROM named n JOIN first_seen f ON n.server = f.server
  WHERE n.event_id = 31022
),
-- A new server: 3 or more clients log on as guest within 10 minutes of its first sighting.
per_server AS (
  SELECT server, count(DISTINCT CASE WHEN in_burst THEN host END) >= 3 AS is_new,
         min(time_created) AS first_guest
  FROM guest GROUP BY server
),
-- The guest logons of each finding: the burst at a new server, or every guest logon to a
-- public IP address (seen: its first).
hits AS (
  SELECT g.server, g.host, g.time_created, g.user_name,
         CASE WHEN p.is_new THEN g.seen ELSE p.first_guest END AS seen,
         CASE WHEN p.is_new THEN 'new server with guest logons from many clients within 10 minutes'
              ELSE 'guest logons to a public IP address' END AS reason
  FROM guest g JOIN per_server p ON g.server = p.server
  WHERE (p.is_new AND g.in_burst)
     OR (NOT p.is_new AND regexp_like(g.server, '^[0-9.]+$|^[0-9a-f:]+$')
         AND NOT coalesce(is_private_ip(g.server), true))
),
ranked_users AS (
  SELECT server, user_name,
         row_number() OVER (PARTITION BY server ORDER BY count(*) DESC, user_name) AS rn
  FROM hits WHERE user_name IS NOT NULL AND user_name <> '-'
  GROUP BY server, user_name
),
s AS (
  SELECT server, min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,
         count(DISTINCT host) AS clients,
         array_to_string(array_sort(array_agg(DISTINCT host)), ', ') AS hosts,
         min(seen) AS seen, max(reason) AS reason
  FROM hits GROUP BY server
)
SELECT CAST(NULL AS VARCHAR) AS host, s.server, u.user_name,
       s.first_seen, s.last_seen, s.count,
       concat('first seen ', CAST(s.seen AS VARCHAR), '; ', s.count, ' guest logon(s) (31022) from ',
              s.clients, ' client(s): ', s.hosts) AS evidence,
       s.hosts, s.clients, s.reason
FROM s LEFT JOIN ranked_users u ON s.server = u.server AND u.rn = 1

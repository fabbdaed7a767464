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
burst AS (
  SELECT n.server, n.host, n.time_created, n.user_name, f.seen
  FROM named n JOIN first_seen f ON n.server = f.server
  WHERE n.event_id = 31022 AND n.time_created >= f.seen
    AND to_unixtime(n.time_created) - to_unixtime(f.seen) <= 600
),
new_server AS (
  SELECT server FROM burst GROUP BY server HAVING count(DISTINCT host) >= 3
),
-- The guest logons of each finding: the burst at a new server, or every guest logon to a
-- public IP address (seen: its first).
hits AS (
  SELECT server, host, time_created, user_name, seen,
         'new server with guest logons from many clients within 10 minutes' AS reason
  FROM burst WHERE server IN (SELECT server FROM new_server)
  UNION ALL
  SELECT server, host, time_created, user_name,
         min(time_created) OVER (PARTITION BY server) AS seen,
         'guest logons to a public IP address' AS reason
  FROM named
  WHERE event_id = 31022 AND server IS NOT NULL
    AND regexp_like(server, '^[0-9.]+$|^[0-9a-f:]+$') AND NOT coalesce(is_private_ip(server), true)
    AND server NOT IN (SELECT server FROM new_server)
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

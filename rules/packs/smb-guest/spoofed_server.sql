-- id: spoofed_server
-- title: Suspected spoofed SMB server taking guest logons
-- severity: critical
-- description: A server never seen before in the store (no SMB client event of any kind names it earlier) takes guest logons (31022) from 3 or more clients within 10 minutes of its first appearance, the footprint of a rogue server reached through name poisoning (LLMNR/NBT-NS/mDNS) or a hijacked name;
-- description: or clients log on as guest to a server whose name is a public IP address. hosts lists the clients; count the guest logons in the window.
-- tags: attack.t1557.001, attack.t1187, attack.credential_access, smb, guest
-- references: https://attack.mitre.org/techniques/T1557/001/
-- references: https://learn.microsoft.com/windows-server/storage/file-server/enable-insecure-guest-logons-smb2-and-smb3
-- falsepositives: A new NAS rolled out to many clients at once; a store that starts just before a server's first use
-- requires: Microsoft-Windows-SMBClient: 30803, 30804, 30805, 30806, 31001, 31010, 31017, 31022
WITH named AS (
  SELECT CASE WHEN event_id = 31010 THEN split_part(share_name, '\', 1) ELSE server_name END AS server,
         split_part(CAST(computer AS VARCHAR), '.', 1) AS host, event_id, time_created, record_id
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-smbclient'
    AND event_id IN (30803, 30804, 30805, 30806, 31001, 31010, 31017, 31022)
    AND time_created IS NOT NULL
),
first_seen AS (
  SELECT server, min(time_created) AS seen FROM named WHERE server IS NOT NULL GROUP BY server
),
burst AS (
  SELECT n.server, n.host, n.time_created, n.record_id, f.seen
  FROM named n JOIN first_seen f ON n.server = f.server
  WHERE n.event_id = 31022 AND n.time_created >= f.seen
    AND to_unixtime(n.time_created) - to_unixtime(f.seen) <= 600
),
new_server AS (
  SELECT server, min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,
         count(DISTINCT host) AS clients,
         array_to_string(array_sort(array_agg(DISTINCT host)), ', ') AS hosts,
         min(seen) AS seen,
         'new server with guest logons from many clients within 10 minutes' AS reason
  FROM burst GROUP BY server
  HAVING count(DISTINCT host) >= 3
),
public_ip AS (
  SELECT server, min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,
         count(DISTINCT host) AS clients,
         array_to_string(array_sort(array_agg(DISTINCT host)), ', ') AS hosts,
         min(time_created) AS seen,
         'guest logons to a public IP address' AS reason
  FROM named
  WHERE event_id = 31022 AND server IS NOT NULL
    AND regexp_like(server, '^[0-9.]+$|^[0-9a-f:]+$') AND NOT coalesce(is_private_ip(server), true)
    AND server NOT IN (SELECT server FROM new_server)
  GROUP BY server
),
s AS (SELECT * FROM new_server UNION ALL SELECT * FROM public_ip)
SELECT CAST(NULL AS VARCHAR) AS host, server, CAST(NULL AS VARCHAR) AS user_name,
       first_seen, last_seen, count,
       concat('first seen ', CAST(seen AS VARCHAR), '; ', count, ' guest logon(s) (31022) from ',
              clients, ' client(s): ', hosts) AS evidence,
       hosts, clients, reason
FROM s

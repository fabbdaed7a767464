-- id: guest_dependency
-- title: Server that clients still reach only as guest
-- severity: medium
-- kind: inventory
-- description: Two or more clients tried guest logons (31017 rejected or 31022 allowed) to the same server: the server (usually a NAS) depends on guest access, and each of its clients breaks when guest logons are turned off, or stays exposed while they are on.
-- description: Fix the server (give it accounts, turn on signing) before hardening the clients. hosts lists the clients; spoofed servers are reported by spoofed_server instead.
-- tags: smb, guest, inventory
-- references: https://learn.microsoft.com/windows-server/storage/file-server/enable-insecure-guest-logons-smb2-and-smb3
-- falsepositives: None: this is an inventory
-- requires: Microsoft-Windows-SMBClient: 30803, 30804, 30805, 30806, 31001, 31010, 31017, 31022
WITH named AS (
  SELECT CASE WHEN event_id = 31010 THEN split_part(share_name, '\', 1) ELSE server_name END AS server,
         split_part(CAST(computer AS VARCHAR), '.', 1) AS host, event_id, time_created, user_name
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-smbclient'
    AND event_id IN (30803, 30804, 30805, 30806, 31001, 31010, 31017, 31022)
    AND time_created IS NOT NULL
),
-- The same test as spoofed_server: those servers are not dependencies but attacks.
first_seen AS (
  SELECT server, min(time_created) AS seen FROM named WHERE server IS NOT NULL GROUP BY server
),
spoofed AS (
  SELECT n.server
  FROM named n JOIN first_seen f ON n.server = f.server
  WHERE n.event_id = 31022 AND n.time_created >= f.seen
    AND to_unixtime(n.time_created) - to_unixtime(f.seen) <= 600
  GROUP BY n.server HAVING count(DISTINCT n.host) >= 3
),
guest AS (
  SELECT * FROM named
  WHERE event_id IN (31017, 31022) AND server IS NOT NULL
    AND server NOT IN (SELECT server FROM spoofed)
),
top_user AS (
  SELECT server, user_name FROM (
    SELECT server, user_name,
           row_number() OVER (PARTITION BY server ORDER BY count(*) DESC, user_name) AS rn
    FROM guest WHERE user_name IS NOT NULL AND user_name <> '-'
    GROUP BY server, user_name)
  WHERE rn = 1
),
g AS (
  SELECT server, min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,
         count(DISTINCT host) AS clients,
         array_to_string(array_sort(array_agg(DISTINCT host)), ', ') AS hosts,
         sum(CASE WHEN event_id = 31022 THEN 1 ELSE 0 END) AS allowed,
         sum(CASE WHEN event_id = 31017 THEN 1 ELSE 0 END) AS rejected
  FROM guest GROUP BY server
  HAVING count(DISTINCT host) >= 2
)
SELECT CAST(NULL AS VARCHAR) AS host, g.server, u.user_name, g.first_seen, g.last_seen, g.count,
       concat(g.clients, ' client(s) tried guest logons: ', g.allowed, ' allowed (31022), ',
              g.rejected, ' rejected (31017); clients: ', g.hosts) AS evidence,
       g.hosts, g.clients, g.allowed, g.rejected
FROM g LEFT JOIN top_user u ON g.server = u.server

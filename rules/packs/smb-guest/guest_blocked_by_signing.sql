-- id: guest_blocked_by_signing
-- title: Guest access broken by an upgrade that requires SMB signing
-- severity: medium
-- description: The host was upgraded (Kernel-General 12 shows a higher OS build than at its first boot) to build 26100 (Windows 11 24H2) or later, where SMB signing is required and guest logons are off by default, and from then on it rejects guest logons (31017).
-- description: Users of a guest-only NAS lose their shares after the upgrade; re-enabling guest logons (and disabling signing) is the wrong fix: give the NAS accounts and signing instead. server is set when the host rejected one server only.
-- tags: smb, guest, signing, operations
-- references: https://learn.microsoft.com/windows-server/storage/file-server/smb-signing
-- references: https://learn.microsoft.com/windows-server/storage/file-server/enable-insecure-guest-logons-smb2-and-smb3
-- falsepositives: Hosts that rejected guest before the upgrade as well
-- requires: Microsoft-Windows-Kernel-General: 12
-- requires: Microsoft-Windows-SMBClient: 31017
WITH boots AS (
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, time_created,
         CAST(json_as_text(data, 'BuildVersion') AS BIGINT) AS build
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-kernel-general' AND event_id = 12
    AND time_created IS NOT NULL
),
first_boot AS (
  SELECT host, build AS first_build FROM (
    SELECT host, build, row_number() OVER (PARTITION BY host ORDER BY time_created) AS rn FROM boots)
  WHERE rn = 1
),
marks AS (
  SELECT b.host, min(f.first_build) AS from_build, max(b.build) AS to_build,
         min(CASE WHEN b.build > f.first_build THEN b.time_created END) AS upgraded_at,
         min(CASE WHEN b.build >= 26100 THEN b.time_created END) AS signing_at
  FROM boots b JOIN first_boot f ON b.host = f.host
  GROUP BY b.host
),
rejects AS (
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, server_name AS server,
         user_name, time_created, record_id
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-smbclient' AND event_id = 31017
),
blocked AS (
  SELECT r.*, m.from_build, m.to_build, m.upgraded_at
  FROM rejects r JOIN marks m ON r.host = m.host
  WHERE m.upgraded_at IS NOT NULL AND m.signing_at IS NOT NULL
    AND r.time_created >= greatest(m.upgraded_at, m.signing_at)
),
servers AS (
  SELECT host, count(DISTINCT server) AS n, max(server) AS server FROM rejects GROUP BY host
),
top_user AS (
  SELECT host, user_name FROM (
    SELECT host, user_name,
           row_number() OVER (PARTITION BY host ORDER BY count(*) DESC, user_name) AS rn
    FROM blocked WHERE user_name IS NOT NULL AND user_name <> '-'
    GROUP BY host, user_name)
  WHERE rn = 1
),
g AS (
  SELECT host, min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,
         min(from_build) AS from_build, max(to_build) AS to_build, min(upgraded_at) AS upgraded_at,
         array_to_string(array_sort(array_agg(DISTINCT server)), ', ') AS servers
  FROM blocked GROUP BY host
)
SELECT g.host, CASE WHEN s.n = 1 THEN s.server END AS server, u.user_name,
       g.first_seen, g.last_seen, g.count,
       concat('upgraded from build ', g.from_build, ' to ', g.to_build, ' at ',
              CAST(g.upgraded_at AS VARCHAR), ' (Kernel-General 12); then ', g.count,
              ' guest logon(s) rejected (31017) to ', g.servers) AS evidence,
       g.from_build, g.to_build, g.upgraded_at, g.servers
FROM g LEFT JOIN servers s ON g.host = s.host
       LEFT JOIN top_user u ON g.host = u.host

-- id: guest_blocked_by_signing
-- title: Guest access broken by an upgrade that requires SMB signing
-- severity: medium
-- description: The host was upgraded to build 26100 (Windows 11 24H2) or later, where SMB signing is required and guest logons are off by default: a Kernel-General 12 boot on such a build right after a boot on an older one. It then rejected guest logons (31017) before it booted an older build again (a rollback ends the period; a later upgrade starts a new one).
-- description: One finding per upgrade boot; the evidence names it (build before and after, time, record). Users of a guest-only NAS lose their shares after the upgrade; re-enabling guest logons (and disabling signing) is the wrong fix: give the NAS accounts and signing instead. server is set when the rejects name one server only.
-- tags: smb, guest, signing, operations
-- references: https://learn.microsoft.com/windows-server/storage/file-server/smb-signing
-- references: https://learn.microsoft.com/windows-server/storage/file-server/enable-insecure-guest-logons-smb2-and-smb3
-- falsepositives: Hosts that rejected guest before the upgrade as well
-- requires: Microsoft-Windows-Kernel-General: 12
-- requires: Microsoft-Windows-SMBClient: 31017
WITH boots AS (
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, time_created, file_id, record_id,
         CAST(json_as_text(data, 'BuildVersion') AS BIGINT) AS build
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-kernel-general' AND event_id = 12
    AND time_created IS NOT NULL
),
-- Each host's boot sequence: the build of the boot before, the time of the boot after, and a
-- run number that grows at each boot on a signing build that does not follow one.
seq AS (
  SELECT host, time_created, file_id, record_id, build,
         lag(build) OVER (PARTITION BY host ORDER BY time_created, file_id, record_id) AS prev_build,
         lead(time_created) OVER (PARTITION BY host ORDER BY time_created, file_id, record_id) AS next_boot
  FROM boots
),
runs AS (
  SELECT *, sum(CASE WHEN build >= 26100 AND coalesce(prev_build < 26100, true) THEN 1 ELSE 0 END)
              OVER (PARTITION BY host ORDER BY time_created, file_id, record_id
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
  FROM seq
),
-- A run that starts right after a boot on an older build starts with an upgrade.
upgrades AS (
  SELECT host, run, prev_build AS from_build, build AS to_build, time_created AS upgraded_at,
         file_id AS upgrade_file, record_id AS upgrade_record
  FROM runs WHERE build >= 26100 AND prev_build < 26100
),
-- The time each boot of such a run was up: from the boot to the next one.
periods AS (
  SELECT u.*, r.time_created AS since, r.next_boot AS until
  FROM runs r JOIN upgrades u ON r.host = u.host AND r.run = u.run
  WHERE r.build >= 26100
),
blocked AS (
  SELECT p.host, p.upgrade_file, p.upgrade_record, p.from_build, p.to_build, p.upgraded_at,
         e.server_name AS server, e.user_name, e.time_created
  FROM smb_events e JOIN periods p ON split_part(CAST(e.computer AS VARCHAR), '.', 1) = p.host
  WHERE lower(e.provider) = 'microsoft-windows-smbclient' AND e.event_id = 31017
    AND e.time_created >= p.since AND (p.until IS NULL OR e.time_created < p.until)
),
top_user AS (
  SELECT host, upgrade_file, upgrade_record, user_name FROM (
    SELECT host, upgrade_file, upgrade_record, user_name,
           row_number() OVER (PARTITION BY host, upgrade_file, upgrade_record
                              ORDER BY count(*) DESC, user_name) AS rn
    FROM blocked WHERE user_name IS NOT NULL AND user_name <> '-'
    GROUP BY host, upgrade_file, upgrade_record, user_name)
  WHERE rn = 1
),
g AS (
  SELECT host, upgrade_file, upgrade_record, min(from_build) AS from_build,
         min(to_build) AS to_build, min(upgraded_at) AS upgraded_at,
         min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,
         count(DISTINCT server) AS server_count, max(server) AS server,
         array_to_string(array_sort(array_agg(DISTINCT server)), ', ') AS servers
  FROM blocked GROUP BY host, upgrade_file, upgrade_record
)
SELECT g.host, CASE WHEN g.server_count = 1 THEN g.server END AS server, u.user_name,
       g.first_seen, g.last_seen, g.count,
       concat('upgraded from build ', g.from_build, ' to ', g.to_build, ' at ',
              CAST(g.upgraded_at AS VARCHAR), ' (Kernel-General 12, record ', g.upgrade_record,
              '); then ', g.count, ' guest logon(s) rejected (31017) to ', g.servers) AS evidence,
       g.from_build, g.to_build, g.upgraded_at, g.upgrade_record, g.servers
FROM g LEFT JOIN top_user u
  ON g.host = u.host AND g.upgrade_file = u.upgrade_file AND g.upgrade_record = u.upgrade_record

-- id: fallback_to_guest
-- title: SMB client fell back to a guest logon after a failed credentialed logon
-- severity: high
-- description: A credentialed SMB logon failed (SMBClient 31001, e.g. a wrong password or an unknown account) and within 30 seconds the client logged on to the same server as guest (31022).
-- description: The user believes they are authenticated, but the session is an unsigned guest session, the pattern a spoofed server or a misconfigured NAS produces. count is the number of fallbacks; user_name the account whose logon failed.
-- tags: attack.t1557, attack.t1021.002, attack.credential_access, smb, guest
-- references: https://learn.microsoft.com/windows-server/storage/file-server/enable-insecure-guest-logons-smb2-and-smb3
-- falsepositives: A NAS that accepts any account as guest, used with a mistyped or expired password
-- requires: Microsoft-Windows-SMBClient: 31001, 31022
WITH ev AS (
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, server_name AS server,
         user_name, time_created, event_id, record_id, status
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-smbclient' AND event_id IN (31001, 31022)
    AND server_name IS NOT NULL AND time_created IS NOT NULL
),
allowed AS (SELECT * FROM ev WHERE event_id = 31022),
failed AS (SELECT * FROM ev WHERE event_id = 31001),
-- For each guest logon, the latest failure before it (same host and server).
pairs AS (
  SELECT a.host, a.server, a.time_created AS allowed_at, a.record_id AS allowed_record,
         f.time_created AS failed_at, f.user_name AS failed_user, f.status AS failed_status,
         row_number() OVER (PARTITION BY a.host, a.server, a.record_id, a.time_created
                            ORDER BY f.time_created DESC, f.record_id DESC) AS rn
  FROM allowed a JOIN failed f
    ON a.host = f.host AND a.server = f.server AND f.time_created <= a.time_created
),
fallbacks AS (
  SELECT * FROM pairs
  WHERE rn = 1 AND to_unixtime(allowed_at) - to_unixtime(failed_at) <= 30
),
-- Per host, server and user name first, then per host and server: the fallbacks are named once
-- (DataFusion inlines a CTE wherever it is named, so a second reference would plan, optimize
-- and run the join of failed and allowed logons twice).
hu AS (
  SELECT host, server, failed_user, count(*) AS n, min(failed_at) AS first_seen,
         max(allowed_at) AS last_seen,
         array_agg(DISTINCT ntstatus_name(failed_status)) AS statuses,
         max(to_unixtime(allowed_at) - to_unixtime(failed_at)) AS max_gap_seconds
  FROM fallbacks GROUP BY host, server, failed_user
),
g AS (
  SELECT host, server, min(first_seen) AS first_seen, max(last_seen) AS last_seen,
         sum(n) AS count,
         array_to_string(array_sort(array_distinct(flatten(array_agg(statuses)))), ', ')
           AS failure_status,
         max(max_gap_seconds) AS max_gap_seconds,
         -- The most frequent user name of the failed logons (ties: the first in order).
         array_element(array_agg(failed_user ORDER BY n DESC, failed_user)
                       FILTER (WHERE failed_user IS NOT NULL AND failed_user <> '-'), 1)
           AS user_name
  FROM hu GROUP BY host, server
)
SELECT host, server, user_name, first_seen, last_seen, count,
       concat('SMBClient 31001 (', coalesce(failure_status, 'failed logon'),
              ') then 31022 guest logon within ', max_gap_seconds, ' s, x', count) AS evidence,
       failure_status, max_gap_seconds
FROM g

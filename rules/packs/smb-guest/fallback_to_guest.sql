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
top_user AS (
  SELECT host, server, failed_user AS user_name FROM (
    SELECT host, server, failed_user,
           row_number() OVER (PARTITION BY host, server ORDER BY count(*) DESC, failed_user) AS rn
    FROM fallbacks WHERE failed_user IS NOT NULL AND failed_user <> '-'
    GROUP BY host, server, failed_user)
  WHERE rn = 1
),
g AS (
  SELECT host, server, min(failed_at) AS first_seen, max(allowed_at) AS last_seen,
         count(*) AS count,
         array_to_string(array_sort(array_agg(DISTINCT ntstatus_name(failed_status))), ', ') AS failure_status,
         max(to_unixtime(allowed_at) - to_unixtime(failed_at)) AS max_gap_seconds
  FROM fallbacks GROUP BY host, server
)
SELECT g.host, g.server, u.user_name, g.first_seen, g.last_seen, g.count,
       concat('SMBClient 31001 (', coalesce(g.failure_status, 'failed logon'),
              ') then 31022 guest logon within ', g.max_gap_seconds, ' s, x', g.count) AS evidence,
       g.failure_status, g.max_gap_seconds
FROM g LEFT JOIN top_user u ON g.host = u.host AND g.server = u.server

-- id: client_allowed_guest
-- title: SMB client allowed an insecure guest logon
-- severity: high
-- description: The SMB client logged on to a server as an unauthenticated guest (SMBClient 31022, Windows 11 24H2 / Server 2025 and later with guest auditing on), one finding per client and server.
-- description: Guest sessions are neither signed nor encrypted: a machine in the middle can read and change the files, and a spoofed server can serve anything. user_name is the account named most often.
-- tags: attack.t1021.002, attack.t1557, attack.lateral_movement, smb, guest
-- references: https://learn.microsoft.com/windows-server/storage/file-server/enable-insecure-guest-logons-smb2-and-smb3
-- falsepositives: Known legacy NAS devices during a migration window
-- requires: Microsoft-Windows-SMBClient: 31022
WITH ev AS (
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, server_name AS server,
         user_name, time_created, record_id
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-smbclient' AND event_id = 31022
),
top_user AS (
  SELECT host, server, user_name FROM (
    SELECT host, server, user_name,
           row_number() OVER (PARTITION BY host, server ORDER BY count(*) DESC, user_name) AS rn
    FROM ev WHERE user_name IS NOT NULL AND user_name <> '-'
    GROUP BY host, server, user_name)
  WHERE rn = 1
),
g AS (
  SELECT host, server, min(time_created) AS first_seen, max(time_created) AS last_seen,
         count(*) AS count, min(record_id) AS first_record, max(record_id) AS last_record,
         count(DISTINCT CAST(time_created AS DATE)) AS days,
         array_to_string(array_sort(array_agg(DISTINCT user_name)), ', ') AS users
  FROM ev GROUP BY host, server
)
SELECT g.host, g.server, u.user_name, g.first_seen, g.last_seen, g.count,
       concat('SMBClient 31022 AllowedInsecureGuestAuth x', g.count,
              ' (records ', g.first_record, '..', g.last_record, ')') AS evidence,
       g.days, nullif(g.users, '') AS users
FROM g LEFT JOIN top_user u ON g.host = u.host AND (g.server IS NOT DISTINCT FROM u.server)

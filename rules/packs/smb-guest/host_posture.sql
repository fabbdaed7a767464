-- id: host_posture
-- title: Guest-logon posture per host
-- severity: info
-- kind: inventory
-- description: For every host with SMB guest evidence: whether guest logons are allowed (31022 after the last 31017, or enabled by 31018) or blocked (31017), whether guest auditing is visibly on (31022 is only logged with AuditInsecureGuestLogon),
-- description: the last evidence, and the daily allowed/rejected counts (daily: day allowed/rejected). An inventory for hardening, not an alert.
-- tags: smb, guest, inventory, posture
-- references: https://learn.microsoft.com/windows-server/storage/file-server/enable-insecure-guest-logons-smb2-and-smb3
-- falsepositives: None: this is an inventory
-- requires: Microsoft-Windows-SMBClient: 31017, 31018, 31022
WITH ev AS (
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, event_id, time_created,
         CAST(CAST(time_created AS DATE) AS VARCHAR) AS day
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-smbclient' AND event_id IN (31017, 31018, 31022)
    AND time_created IS NOT NULL
),
daily AS (
  SELECT host, day,
         sum(CASE WHEN event_id = 31022 THEN 1 ELSE 0 END) AS allowed,
         sum(CASE WHEN event_id = 31017 THEN 1 ELSE 0 END) AS rejected
  FROM ev WHERE event_id IN (31017, 31022) GROUP BY host, day
),
daily_text AS (
  SELECT host, string_agg(concat(day, ' ', allowed, '/', rejected), ', ' ORDER BY day) AS daily,
         max(allowed + rejected) AS busiest_day
  FROM daily GROUP BY host
),
g AS (
  SELECT host, min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,
         sum(CASE WHEN event_id = 31022 THEN 1 ELSE 0 END) AS allowed,
         sum(CASE WHEN event_id = 31017 THEN 1 ELSE 0 END) AS rejected,
         sum(CASE WHEN event_id = 31018 THEN 1 ELSE 0 END) AS enabled_events,
         max(CASE WHEN event_id = 31022 THEN time_created END) AS last_allowed,
         max(CASE WHEN event_id = 31017 THEN time_created END) AS last_rejected,
         max(CASE WHEN event_id = 31018 THEN time_created END) AS last_enabled
  FROM ev GROUP BY host
),
p AS (
  SELECT g.*,
         CASE
           WHEN last_allowed IS NOT NULL AND (last_rejected IS NULL OR last_allowed > last_rejected) THEN 'guest allowed'
           WHEN last_rejected IS NOT NULL AND last_enabled IS NOT NULL AND last_enabled > last_rejected THEN 'guest enabled'
           WHEN last_rejected IS NOT NULL THEN 'guest blocked'
           ELSE 'guest enabled'
         END AS posture,
         CASE WHEN allowed > 0 THEN 'on' ELSE 'not seen' END AS auditing
  FROM g
)
SELECT p.host, CAST(NULL AS VARCHAR) AS server, CAST(NULL AS VARCHAR) AS user_name,
       p.first_seen, p.last_seen, p.count,
       concat(p.posture, ': ', p.allowed, ' allowed (31022), ', p.rejected, ' rejected (31017), ',
              p.enabled_events, ' enabled (31018); auditing ', p.auditing) AS evidence,
       p.posture, p.auditing, p.allowed, p.rejected, p.enabled_events, d.daily, d.busiest_day
FROM p LEFT JOIN daily_text d ON p.host = d.host

-- id: insecure_guest_enabled
-- title: Insecure guest logons enabled on a client
-- severity: high
-- description: AllowInsecureGuestAuth is on: SMBClient 31018 (AllowInsecureGuestAuth=1), a registry write of AllowInsecureGuestAuth=1 under LanmanWorkstation\Parameters or the LanmanWorkstation policy key (Security 4657, Sysmon 13),
-- description: or a PowerShell script block running Set-SmbClientConfiguration / Set-SmbServerConfiguration -EnableInsecureGuestLogons $true (4104). One finding per host; mechanisms lists how it was seen, user_name is the account that wrote the registry value.
-- tags: attack.t1112, attack.t1562.001, attack.defense_evasion, smb, guest
-- references: https://learn.microsoft.com/windows-server/storage/file-server/enable-insecure-guest-logons-smb2-and-smb3
-- references: https://learn.microsoft.com/windows/client-management/mdm/policy-csp-lanmanworkstation
-- falsepositives: Sanctioned exceptions for legacy NAS devices (document them and suppress by host)
-- requires: Microsoft-Windows-SMBClient: 31018
-- requires: Microsoft-Windows-Security-Auditing: 4657
-- requires: Microsoft-Windows-Sysmon: 13
-- requires: Microsoft-Windows-PowerShell: 4104
WITH hits AS (
  SELECT computer, time_created, record_id, CAST(NULL AS VARCHAR) AS user_name,
         '31018' AS mechanism,
         concat('31018 ', coalesce(json_as_text(data, 'RegName'), 'AllowInsecureGuestAuth'), '=',
                coalesce(json_as_text(data, 'RegValue'), '?')) AS detail
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-smbclient' AND event_id = 31018
    AND coalesce(json_as_text(data, 'RegValue'), '1') NOT IN ('0', '0x0', '0x00000000')
  UNION ALL
  SELECT computer, time_created, record_id, user_name,
         '4657 registry',
         concat('4657 ', object_name, '\', json_as_text(data, 'ObjectValueName'), ' ',
                coalesce(json_as_text(data, 'OldValue'), '?'), ' -> ',
                coalesce(json_as_text(data, 'NewValue'), '?'), ' by ',
                coalesce(json_as_text(data, 'ProcessName'), '?'))
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-security-auditing' AND event_id = 4657
    AND lower(json_as_text(data, 'ObjectValueName')) = 'allowinsecureguestauth'
    AND lower(object_name) LIKE '%lanmanworkstation%'
    AND coalesce(json_as_text(data, 'NewValue'), '1') NOT IN ('0', '0x0', '0x00000000')
  UNION ALL
  SELECT computer, time_created, record_id, CAST(NULL AS VARCHAR),
         'sysmon 13',
         concat('Sysmon 13 ', object_name, ' = ', coalesce(json_as_text(data, 'Details'), '?'),
                ' by ', coalesce(json_as_text(data, 'Image'), '?'))
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-sysmon' AND event_id = 13
    AND lower(object_name) LIKE '%lanmanworkstation%'
    AND ends_with(lower(object_name), '\allowinsecureguestauth')
    AND lower(coalesce(json_as_text(data, 'Details'), '')) NOT LIKE '%(0x00000000)%'
  UNION ALL
  SELECT computer, time_created, record_id, CAST(NULL AS VARCHAR),
         'powershell 4104',
         concat('4104 ', substr(regexp_replace(json_as_text(data, 'ScriptBlockText'), '\s+', ' ', 'g'), 1, 160))
  FROM smb_events
  WHERE lower(provider) = 'microsoft-windows-powershell' AND event_id = 4104
    AND (regexp_like(json_as_text(data, 'ScriptBlockText'),
                     '(?i)Set-Smb(Client|Server)Configuration[^\n;|]*-EnableInsecureGuestLogons\s*:?\s*(\$true|1)\b')
         OR regexp_like(json_as_text(data, 'ScriptBlockText'),
                        '(?i)AllowInsecureGuestAuth[^\n;|]*(-Value|/d|=)\s*(1|0x0*1)\b'))
),
ev AS (
  SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, * FROM hits
),
-- Per host and user name first, then per host: the hits are named once (DataFusion inlines a
-- CTE wherever it is named, so a second reference would plan, optimize and run the four-way
-- union twice).
hu AS (
  SELECT host, user_name, count(*) AS n, min(time_created) AS first_seen,
         max(time_created) AS last_seen, array_agg(DISTINCT detail) AS details,
         array_agg(DISTINCT mechanism) AS mechanisms
  FROM ev GROUP BY host, user_name
),
g AS (
  SELECT host, min(first_seen) AS first_seen, max(last_seen) AS last_seen, sum(n) AS count,
         array_to_string(array_sort(array_distinct(flatten(array_agg(details)))), ' | ') AS details,
         array_to_string(array_sort(array_distinct(flatten(array_agg(mechanisms)))), ', ')
           AS mechanisms,
         -- The most frequent user name (ties: the first in order).
         array_element(array_agg(user_name ORDER BY n DESC, user_name)
                       FILTER (WHERE user_name IS NOT NULL AND user_name <> '-'), 1) AS user_name
  FROM hu GROUP BY host
)
SELECT host, CAST(NULL AS VARCHAR) AS server, user_name, first_seen, last_seen, count,
       details AS evidence, mechanisms
FROM g

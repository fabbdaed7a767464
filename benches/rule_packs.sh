#!/usr/bin/env bash
# Large rule packs on one store: how the shared scan scales with the number of rules.
#   a. 200 rules: 20 renamed copies of each smb-guest rule (complex, multi-CTE rules; the pack's
#      timeline query is left out: a run draws one timeline);
#   b. 500 simple Sigma-style rules: one event id and one field match each, 50 per event id.
# Each pack runs with the shared scan (report --timings: the scan, the planning, the rules);
# with NAIVE=1 pack a also runs with --no-shared-scan (one store scan per rule; ~10 minutes on
# the 10.5 M-event store) and the two outputs are compared.
# Usage: benches/rule_packs.sh STORE   (a store from benches/store_10m.sh or `evtxsql ingest`);
# SKIP_COPIES=1 runs only pack b.
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:?usage: benches/rule_packs.sh STORE}
work=${BENCH_DIR:-/tmp/evtxsql-bench}
bin=${EVTXSQL:-target/release/evtxsql}
[ -x "$bin" ] || { echo "build it first: cargo build --release"; exit 2; }
mkdir -p "$work"

timed() { # label, then the command; prints wall seconds and the --timings summary lines
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" 2> "$work/timings-$label.txt"
  end=$(date +%s.%N)
  echo "$label: $(echo "$end - $start" | bc -l | cut -c1-6) s wall"
  grep -E '^shared scan|^no shared|^rules:|^total' "$work/timings-$label.txt" || tail -3 "$work/timings-$label.txt"
}

[ "${SKIP_COPIES:-0}" = 1 ] || {
echo "== a. 200 rules (20 copies of each smb-guest rule)"
many="$work/many-rules"
rm -rf "$many"; mkdir -p "$many"
for f in rules/packs/smb-guest/*.sql; do
  base=$(basename "$f" .sql)
  # A run draws one timeline: the pack's timeline query is not copied.
  grep -q '^-- kind: timeline' "$f" && continue
  for i in $(seq -w 1 20); do
    sed "s/^-- id: .*/-- id: ${base}_copy$i/" "$f" > "$many/${base}_copy$i.sql"
  done
done
timed copies-shared "$bin" report "$store" --pack none --rules "$many" --format jsonl \
  --out "$work/copies-shared.jsonl" --timings
if [ "${NAIVE:-0}" = 1 ]; then
  timed copies-naive "$bin" report "$store" --pack none --rules "$many" --format jsonl \
    --out "$work/copies-naive.jsonl" --timings --no-shared-scan
  cmp -s "$work/copies-shared.jsonl" "$work/copies-naive.jsonl" \
    && echo "200 rules: shared and naive output identical" \
    || { echo "200 rules: shared and naive output DIFFER"; exit 1; }
fi
}

echo "== b. 500 simple rules (one event id and one user name each)"
simple="$work/simple-rules"
rm -rf "$simple"; mkdir -p "$simple"
sources=("Microsoft-Windows-Security-Auditing:4624" "Microsoft-Windows-Security-Auditing:4625"
         "Microsoft-Windows-Security-Auditing:5140" "Microsoft-Windows-Security-Auditing:5145"
         "Microsoft-Windows-SMBClient:31001" "Microsoft-Windows-SMBClient:31010"
         "Microsoft-Windows-SMBClient:31017" "Microsoft-Windows-SMBClient:31022"
         "Microsoft-Windows-PowerShell:4104" "Microsoft-Windows-Sysmon:13")
for n in $(seq 1 500); do
  src=${sources[$((n % 10))]}
  provider=${src%%:*}; id=${src##*:}
  user=$(printf 'user%02d' $(( (n / 10) % 30 + 1 )))
  cat > "$simple/simple_$(printf %03d "$n").sql" <<RULE
-- id: simple_$(printf %03d "$n")
-- title: $user in event $id
-- severity: low
-- requires: $provider: $id
SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, server_name AS server, user_name,
       min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,
       'event $id by $user' AS evidence
FROM smb_events
WHERE event_id = $id AND lower(provider) = lower('$provider') AND user_name = '$user'
GROUP BY 1, 2, 3
RULE
done
timed simple-shared "$bin" report "$store" --pack none --rules "$simple" --format jsonl \
  --out "$work/simple-shared.jsonl" --timings
echo "findings: $(wc -l < "$work/simple-shared.jsonl")"

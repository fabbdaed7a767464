#!/usr/bin/env bash
# The large-store benchmarks of the query and rules issues, on one generated store:
#   1. generate a fleet with every scenario (samples generate; prints MB/s), ingest it and
#      compact it (ingest writes sorted runs; a SOC's store is compacted, so the queries below
#      run on segments sorted whole);
#   2. EXPLAIN ANALYZE of a query filtering on event_id and channel: row groups pruned, bytes read;
#   3. benches/query_vs_duckdb.py: fixed analysis queries, evtxsql vs DuckDB on the same Parquet;
#   4. the smb-guest pack with one shared scan and with naive one-by-one scans (report --timings);
#   5. benches/rule_packs.sh: packs of 200 and 500 rules with the shared scan.
# Usage: benches/store_10m.sh [EVENTS_PER_SCENARIO=1500000] [HOSTS=60] [DAYS=7]
# 7 scenarios x 1.5 M events = 10.5 M events. Needs a release build (cargo build --release) and,
# for step 3, `pip install duckdb`. Work files go to $BENCH_DIR (default /tmp/evtxsql-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1500000}
hosts=${2:-60}
days=${3:-7}
work=${BENCH_DIR:-/tmp/evtxsql-bench}
bin=${EVTXSQL:-target/release/evtxsql}
[ -x "$bin" ] || { echo "build it first: cargo build --release"; exit 2; }
logs="$work/fleet-${events}x7"
store="$work/fleet-${events}x7.store"
mkdir -p "$work"

echo "== 1. generate and ingest"
if [ ! -d "$logs" ]; then
  /usr/bin/time -f "generate: %e s, peak RSS %M KiB" \
    "$bin" samples generate --scenario all --hosts "$hosts" --days "$days" --events "$events" \
    --seed 11 --out "$logs" --quiet
fi
echo "EVTX: $(find "$logs" -name '*.evtx' | wc -l) files, $(( $(du -sb "$logs" | cut -f1) / 1048576 )) MiB"
if [ ! -d "$store" ]; then
  /usr/bin/time -f "ingest: %e s, peak RSS %M KiB" "$bin" ingest "$logs" --store "$store" --quiet
  /usr/bin/time -f "compact: %e s, peak RSS %M KiB" "$bin" compact "$store"
fi
"$bin" query "$store" "SELECT count(*) AS events, count(DISTINCT computer) AS computers FROM events"
echo "store: $(( $(du -sb "$store" | cut -f1) / 1048576 )) MiB"

echo "== 2. pruning: EXPLAIN ANALYZE with a filter on event_id and channel"
"$bin" query "$store" --max-width 0 --format csv "EXPLAIN ANALYZE SELECT computer, server_name, count(*) AS n
  FROM events WHERE event_id = 31017 AND channel = 'Microsoft-Windows-SmbClient/Security'
  GROUP BY computer, server_name" \
  | grep -oE '(row_groups_pruned_statistics|page_index_rows_pruned|bytes_scanned|scan_efficiency_ratio|pushdown_rows_matched)=[^,]+' \
  | sort -u
echo "store Parquet bytes: $(du -cb "$store"/events/*.parquet | tail -1 | cut -f1)"

echo "== 3. queries: evtxsql vs DuckDB"
if python3 -c 'import duckdb' 2>/dev/null; then
  python3 benches/query_vs_duckdb.py "$store" "$bin" 3
else
  echo "skipped: pip install duckdb"
fi

echo "== 4. the smb-guest pack: shared scan vs one scan per rule"
for mode in shared naive; do
  flag=""
  [ "$mode" = naive ] && flag="--no-shared-scan"
  start=$(date +%s.%N)
  "$bin" report "$store" --format json --out "$work/report-$mode.json" --timings $flag 2> "$work/timings-$mode.txt"
  end=$(date +%s.%N)
  echo "$mode: $(echo "$end - $start" | bc -l | cut -c1-6) s wall"
  cat "$work/timings-$mode.txt"
done
cmp -s <(python3 -c "import json,sys;print(json.dumps(json.load(open('$work/report-shared.json'))['findings']))") \
       <(python3 -c "import json,sys;print(json.dumps(json.load(open('$work/report-naive.json'))['findings']))") \
  && echo "shared and naive findings are identical" || { echo "shared and naive findings DIFFER"; exit 1; }

echo "== 5. large rule packs (benches/rule_packs.sh: 200 copies of the pack, 500 simple rules)"
benches/rule_packs.sh "$store"

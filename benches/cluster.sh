#!/usr/bin/env bash
# Local vs cluster: the fixed query set of benches/query_vs_duckdb.py and the smb-guest pack
# over one store, run by this machine alone and by a Ballista cluster of 1 scheduler and 2
# executors started here (each with --concurrency ${CONCURRENCY:-1}), timed with hyperfine.
# Usage: benches/cluster.sh STORE [RUNS=3]   (needs a release build and hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
store=$(realpath "${1:?usage: benches/cluster.sh STORE [RUNS]}")
runs=${2:-3}
bin=$(realpath "${EVTXSQL:-target/release/evtxsql}")
conc=${CONCURRENCY:-1}
work=$(mktemp -d)
port=${PORT:-55050}
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap stop EXIT
"$bin" cluster scheduler --bind 127.0.0.1:$port 2>"$work/scheduler.log" & pids+=($!)
sleep 1
for i in 1 2; do
  "$bin" cluster executor --scheduler 127.0.0.1:$port --bind 127.0.0.1:$((port + 10 * i)) \
    --grpc-port $((port + 10 * i + 1)) --concurrency "$conc" --work-dir "$work/exec$i" \
    2>"$work/executor$i.log" & pids+=($!)
done
for i in 1 2; do
  until grep -q "registration succeed" "$work/executor$i.log"; do sleep 0.2; done
done
url=df://127.0.0.1:$port
echo "store: $store ($("$bin" query "$store" "SELECT count(*) FROM events" --format csv | tail -1) events)"
queries=$(python3 -c '
import sys; sys.path.insert(0, "benches")
import importlib.util
spec = importlib.util.spec_from_file_location("q", "benches/query_vs_duckdb.py")
src = open("benches/query_vs_duckdb.py").read()
start = src.index("QUERIES = {"); end = src.index("}", start) + 1
ns = {}; exec(src[start:end], ns)
for name, sql in ns["QUERIES"].items(): print(name + "\t" + sql)
')
while IFS=$'\t' read -r name sql; do
  local_out=$("$bin" query "$store" "$sql" --format csv | sort | md5sum)
  cluster_out=$("$bin" query "$store" "$sql" --format csv --cluster "$url" | sort | md5sum)
  [ "$local_out" = "$cluster_out" ] || { echo "$name: cluster answer differs" >&2; exit 1; }
  hyperfine -N --runs "$runs" --export-json "$work/$name.json" \
    -n local "$bin query $store \"$sql\" --format csv" \
    -n cluster "$bin query $store \"$sql\" --format csv --cluster $url" >/dev/null
  python3 -c "
import json; r = json.load(open('$work/$name.json'))['results']
print('%-24s local %6.2f s   cluster %6.2f s' % ('$name', r[0]['median'], r[1]['median']))"
done <<< "$queries"
"$bin" report "$store" --format json --out "$work/local.json"
"$bin" report "$store" --format json --out "$work/cluster.json" --cluster "$url" --timings 2>"$work/timings.txt"
python3 -c "
import json; a = json.load(open('$work/local.json')); b = json.load(open('$work/cluster.json'))
assert a['findings'] == b['findings'] and a['timeline'] == b['timeline'], 'pack differs'
print('pack: %d findings, same on the cluster' % len(a['findings']))"
cat "$work/timings.txt"
hyperfine -N --runs "$runs" --export-json "$work/pack.json" \
  -n local "$bin report $store --format json --out $work/l.json" \
  -n cluster "$bin report $store --format json --out $work/c.json --cluster $url" >/dev/null
python3 -c "
import json; r = json.load(open('$work/pack.json'))['results']
print('%-24s local %6.2f s   cluster %6.2f s' % ('smb-guest pack', r[0]['median'], r[1]['median']))"
echo "tasks run: executor1 $(grep -c 'Finished task' "$work/executor1.log"), executor2 $(grep -c 'Finished task' "$work/executor2.log")"

#!/usr/bin/env bash
# Ingest throughput, side by side on the same files and the same parallelism:
#   evtxsql ingest (the `ingest` bench program, same code path) vs `evtx_dump -t 1 -o jsonl`, two
#   processes at a time through xargs -P2.
# Usage: benches/ingest_vs_evtx_dump.sh [SIZE_MB=1024] [CORPUS=../shared/evtx]
# Needs evtx_dump on PATH (cargo install evtx --version 0.15.1); builds the bench program in
# release mode (cargo build --release -p evtxsql-ingest --bench ingest).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-1024}
corpus=${2:-../shared/evtx}
work=${BENCH_DIR:-/tmp/evtxsql-bench}
input="$work/input-${size_mb}mb"
threads=${THREADS:-2}
mkdir -p "$work"
[ -d "$input" ] || python3 benches/make_corpus.py "$corpus" "$input" "$size_mb"
# The bench program's path, from cargo (builds it when it is missing or stale).
bench=$(cargo build --release -p evtxsql-ingest --bench ingest --message-format=json 2>/dev/null \
  | python3 -c 'import json, sys
for m in map(json.loads, sys.stdin):
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in t.get("kind", []):
        print(m["executable"])' | tail -n1)
[ -x "$bench" ] || { echo "could not build the bench: cargo build --release -p evtxsql-ingest --bench ingest"; exit 2; }
command -v evtx_dump >/dev/null || { echo "evtx_dump not on PATH (cargo install evtx --version 0.15.1)"; exit 2; }

files=$(find "$input" -name '*.evtx' | wc -l)
bytes=$(du -sb "$input" | cut -f1)
echo "input: $input ($files files, $((bytes / 1048576)) MiB), $threads threads/processes"

# Warm the page cache so both read from memory.
cat $(find "$input" -name '*.evtx') > /dev/null

t0=$(date +%s.%N)
dump_records=$(find "$input" -name '*.evtx' -print0 | xargs -0 -P"$threads" -n1 sh -c 'evtx_dump -t 1 -o jsonl "$0" 2>/dev/null | wc -l' | awk '{s+=$1} END {print s}')
t1=$(date +%s.%N)
dump_secs=$(echo "$t1 - $t0" | bc -l)
echo "evtx_dump -o jsonl: $dump_records records in ${dump_secs}s: $(echo "$dump_records / $dump_secs" | bc) records/s"

rm -rf "$work/store"
/usr/bin/time -v "$bench" "$input" "$work/store" "$threads" > "$work/evtxsql.json" 2> "$work/evtxsql.time"
cat "$work/evtxsql.json"
rss=$(grep 'Maximum resident set size' "$work/evtxsql.time" | awk '{print $NF}')
echo "evtxsql ingest: $(python3 -c "import json;d=json.load(open('$work/evtxsql.json'));print(f\"{d['records']} records in {d['seconds']}s: {d['records_per_sec']:.0f} records/s, {d['mib_per_sec']:.1f} MiB/s\")"), peak RSS $((rss / 1024)) MiB"

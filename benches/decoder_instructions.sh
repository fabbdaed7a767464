#!/usr/bin/env bash
# Instructions the decoder executes per record, counted by valgrind's callgrind: the same
# count on a busy machine as on an idle one, so a change to the decoder can be judged from one
# run of each build where wall-clock times (which vary 2x here with other work) would need many.
#   benches/decoder_instructions.sh [INPUT_DIR] [BENCH_BINARY]
# INPUT_DIR defaults to one copy of each file of the ~1 GB bench set (its copy0000 folder, made
# by benches/ingest_vs_evtx_dump.sh); BENCH_BINARY to the `record_paths` bench of this checkout
# (built here). It runs that program with 1 thread on our decoder only (reading included, no
# hash, no store) and prints the records, the instructions and the instructions per record;
# the callgrind output (for callgrind_annotate) is left in $BENCH_DIR/decoder.callgrind.
# Give two binaries in turn (e.g. a copy of the one built before a change) to compare them.
# Needs valgrind (Debian's `valgrind`).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-/tmp/evtxsql-bench}
input=${1:-$work/input-1024mb/copy0000}
bench=${2:-}
command -v valgrind > /dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 2; }
[ -d "$input" ] || { echo "no input folder $input (benches/ingest_vs_evtx_dump.sh makes the bench set)"; exit 2; }
if [ -z "$bench" ]; then
  bench=$(benches/bench_program.sh record_paths) || exit 2
fi
[ -x "$bench" ] || { echo "not a program: $bench"; exit 2; }
mkdir -p "$work"
out="$work/decoder.callgrind"
log="$work/decoder.callgrind.log"
valgrind --tool=callgrind --callgrind-out-file="$out" "$bench" "$input" 1 1 decoder > "$log" 2>&1
python3 - "$log" "$input" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read()
run = next(json.loads(l) for l in text.splitlines() if l.startswith('{'))
refs = int(re.search(r'I\s+refs:\s+([\d,]+)', text).group(1).replace(',', ''))
print(f"input: {sys.argv[2]} ({run['files']} files, {run['bytes'] // 1048576} MiB)")
print(f"records: {run['records']} ({run['decoded']} by our decoder)")
print(f"instructions: {refs:,}")
print(f"instructions per record: {refs / max(run['records'], 1):,.0f}")
EOF

#!/usr/bin/env bash
# Build one of evtxsql-ingest's bench programs (release) and print the path of its executable.
#   benches/bench_program.sh NAME      (NAME: ingest, record_paths)
# Prints nothing and exits 2 when the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: benches/bench_program.sh NAME}
path=$(cargo build --release -p evtxsql-ingest --bench "$name" --message-format=json 2>/dev/null \
  | python3 -c 'import json, sys
for m in map(json.loads, sys.stdin):
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in t.get("kind", []):
        print(m["executable"])' | tail -n1)
[ -x "$path" ] || { echo "could not build the bench: cargo build --release -p evtxsql-ingest --bench $name" >&2; exit 2; }
echo "$path"

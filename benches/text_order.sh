#!/usr/bin/env bash
# Lay out the functions a typical session runs together in the `evtxsql` binary, then relink it
# (build.rs: EVTXSQL_TEXT_ORDER). A packaging step, like profile-guided optimization: it changes
# where code sits, not what it does.
#
#   1. build the binary of PROFILE (default: release);
#   2. run the training workload of benches/workload.sh (shared with benches/pgo.sh) under
#      valgrind's callgrind, which records every function that runs: ingest and compact of a
#      generated fleet, scan, report, stats, rules, and SQL a responder writes (none of it the
#      SQL of benches/query_vs_duckdb.py, so that benchmark measures the layout on queries it
#      was not made from);
#   3. write the functions that ran, most widely used first, to target/PROFILE/evtxsql.text-order
#      (only names the binary defines);
#   4. relink with EVTXSQL_TEXT_ORDER pointing at it, and print where the ordered code now sits.
#
# Usage: benches/text_order.sh [PROFILE]   (needs valgrind, python3, nm; lld as the linker)
# The file holds mangled names, which carry a hash of the compiler, profile and dependency
# versions: rerun this after any of them changes (names it no longer finds are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
for tool in valgrind python3 nm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed (apt-get install valgrind binutils)" >&2; exit 2; }
done
dir=target/$profile
[ "$profile" = dev ] && dir=target/debug
bin=$dir/evtxsql
order=$PWD/$dir/evtxsql.text-order

echo "== 1. build ($profile)"
cargo build --profile "$profile" --bin evtxsql
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$bin" "$work/evtxsql"
b=$work/evtxsql

echo "== 2. training workload under callgrind (work files in $work)"
n=0
cg() {
  n=$((n + 1))
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.$n" "$@" >/dev/null 2>"$work/err.$n" \
    || { echo "error: training step failed: $*" >&2; cat "$work/err.$n" >&2; exit 1; }
}
source benches/workload.sh
training_workload "$b" "$work" cg

echo "== 3. the functions that ran"
nm --defined-only "$bin" | awk '{print $3}' | sort -u >"$work/defined"
python3 - "$work" "$order" <<'EOF'
import collections, glob, re, sys
work, out = sys.argv[1], sys.argv[2]
defined = set(open(f"{work}/defined").read().split())
runs = collections.Counter()  # in how many training runs a function ran
for path in glob.glob(f"{work}/cg.*"):
    names, seen = {}, set()
    for line in open(path, errors="replace"):
        m = re.match(r"^c?fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2)
            name = names.get(m.group(1))
            if name in defined:
                seen.add(name)
    runs.update(seen)
order = sorted(runs, key=lambda n: (-runs[n], n))
with open(out, "w") as f:
    f.write("\n".join(order) + "\n")
print(f"{len(order)} functions of {len(defined)} defined symbols ran; written to {out}")
EOF

echo "== 4. relink with the order"
EVTXSQL_TEXT_ORDER=$order cargo build --profile "$profile" --bin evtxsql
python3 - "$bin" "$order" <<'EOF'
import subprocess, sys
binary, order = sys.argv[1], sys.argv[2]
wanted = set(open(order).read().split())
addrs = []
for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[2] in wanted and parts[1] in "tT":
        addrs.append(int(parts[0], 16))
addrs.sort()
if addrs:
    span = addrs[-1] - addrs[0]
    print(f"{len(addrs)} ordered functions in {span / 2**20:.1f} MiB of code, from {addrs[0]:#x}")
EOF
echo "built $bin with its functions ordered; keep EVTXSQL_TEXT_ORDER=$order set for later builds"

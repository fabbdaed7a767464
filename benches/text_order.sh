#!/usr/bin/env bash
# Lay out the functions a typical session runs together in the `evtxsql` binary, then relink it
# (build.rs: EVTXSQL_TEXT_ORDER). A packaging step, like profile-guided optimization: it changes
# where code sits, not what it does.
#
#   1. build the binary of PROFILE (default: release);
#   2. run a training workload under valgrind's callgrind, which records every function that
#      runs: ingest and compact of a generated fleet, scan, report, stats, rules, and SQL a
#      responder writes (none of it the SQL of benches/query_vs_duckdb.py, so that benchmark
#      measures the layout on queries it was not made from);
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
"$b" samples generate --scenario all --hosts 12 --days 2 --events 20000 --seed 5 --out "$work/logs" --quiet
n=0
cg() {
  n=$((n + 1))
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.$n" "$@" >/dev/null 2>"$work/err.$n" \
    || { echo "error: training step failed: $*" >&2; cat "$work/err.$n" >&2; exit 1; }
}
store=$work/store
cg "$b" ingest "$work/logs" --store "$store" --quiet
cg "$b" ingest "$work/logs" --store "$store" --quiet
cg "$b" compact "$store"
cg "$b" scan samples/data --quiet
cg "$b" scan samples/data --quiet --format html --out "$work/r.html"
cg "$b" report "$store"
cg "$b" report "$store" --format json
cg "$b" stats "$store"
cg "$b" rules list
cg "$b" --help
cg "$b" query --help
cg "$b" query samples/data/spoofed-server "SELECT computer, count(*) AS n FROM events GROUP BY computer"
for sql in \
  "SELECT 1" \
  "SELECT * FROM events WHERE event_id = 4625 ORDER BY time_created DESC LIMIT 20" \
  "SELECT computer, count(*) AS n FROM events WHERE channel = 'Security' AND event_id IN (4624, 4625) GROUP BY computer ORDER BY n DESC LIMIT 10" \
  "SELECT user_name, count(DISTINCT computer) AS hosts FROM events WHERE user_name LIKE '%admin%' OR user_name = 'guest' GROUP BY user_name" \
  "SELECT data->>'ShareName' AS share, count(*) AS n FROM events WHERE event_id = 5140 GROUP BY share ORDER BY n DESC" \
  "SELECT provider, event_id, min(time_created) AS first, max(time_created) AS last, count(*) AS n FROM events GROUP BY provider, event_id" \
  "SELECT f.path, count(*) AS n FROM events e JOIN files f ON e.file_id = f.file_id GROUP BY f.path ORDER BY n DESC LIMIT 5" \
  "SELECT date_trunc('day', time_created) AS day, channel, count(*) AS n FROM events GROUP BY day, channel ORDER BY day, channel" \
  "SELECT computer, time_created, time_created - lag(time_created) OVER (PARTITION BY computer ORDER BY time_created) AS gap FROM events WHERE event_id = 31010 LIMIT 50" \
  "SELECT count(*) FROM events WHERE time_created BETWEEN now() - INTERVAL '30 days' AND now() AND level <= 3" \
  "SELECT event_id, count(*) AS n FROM events WHERE regexp_like(data, 'guest', 'i') GROUP BY event_id ORDER BY n DESC" \
  "SELECT server_name, client_ip, count(*) AS n FROM smb_server GROUP BY server_name, client_ip ORDER BY n DESC LIMIT 20" \
  "SELECT DISTINCT channel FROM events ORDER BY channel" \
  "SELECT upper(computer) AS host, CASE WHEN status = 0 THEN 'ok' ELSE 'failed' END AS outcome, count(*) AS n FROM events WHERE status IS NOT NULL GROUP BY host, outcome" \
  "EXPLAIN ANALYZE SELECT count(*) FROM events WHERE event_id = 31017 AND computer LIKE 'WKS%'"; do
  for format in table csv json; do
    cg "$b" query "$store" --format "$format" "$sql"
  done
done

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

#!/usr/bin/env bash
# Ingest throughput, side by side on the same files and the same parallelism, both timed as
# whole processes with /usr/bin/time, in alternating runs (A B A B ...), medians printed:
#   A: the `ingest` bench program (the code path of `evtxsql ingest`: read once, hash, decode,
#      write Parquet) with 2 threads, into a fresh store each run;
#   B: `evtx_dump -t 1 -o jsonl -f /dev/null` per file, two processes at a time (xargs -P2):
#      no shell and no pipe on either side.
# Usage: benches/ingest_vs_evtx_dump.sh [SIZE_MB=1024] [RUNS=5] [CORPUS=../shared/evtx]
# COLD=1: drop the input's pages from the page cache (posix_fadvise DONTNEED, not timed) before
# every run of either side, as logs just copied from elsewhere or not read for a while.
# Needs the Rust evtx_dump (cargo install evtx --version 0.15.1; EVTX_DUMP=path to choose one)
# and builds the bench program (cargo build --release -p evtxsql-ingest --bench ingest).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-1024}
runs=${2:-5}
corpus=${3:-../shared/evtx}
work=${BENCH_DIR:-/tmp/evtxsql-bench}
input="$work/input-${size_mb}mb"
threads=${THREADS:-2}
cold=${COLD:-0}
dump=${EVTX_DUMP:-$(command -v evtx_dump || true)}
mkdir -p "$work"
[ -d "$input" ] || python3 benches/make_corpus.py "$corpus" "$input" "$size_mb"
bench=$(benches/bench_program.sh ingest) || exit 2
"$dump" --version 2>/dev/null | grep -q "EVTX Parser" \
  || { echo "no Rust evtx_dump (cargo install evtx --version 0.15.1, or EVTX_DUMP=path)"; exit 2; }

list="$work/files-${size_mb}mb.txt"
find "$input" -name '*.evtx' | sort > "$list"
bytes=$(xargs -a "$list" -d '\n' cat | wc -c)
echo "input: $input ($(wc -l < "$list") files, $((bytes / 1048576)) MiB), $threads threads/processes, $runs runs each$([ "$cold" = 1 ] && echo ', page cache dropped before each run')"
xargs -a "$list" -d '\n' cat > /dev/null   # page cache warm for both (unless COLD=1)
evict() {
  [ "$cold" = 1 ] || return 0
  python3 -c 'import os, sys
for p in open(sys.argv[1]).read().splitlines():
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)' "$list"
}

records=$("$bench" "$input" "$work/store" "$threads" --replace | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
a_wall=(); a_cpu=(); a_rss=(); b_wall=(); b_cpu=()
for i in $(seq "$runs"); do
  evict
  /usr/bin/time -f '%e %U %S %M' -o "$work/a.time" "$bench" "$input" "$work/store" "$threads" --replace > /dev/null
  read -r w u s m < "$work/a.time"; a_wall+=("$w"); a_cpu+=("$(echo "$u + $s" | bc)"); a_rss+=("$m")
  evict
  /usr/bin/time -f '%e %U %S %M' -o "$work/b.time" \
    xargs -a "$list" -d '\n' -P"$threads" -n1 "$dump" -t 1 -o jsonl -f /dev/null --no-confirm-overwrite 2>/dev/null
  read -r w u s m < "$work/b.time"; b_wall+=("$w"); b_cpu+=("$(echo "$u + $s" | bc)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
aw=$(median "${a_wall[@]}"); ac=$(median "${a_cpu[@]}"); ar=$(median "${a_rss[@]}")
bw=$(median "${b_wall[@]}"); bc_=$(median "${b_cpu[@]}")
printf '%-44s %8s %8s %12s\n' command "wall s" "CPU s" "records/s"
printf '%-44s %8.2f %8.2f %12.0f\n' "evtxsql ingest (bench program, $threads threads)" "$aw" "$ac" "$(echo "$records / $aw" | bc -l)"
printf '%-44s %8.2f %8.2f %12.0f\n' "evtx_dump -t 1 -o jsonl, xargs -P$threads" "$bw" "$bc_" "$(echo "$records / $bw" | bc -l)"
echo "records: $records; ingest/evtx_dump wall ratio $(echo "scale=2; $aw / $bw" | bc -l); ingest peak RSS $((ar / 1024)) MiB"

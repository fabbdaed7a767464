#!/usr/bin/env bash
# Profile-guided optimization of the ingest path, measured: the `ingest` bench program (the code
# path of `evtxsql ingest`: read once, hash, decode, sort, write Parquet) built three ways, each
# in a target directory of its own (RUSTFLAGS differ, so nothing is shared with target/):
#   1. plain release;
#   2. instrumented (-Cprofile-generate), run over TRAIN_DIR (default: logs made by
#      `evtxsql samples generate --scenario all`, none of them the measured files), its
#      profiles merged with the toolchain's llvm-profdata (`rustup component add llvm-tools`);
#   3. release with the profile (-Cprofile-use);
# then 1 and 3 ingest INPUT_DIR in alternating runs, whole processes timed by /usr/bin/time,
# and the medians are printed.
# Usage: benches/pgo_ingest.sh INPUT_DIR [RUNS=9] [TRAIN_DIR]
# Cold builds: about 20 minutes each here (the ingest crate and its dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
input=${1:?usage: benches/pgo_ingest.sh INPUT_DIR [RUNS] [TRAIN_DIR]}
runs=${2:-9}
work=${BENCH_DIR:-/tmp/evtxsql-bench}/pgo
train=${3:-$work/train}
threads=${THREADS:-2}
sysroot=$(rustc --print sysroot)
profdata=$(find "$sysroot" -name llvm-profdata -type f | head -n1)
[ -x "$profdata" ] || { echo "no llvm-profdata: rustup component add llvm-tools" >&2; exit 2; }
mkdir -p "$work"

bench_of() { # target dir -> the bench executable cargo built there
  python3 -c 'import json, sys
for m in map(json.loads, sys.stdin):
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in t.get("kind", []):
        print(m["executable"])' < "$1/build.json" | tail -n1
}
build() { # target dir, then RUSTFLAGS
  CARGO_TARGET_DIR=$1 RUSTFLAGS=$2 cargo build --release -p evtxsql-ingest --bench ingest \
    --message-format=json > "$1.build.json"
  mkdir -p "$1" && mv "$1.build.json" "$1/build.json"
}

echo "== 1. plain release build"
build "$work/plain" ""
echo "== 2. instrumented build, trained on $train"
rm -rf "$work/prof"
build "$work/gen" "-Cprofile-generate=$work/prof"
if [ ! -d "$train" ]; then
  cargo build --release --bin evtxsql
  target/release/evtxsql samples generate --scenario all --hosts 20 --days 3 --events 40000 \
    --seed 11 --out "$train" --quiet
fi
rm -rf "$work/prof"   # the build scripts' own profiles
"$(bench_of "$work/gen")" "$train" "$work/store" "$threads" --replace > /dev/null
"$profdata" merge -o "$work/ingest.profdata" "$work/prof"
echo "== 3. release build with the profile"
build "$work/use" "-Cprofile-use=$work/ingest.profdata"

plain=$(bench_of "$work/plain"); pgo=$(bench_of "$work/use")
echo "== ingest of $input, $threads threads, $runs alternating runs each"
a=(); b=()
for i in $(seq "$runs"); do
  for side in plain pgo; do
    bin=$plain; [ "$side" = pgo ] && bin=$pgo
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$bin" "$input" "$work/store" "$threads" --replace > /dev/null
    read -r w u s m < "$work/time"
    line="$w $(echo "$u + $s" | bc) $m"
    if [ "$side" = plain ]; then a+=("$line"); else b+=("$line"); fi
  done
done
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
for k in 1 2 3; do
  name=$(echo "wall_s cpu_s peak_kib" | cut -d' ' -f"$k")
  pa=$(printf '%s\n' "${a[@]}" | cut -d' ' -f"$k" | median)
  pb=$(printf '%s\n' "${b[@]}" | cut -d' ' -f"$k" | median)
  echo "$name plain $pa pgo $pb ratio $(echo "scale=3; $pb / $pa" | bc)"
done

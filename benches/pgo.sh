#!/usr/bin/env bash
# Profile-guided optimization of the whole `evtxsql` binary: a packaging step, like
# benches/text_order.sh (which it combines with). It changes how the compiler lays out branches
# and what it inlines, not what the code does.
#   1. an instrumented build (-Cprofile-generate) in target/pgo/gen, a target directory of its
#      own (RUSTFLAGS differ, so nothing is shared with target/);
#   2. the training workload of benches/workload.sh (ingest, compact, scan, report, stats and
#      SQL, none of it the benchmarks' logs or SQL), run natively by the instrumented binary;
#   3. its profiles merged with the toolchain's llvm-profdata (`rustup component add
#      llvm-tools`) into target/pgo/evtxsql.profdata;
#   4. the build with the profile (-Cprofile-use) in target/pgo/use, linked with the order of
#      EVTXSQL_TEXT_ORDER when it is set (a file from benches/text_order.sh PROFILE: cargo
#      leaves RUSTFLAGS out of the symbol names, so the same names apply).
#
# Usage: benches/pgo.sh [PROFILE]   (default: release; `dist` for the binary to deploy)
# Then: target/pgo/use/PROFILE/evtxsql. Each build is a cold one of its own (for `release` on a
# 2-core machine: 60 minutes instrumented, with another build beside it for 17 of them, and 43
# with the profile). Rerun after any change of the code, the toolchain or
# the dependencies: a function whose code changed is compiled without its profile.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
sysroot=$(rustc --print sysroot)
profdata=$(find "$sysroot" -name llvm-profdata -type f | head -n1)
[ -x "$profdata" ] || { echo "error: no llvm-profdata: rustup component add llvm-tools" >&2; exit 2; }
root=$PWD/target/pgo
raw=$root/raw
out=$root/evtxsql.profdata
sub=$profile
[ "$profile" = dev ] && sub=debug

build() { # target dir, RUSTFLAGS
  CARGO_TARGET_DIR=$1 RUSTFLAGS=$2 cargo build --profile "$profile" --bin evtxsql
}

echo "== 1. instrumented build ($profile) in $root/gen"
build "$root/gen" "-Cprofile-generate=$raw"
rm -rf "$raw" # the build scripts' own profiles

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== 2. training workload (work files in $work)"
step=0
native() {
  step=$((step + 1))
  "$@" >/dev/null 2>"$work/err.$step" \
    || { echo "error: training step failed: $*" >&2; cat "$work/err.$step" >&2; exit 1; }
}
source benches/workload.sh
training_workload "$root/gen/$sub/evtxsql" "$work" native
echo "$step steps, $(find "$raw" -name '*.profraw' | wc -l) profiles"

echo "== 3. merge into $out"
"$profdata" merge -o "$out" "$raw"

echo "== 4. build with the profile in $root/use${EVTXSQL_TEXT_ORDER:+ (order: $EVTXSQL_TEXT_ORDER)}"
build "$root/use" "-Cprofile-use=$out"
echo "built $root/use/$sub/evtxsql"

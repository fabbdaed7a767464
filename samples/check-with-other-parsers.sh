#!/usr/bin/env bash
# Read generated EVTX files with two parsers that share no code with ours: libevtx's evtxexport
# (Debian libevtx-utils) and python-evtx (PyPI). Installs them if missing, generates a fresh set
# with the example binary (all scenarios, plus one multi-chunk fleet), checks record counts,
# every record's System fields and payload values across both parsers, counts.json, and the
# recountable findings of truth.json. Exits non-zero on any mismatch.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v evtxexport >/dev/null 2>&1; then
    echo "installing libevtx-utils (evtxexport)"
    as_root apt-get install -y libevtx-utils >/dev/null 2>&1 || {
        as_root apt-get update >/dev/null
        as_root apt-get install -y libevtx-utils >/dev/null
    }
fi
if ! python3 -c 'import Evtx.Evtx' >/dev/null 2>&1; then
    echo "installing python-evtx"
    python3 -m pip install --quiet python-evtx
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cd "$root"
cargo build -q -p evtxsql-samples --example generate
gen() { cargo run -q -p evtxsql-samples --example generate -- "$@"; }
# python-evtx reads about 200 records a second, so the sets stay small: every scenario, and one
# host whose Security log spans many chunks.
gen --scenario all --hosts 3 --days 2 --events 600 --seed 42 --out "$out/all"
gen --scenario clean-fleet --hosts 1 --days 1 --events 3000 --seed 9 --out "$out/big"

python3 "$here/check_python_evtx.py" "$out"/all/* "$out/big"
echo "check-with-other-parsers: all files agree"

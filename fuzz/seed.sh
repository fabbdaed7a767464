#!/usr/bin/env bash
# Seed the fuzz corpus from real EVTX files: every file whole (libFuzzer cuts inputs longer
# than -max_len), and every chunk that is not all zeros on its own (64 KiB after the 4 KiB file
# header; the target gives a lone chunk a file header). Then the hand-made chunks of the
# decoder's tests (every token and value type; written by a test of
# ingest/src/binxml/tests/). The corpus is not committed.
#   fuzz/seed.sh [EVTX_DIR] [CORPUS_DIR]   (defaults: ../shared/evtx, fuzz/corpus/decode)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../../shared/evtx}
out=${2:-$here/corpus/decode}
mkdir -p "$out"
python3 - "$src" "$out" <<'PY'
import hashlib, pathlib, sys
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
files = chunks = 0
seen = set()
def put(data, name):
    digest = hashlib.sha1(data).hexdigest()
    if digest in seen:
        return False
    seen.add(digest)
    (out / f"{name}-{digest[:12]}").write_bytes(data)
    return True
for path in sorted(src.rglob("*.evtx")):
    data = path.read_bytes()
    if not data:
        continue
    files += put(data, "file")
    for at in range(4096, len(data) - 65536 + 1, 65536):
        chunk = data[at:at + 65536]
        if chunk.startswith(b"ElfChnk\0") and any(chunk):
            chunks += put(chunk, "chunk")
print(f"seeded {out}: {files} files, {chunks} chunks")
PY
(cd "$here/.." && EVTXSQL_FUZZ_SEEDS="$out" cargo test -q -p evtxsql-ingest --lib \
    binxml::tests::bounds::fuzz_seeds_reach_the_renderer -- --exact >/dev/null)
echo "seeded $out: $(ls "$out" | grep -c '^handmade-') hand-made chunks"

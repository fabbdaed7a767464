#!/usr/bin/env python3
"""Make a benchmark input of about SIZE_MB megabytes from copies of a folder of EVTX files.

Each copy changes 4 bytes of header padding (offset 4000, unused by any parser) so every copy
has its own sha256 and evtxsql's dedup does not skip it. Usage: make_corpus.py SRC OUT SIZE_MB
"""
import os
import sys

src, out, size_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = []
for root, _, names in os.walk(src):
    for n in sorted(names):
        p = os.path.join(root, n)
        with open(p, "rb") as f:
            if f.read(8) == b"ElfFile\0" and os.path.getsize(p) >= 4096:
                files.append(p)
files.sort()
total, copy = 0, 0
while total < size_mb * 1024 * 1024:
    for p in files:
        with open(p, "rb") as f:
            data = bytearray(f.read())
        data[4000:4004] = copy.to_bytes(4, "little")
        dest = os.path.join(out, f"copy{copy:04}", os.path.relpath(p, src))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)
        total += len(data)
    copy += 1
print(f"{out}: {copy} copies, {total / 1048576:.0f} MiB")

#!/usr/bin/env python3
"""Check generated EVTX files with two independent parsers: python-evtx and libevtx's evtxexport.

Usage: check_python_evtx.py DIR [DIR ...]   (each DIR holds one scenario: counts.json, truth.json,
<HOST>/<Channel>.evtx). For every file: the record count equals counts.json; both parsers give the
same records (System fields and every payload value); per (channel, event id, computer) counts
equal counts.json; and the findings of truth.json that can be recounted from single events
(client_rejected_guest, client_allowed_guest, server_guest_session) have the stated counts.
Exits 1 on the first kind of mismatch found (after reporting all of them).
"""
import base64
import collections
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import Evtx.Evtx as evtx

NS = re.compile(r"\{[^}]*\}")
errors = []


def fail(msg):
    errors.append(msg)
    print("MISMATCH:", msg, file=sys.stderr)


def strip(tag):
    return NS.sub("", tag)


def record_of(xml_text):
    """System fields and payload values of one <Event>, as plain strings."""
    root = ET.fromstring(xml_text)
    out = {"data": {}}
    for el in root.iter():
        tag = strip(el.tag)
        if tag == "EventID":
            out["event_id"] = int(el.text)
        elif tag == "EventRecordID":
            out["record_id"] = int(el.text)
        elif tag in ("Channel", "Computer"):
            out[tag.lower()] = el.text or ""
        elif tag == "Provider":
            out["provider"] = el.get("Name")
        elif tag == "TimeCreated":
            out["time"] = el.get("SystemTime")
    for section in root:
        name = strip(section.tag)
        if name == "EventData":
            for d in section:
                out["data"][d.get("Name")] = d.text or ""
        elif name == "UserData":
            for wrapper in section:
                for d in wrapper:
                    out["data"][strip(d.tag)] = d.text or ""
    return out


def norm_value(v):
    """Put the two parsers' renderings of one value in one form."""
    v = (v or "").strip()
    if re.fullmatch(r"0x[0-9a-fA-F]+", v):
        return int(v, 16)
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    if v in ("true", "True"):
        return True
    if v in ("false", "False"):
        return False
    return v


def norm_binary(a, b):
    """python-evtx renders binary as base64, evtxexport as hex: compare as bytes."""
    try:
        if re.fullmatch(r"[0-9A-Fa-f]+", b) and len(b) % 2 == 0:
            return base64.b64decode(a, validate=True) == bytes.fromhex(b)
    except Exception:
        return False
    return False


def time_micros(t):
    """Microseconds since 1970 of a parser's time text (python-evtx goes through a float and
    can be a few microseconds off, so callers allow for that)."""
    import datetime

    m = re.match(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?", t or "")
    if not m:
        return None
    base = datetime.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}+00:00")
    frac = int((m.group(3) or "").ljust(6, "0")[:6])
    return int(base.timestamp()) * 1_000_000 + frac


def same_value(a, b):
    """Whether python-evtx's `a` and evtxexport's `b` render the same value."""
    if norm_value(a) == norm_value(b) or norm_binary(a, b):
        return True
    if re.fullmatch(r"\{[0-9A-Fa-f-]{36}\}", a or ""):
        return a.lower() == (b or "").lower()
    ta, tb = time_micros(a), time_micros(b)
    return ta is not None and tb is not None and abs(ta - tb) <= 5


def python_records(path):
    with evtx.Evtx(path) as log:
        return [record_of(r.xml()) for r in log.records()]


def evtxexport_records(path):
    text = subprocess.run(["evtxexport", "-f", "xml", path], check=True, capture_output=True, text=True).stdout
    return [record_of(x) for x in re.findall(r"<Event xmlns=.*?</Event>", text, re.S)]


def normalize_server(name):
    return name.lstrip("\\").split("\\")[0].lower()


def check_dir(d):
    counts = json.load(open(os.path.join(d, "counts.json")))
    truth = json.load(open(os.path.join(d, "truth.json")))
    per_key = collections.Counter()
    by_file = {}
    for f in counts["files"]:
        path = os.path.join(d, f["path"])
        py = python_records(path)
        ex = evtxexport_records(path)
        by_file[f["path"]] = py
        if len(py) != f["records"]:
            fail(f"{path}: python-evtx read {len(py)} records, counts.json says {f['records']}")
        if len(ex) != f["records"]:
            fail(f"{path}: evtxexport read {len(ex)} records, counts.json says {f['records']}")
        for i, (a, b) in enumerate(zip(py, ex)):
            if a["record_id"] != f["first_record_id"] + i:
                fail(f"{path}: record {i} has id {a['record_id']}")
            for key in ("event_id", "record_id", "channel", "computer", "provider"):
                if a.get(key) != b.get(key):
                    fail(f"{path} #{a['record_id']}: {key} {a.get(key)!r} (python-evtx) != {b.get(key)!r} (evtxexport)")
            ta, tb = time_micros(a["time"]), time_micros(b["time"])
            if ta is None or tb is None or abs(ta - tb) > 5:
                fail(f"{path} #{a['record_id']}: time {a['time']} != {b['time']}")
            if a["data"].keys() != b["data"].keys():
                fail(f"{path} #{a['record_id']}: fields {sorted(a['data'])} != {sorted(b['data'])}")
            for k, va in a["data"].items():
                vb = b["data"].get(k, "")
                if not same_value(va, vb):
                    fail(f"{path} #{a['record_id']}: {k} {va!r} (python-evtx) != {vb!r} (evtxexport)")
        for r in py:
            per_key[(r["channel"], r["event_id"], r["computer"])] += 1
    want = {(c["channel"], c["event_id"], c["computer"]): c["count"] for c in counts["counts"]}
    if dict(per_key) != want:
        fail(f"{d}: per (channel, event id, computer) counts differ from counts.json")

    def records(host, channel_file):
        return by_file.get(f"{host}/{channel_file}", [])

    checked = 0
    for f in truth["findings"]:
        kind, host = f["kind"], f.get("host")
        if kind in ("client_rejected_guest", "client_allowed_guest"):
            eid = 31017 if kind == "client_rejected_guest" else 31022
            n = sum(
                1
                for r in records(host, "Microsoft-Windows-SmbClient%4Security.evtx")
                if r["event_id"] == eid and normalize_server(r["data"].get("ServerName", "")) == f["server"]
            )
        elif kind == "server_guest_session":
            sec = records(host, "Security.evtx")
            shared = {
                int(r["data"]["SubjectLogonId"], 16)
                for r in sec
                if r["event_id"] in (5140, 5145) and not r["data"].get("ShareName", "").upper().endswith("\\IPC$")
            }
            n = 0
            for r in sec:
                v = r["data"]
                if r["event_id"] != 4624 or v.get("LogonType") != "3" or v.get("IpAddress") != f["client"]:
                    continue
                if v.get("TargetUserName") != f["user"]:
                    continue
                if f["user"] == "Guest" or int(v["TargetLogonId"], 16) in shared:
                    n += 1
        else:
            continue
        checked += 1
        if n != f["count"]:
            fail(f"{d}: {kind} {host} {f.get('server') or f.get('client')}: {n} events, truth.json says {f['count']}")
    total = sum(len(v) for v in by_file.values())
    state = "ok" if not errors else "MISMATCHES"
    print(f"{d}: {len(counts['files'])} files, {total} records, {checked} findings recounted: {state}")


def main():
    dirs = sys.argv[1:]
    if not dirs:
        print(__doc__, file=sys.stderr)
        return 2
    for d in dirs:
        check_dir(d)
    if errors:
        print(f"{len(errors)} mismatch(es)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

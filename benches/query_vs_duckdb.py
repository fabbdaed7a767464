#!/usr/bin/env python3
"""Time a fixed set of analysis queries with `evtxsql query` and with DuckDB on the same Parquet
files of an evtxsql store. Each query runs RUNS times per engine (median reported); evtxsql is
timed as a whole command (process start, session, query, CSV to /dev/null), DuckDB in-process
(`pip install duckdb`; it is a benchmark tool, not a dependency).

Usage: benches/query_vs_duckdb.py STORE [EVTXSQL_BINARY] [RUNS] [THREADS] [SET]
EVTXSQL_BINARY defaults to target/release/evtxsql; the binary users deploy is target/dist/evtxsql
(`benches/text_order.sh dist`: fat LTO and the functions laid out), which takes ~0.8x the release
build's time on these shapes: say which one a figure is of.
SET: all (default), pack (the fixed set) or analysis (the issue-11 shapes). Each line gives the
ratio evtxsql/DuckDB; the last line of each set, the geometric mean of the ratios. The runs of the
two engines alternate, so load on the machine falls on both.
"""
import json
import math
import os
import statistics
import subprocess
import sys
import time

import duckdb

QUERIES = {
    "count_by_channel_event": "SELECT channel, event_id, count(*) AS n FROM events "
    "GROUP BY channel, event_id ORDER BY n DESC, channel, event_id LIMIT 20",
    "rejects_31017_grouped": "SELECT computer, server_name, user_name, count(*) AS n, "
    "min(time_created) AS first_seen, max(time_created) AS last_seen FROM events "
    "WHERE event_id = 31017 AND lower(channel) = 'microsoft-windows-smbclient/security' "
    "GROUP BY computer, server_name, user_name ORDER BY n DESC, computer, server_name",
    "one_day": "SELECT count(*) AS n FROM events WHERE time_created >= TIMESTAMP '2026-03-03 00:00:00' "
    "AND time_created < TIMESTAMP '2026-03-04 00:00:00'",
    "powershell_guest_policy": "SELECT computer, count(*) AS n FROM events WHERE event_id = 4104 "
    "AND data LIKE '%EnableInsecureGuestLogons%' GROUP BY computer ORDER BY computer",
    "fallback_join": "SELECT a.computer, a.server_name, count(*) AS n FROM events a JOIN events b "
    "ON a.computer = b.computer AND a.server_name = b.server_name "
    "WHERE a.event_id = 31001 AND b.event_id = 31022 AND b.time_created >= a.time_created "
    "AND b.time_created <= a.time_created + INTERVAL '60 seconds' "
    "GROUP BY a.computer, a.server_name ORDER BY n DESC, a.computer, a.server_name",
    "distinct_computers": "SELECT count(DISTINCT computer) AS n FROM events",
    "payload_scan": "SELECT count(*) AS n FROM events WHERE data LIKE '%guest%'",
}

# The analysis shapes of issue 11 (not in the pack): each names one thing a responder asks.
ANALYSIS = {
    "top_computers": "SELECT computer, count(*) AS n FROM events GROUP BY computer "
    "ORDER BY n DESC, computer LIMIT 10",
    "share_access_like": "SELECT computer, count(*) AS n FROM events WHERE event_id = 5145 "
    "AND data LIKE '%IPC$%' GROUP BY computer ORDER BY n DESC, computer",
    "top_users_per_host": "SELECT computer, user_name, n FROM (SELECT computer, user_name, "
    "count(*) AS n, row_number() OVER (PARTITION BY computer ORDER BY count(*) DESC, user_name) "
    "AS rn FROM events WHERE user_name IS NOT NULL GROUP BY computer, user_name) t "
    "WHERE rn <= 3 ORDER BY computer, n DESC, user_name",
    "time_range_per_channel": "SELECT channel, min(time_created) AS first_seen, "
    "max(time_created) AS last_seen, count(*) AS n FROM events GROUP BY channel ORDER BY channel",
    "by_client_ip": "SELECT client_ip, count(*) AS n FROM events WHERE client_ip IS NOT NULL "
    "GROUP BY client_ip ORDER BY n DESC, client_ip LIMIT 20",
    "hourly_rejects_by_server": "SELECT date_trunc('hour', time_created) AS hour, server_name, "
    "count(*) AS n FROM events WHERE event_id = 31017 GROUP BY hour, server_name "
    "ORDER BY hour, server_name",
    "distinct_users_per_server": "SELECT server_name, count(DISTINCT user_name) AS users "
    "FROM events WHERE server_name IS NOT NULL GROUP BY server_name ORDER BY users DESC, "
    "server_name LIMIT 20",
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    store = sys.argv[1]
    binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/evtxsql"
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else os.cpu_count()
    which = sys.argv[5] if len(sys.argv) > 5 else "all"
    sets = {"pack": QUERIES, "analysis": ANALYSIS}
    chosen = sets if which == "all" else {which: sets[which]}
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    parts = os.path.join(store, "events", "*.parquet")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{parts}')")
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    print(f"store {store}: {rows} events; {runs} runs per query, {threads} threads; median seconds")
    results = {}
    for set_name, queries in chosen.items():
        print(f"{set_name + ' query':28} {'evtxsql':>9} {'duckdb':>9} {'ratio':>7}")
        ratios = []
        for name, sql in queries.items():
            ev, dk = [], []
            for _ in range(runs):
                t = time.perf_counter()
                subprocess.run(
                    [binary, "query", store, sql, "--format", "csv", "--out", "/dev/null",
                     "--threads", str(threads)],
                    check=True,
                )
                ev.append(time.perf_counter() - t)
                t = time.perf_counter()
                con.execute(sql).fetchall()
                dk.append(time.perf_counter() - t)
            e, d = statistics.median(ev), statistics.median(dk)
            ratios.append(e / d)
            results[name] = {"evtxsql_s": round(e, 3), "duckdb_s": round(d, 3),
                             "ratio": round(e / d, 2)}
            print(f"{name:28} {e:9.3f} {d:9.3f} {e / d:7.2f}")
        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        results[f"{set_name}_geomean"] = round(geo, 2)
        print(f"{set_name + ' geometric mean':28} {'':9} {'':9} {geo:7.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
